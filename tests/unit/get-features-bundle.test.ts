// getFeatures' Lambda bundle, built as `sls package` builds it (serverless.yml custom.esbuild), loaded
// by a fresh Node process as Lambda's runtime loads it. Its cold init is import + connect
// (docs/PERFORMANCE.md, "Serving at the floor: cold init under 200 ms"): the bundle must keep zod to
// zod/mini (classic zod is ~410 kB more to compile at every cold start), and still fail init clearly on
// a bad setting and log a failed request's stack mapped to the TypeScript sources.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GET_FEATURES_BUNDLE, GET_FEATURES_ENTRY, packagingOptions } from "#scripts/esbuild-packaging.js";

const ROOT = resolve(__dirname, "../..");
let dir: string;
let inputs: string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "sfs-get-features-bundle-"));
  const { metafile } = await build({
    ...packagingOptions(ROOT),
    entryPoints: { [GET_FEATURES_BUNDLE.replace(/\.mjs$/, "")]: join(ROOT, GET_FEATURES_ENTRY) },
    outdir: dir,
    metafile: true,
    logLevel: "silent",
  });
  // What the bundle carries: the inputs with bytes in an output (metafile.inputs also lists the
  // modules read and then tree-shaken away).
  inputs = Object.values(metafile.outputs).flatMap((output) =>
    Object.entries(output.inputs)
      .filter(([, { bytesInOutput }]) => bytesInOutput > 0)
      .map(([input]) => input),
  );
  cpSync(join(ROOT, "resources/feature-views"), join(dir, "resources/feature-views"), { recursive: true });
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A port on loopback that refuses connections (listened on, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

/** Imports the bundle in a fresh process (no --enable-source-maps, as deployed) and runs `script` after. */
function runBundle(env: Record<string, string>, script = "") {
  const bundle = pathToFileURL(join(dir, GET_FEATURES_BUNDLE)).href;
  const child = spawnSync(
    process.execPath,
    ["--input-type=module", "-e", `const m = await import(${JSON.stringify(bundle)});\n${script}`],
    {
      cwd: dir,
      encoding: "utf8",
      timeout: 30_000,
      env: {
        PATH: process.env.PATH,
        NODE_OPTIONS: "--no-enable-source-maps",
        LAMBDA_TASK_ROOT: dir,
        FEATURE_VIEWS_DIR: "resources/feature-views",
        ONLINE_STORE: "cassandra",
        CASSANDRA_CONTACT_POINTS: "127.0.0.1",
        POWERTOOLS_SERVICE_NAME: "feature-store-test",
        POWERTOOLS_METRICS_NAMESPACE: "FeatureStoreTest",
        ...env,
      },
    },
  );
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
}

describe("getFeatures' Lambda bundle", () => {
  it("carries zod/mini with its English messages only: no classic zod, no other locale", () => {
    const zodInputs = inputs.filter((input) => input.includes("node_modules/zod/"));
    expect(zodInputs.some((input) => input.includes("/zod/v4/mini/"))).toBe(true);
    expect(zodInputs.filter((input) => input.includes("/zod/v4/classic/"))).toEqual([]);
    expect(zodInputs.filter((input) => /\/zod\/v4\/locales\/(?!en\.js|index\.js)/.test(input))).toEqual([]);
  });

  it("carries the patched driver: one control-connection refresh at a time (patches/, NODEJS-681)", () => {
    // The patch is applied to node_modules by npm's postinstall; a bundle built without it would
    // let a store blip end the execution environment (tests/integration/online-store-reconnect.test.ts).
    const bundle = readFileSync(join(dir, GET_FEATURES_BUNDLE), "utf8");
    // Minified: property names stay, local names do not.
    expect(bundle).toMatch(/if\(this\._refreshInFlight\)return this\._refreshInFlight/);
    expect(bundle).toMatch(/await this\._refreshOnce\(\w+\)\}/);
  });

  it("fails init on a bad setting with the variable's name and zod's English message", () => {
    const { status, stderr } = runBundle({ CASSANDRA_PORT: "abc", READ_CONSISTENCY: "ALL" });
    expect(status).not.toBe(0);
    expect(stderr).toMatch(/ConfigError\]?: Invalid configuration: /);
    expect(stderr).toContain("CASSANDRA_PORT: Invalid input: expected number, received NaN");
    expect(stderr).toContain('READ_CONSISTENCY: Invalid option: expected one of "LOCAL_ONE"|"LOCAL_QUORUM"');
  });

  it("fails init when keyspaces mode has no region, naming the rule", () => {
    const { status, stderr } = runBundle({ ONLINE_STORE: "keyspaces" });
    expect(status).not.toBe(0);
    expect(stderr).toContain("AWS_REGION: is required when ONLINE_STORE is keyspaces");
  });

  it("finishes init with the store down and logs the failed request's stack mapped to the TypeScript sources", async () => {
    const port = await closedPort();
    const event = {
      version: "2.0",
      routeKey: "GET /features/{view}/{entityId}",
      rawPath: "/features/energy/MAC000002",
      rawQueryString: "",
      headers: {},
      isBase64Encoded: false,
      pathParameters: { view: "energy", entityId: "MAC000002" },
      requestContext: {
        requestId: "bundle-test",
        http: { method: "GET", path: "/features/energy/MAC000002" },
      },
    };
    const context = {
      awsRequestId: "bundle-test",
      functionName: "getFeatures",
      getRemainingTimeInMillis: () => 5000,
    };
    const { status, stdout, stderr } = runBundle(
      { CASSANDRA_PORT: String(port), CONNECT_TIMEOUT_MS: "500", STORE_DEADLINE_MS: "1000" },
      `const connected = await m.connected;
const response = await m.handler(${JSON.stringify(event)}, ${JSON.stringify(context)});
process.stdout.write("RESULT " + JSON.stringify({ connected, statusCode: response.statusCode }) + "\\n");
process.exit(0);`,
    );
    expect(status, stderr).toBe(0);
    const result = JSON.parse(
      stdout
        .split("\n")
        .find((line) => line.startsWith("RESULT "))
        ?.slice(7) ?? "{}",
    );
    expect(result).toEqual({ connected: false, statusCode: 503 });
    // Powertools writes WARN and ERROR lines to stderr.
    const failure = `${stdout}\n${stderr}`
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { message?: string; error?: { stack?: string } })
      .find((line) => line.message === "request failed");
    const stack = failure?.error?.stack ?? "";
    expect(stack).toMatch(/functions\/commons\/cassandra-online-store\.ts:\d+:\d+/);
    expect(stack).not.toContain("warm-handler.mjs:");
  }, 30_000);
});
