// serverless.yml's `custom.esbuild` as esbuild build options, mapped as serverless-esbuild maps them,
// so the cold-start benchmark and the bundle tests build getFeatures exactly as `sls package` does.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { BuildOptions } from "esbuild";
import { parse as parseYaml } from "yaml";

export interface ServerlessTemplate {
  provider: { environment?: Record<string, string> };
  custom: { esbuild: Record<string, unknown> };
  functions: { getFeatures: { environment?: Record<string, string> } };
}

/** The parsed serverless.yml of a checkout (`root`). */
export function serverlessTemplate(root: string): ServerlessTemplate {
  return parseYaml(readFileSync(join(root, "serverless.yml"), "utf8")) as ServerlessTemplate;
}

/** `custom.esbuild` of `root`'s serverless.yml as esbuild options, resolved from `root`. */
export function packagingOptions(root: string): BuildOptions {
  const {
    outputFileExtension,
    exclude: _exclude,
    packager: _packager,
    plugins,
    ...options
  } = serverlessTemplate(root).custom.esbuild as Record<string, unknown> & {
    outputFileExtension?: string;
    plugins?: string;
  };
  return {
    ...(options as BuildOptions),
    absWorkingDir: root,
    outExtension: { ".js": outputFileExtension ?? ".js" },
    // serverless-esbuild requires the plugins file from the service directory.
    ...(plugins === undefined
      ? {}
      : {
          plugins: createRequire(join(root, "package.json"))(join(root, plugins)) as BuildOptions["plugins"],
        }),
  };
}

/** getFeatures' Lambda entry (top-level await on the store's first connection). */
export const GET_FEATURES_ENTRY = "functions/get-features/warm-handler.mts";
/** Where the entry's bundle lands in the package, relative to its root. */
export const GET_FEATURES_BUNDLE = "functions/get-features/warm-handler.mjs";
