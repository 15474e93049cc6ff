// Reads a function's configuration from the environment once, at module scope, through a zod
// schema: a missing or malformed setting fails the cold start with the variable's name.
import type { z } from "zod";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function readConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`Invalid configuration: ${problems.join("; ")}`);
  }
  return result.data;
}
