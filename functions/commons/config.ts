// Reads a function's configuration from the environment once, at module scope, through a zod
// schema: a missing or malformed setting fails the cold start with the variable's name. Any zod 4
// schema, classic or zod/mini (getFeatures' path uses zod/mini: docs/PERFORMANCE.md).
import { type core, safeParse } from "zod/mini";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function readConfig<S extends core.$ZodType>(
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
): core.output<S> {
  const result = safeParse(schema, env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`Invalid configuration: ${problems.join("; ")}`);
  }
  return result.data;
}
