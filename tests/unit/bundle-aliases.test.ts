// serverless.yml's esbuild aliases replace modules in the Lambda bundles; each replacement must
// exist and hold only while its reason does (the installed package still needs nothing more of it).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";

const ROOT = resolve(__dirname, "../..");
const esbuildOptions = (
  parseYaml(readFileSync(join(ROOT, "serverless.yml"), "utf8")) as {
    custom: { esbuild: { alias?: Record<string, string> } };
  }
).custom.esbuild;

function jsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return jsFiles(path);
    return name.endsWith(".js") ? [path] : [];
  });
}

describe("bundle aliases", () => {
  it("replaces adm-zip by a stub that fails loudly if anything calls it", () => {
    const target = esbuildOptions.alias?.["adm-zip"];
    expect(target).toBe("./functions/commons/adm-zip-unused.cjs");
    const AdmZip = createRequire(__filename)(join(ROOT, target as string)) as new (path: string) => unknown;
    expect(() => new AdmZip("bundle.zip")).toThrow(/secure connect bundle/);
  });

  it("holds because cassandra-driver requires adm-zip only for its Astra `cloud` option", () => {
    const driverLib = join(ROOT, "node_modules/cassandra-driver/lib");
    const users = jsFiles(driverLib)
      .filter((file) => /require\(['"]adm-zip['"]\)/.test(readFileSync(file, "utf8")))
      .map((file) => file.slice(driverLib.length + 1));
    expect(users).toEqual(["datastax/cloud/index.js"]);
    // And that module returns at once unless the `cloud` option is set, which the project never sets.
    const cloud = readFileSync(join(driverLib, "datastax/cloud/index.js"), "utf8");
    expect(cloud).toMatch(/async function init\(options\) \{\s*if \(!options\.cloud\) \{\s*return/);
    expect(readFileSync(join(ROOT, "functions/commons/cassandra-online-store.ts"), "utf8")).not.toMatch(
      /\bcloud\b/,
    );
  });
});
