// Cold-start benchmark of getFeatures: the bundle serverless-esbuild packages (built here with the
// options of serverless.yml `custom.esbuild`, or the real package: BENCH_COLD_ZIP=.serverless/
// getFeatures.zip), imported by a fresh Node process per sample as Lambda's runtime does, against
// the local Cassandra. Per sample: the process boot, init (import of warm-handler.mjs, whose
// top-level await holds until the store's first connection settles: what Lambda reports as part of
// Init Duration), the first invocation, and what the first logged error would pay to decode the
// source map lazily. Variants (source-map options) are interleaved sample by sample so background
// load hits all alike. Usage: npm run bench:cold (settings: see `settings` below; BENCH_COLD_VARIANTS=regex
// measures only the matching variants; BENCH_COLD_BEFORE=<git revision> adds that revision's bundle,
// built from its own tree and serverless.yml, as the "before" of an A/B in the same run).
// Writes bench/results/cold-start-<ts>.json.
import { execFileSync, spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { type BuildOptions, build, type Metafile, type Plugin } from "esbuild";
import JSZip from "jszip";
import { z } from "zod";
import { readConfig } from "#commons/config.js";
import { localCassandraAuthEnv } from "#scripts/cassandra/local-credentials.js";
import {
  GET_FEATURES_BUNDLE,
  GET_FEATURES_ENTRY,
  packagingOptions,
  serverlessTemplate,
} from "#scripts/esbuild-packaging.js";
import { CqlLoginTimer } from "./cql-login-timer.js";

const settings = readConfig(
  z.object({
    /** Fresh processes per variant. */
    BENCH_COLD_SAMPLES: z.coerce.number().int().min(1).max(200).default(10),
    /** A packaged getFeatures.zip (`sls package`) to measure as well; built bundles are always measured. */
    BENCH_COLD_ZIP: z.string().optional(),
    BENCH_COLD_KEYSPACE: z.string().default("feature_store"),
    /** Only the variants whose name matches this regular expression (more samples in less time). */
    BENCH_COLD_VARIANTS: z.string().optional(),
    /** A git revision (e.g. main) whose getFeatures bundle is measured too, built from its own tree. */
    BENCH_COLD_BEFORE: z.string().optional(),
    CASSANDRA_PORT: z.coerce.number().int().min(1).max(65_535).default(9042),
  }),
);

const ROOT = resolve(__dirname, "..");
const WORK = join(ROOT, ".local/bench/cold-start");
const HANDLER_MODULE = GET_FEATURES_BUNDLE;
const log = (message: string) => process.stderr.write(`[cold-start] ${message}\n`);

interface Variant {
  readonly name: string;
  readonly bundle: string;
  readonly nodeOptions: string;
  /** Connect through the login-timing proxy (bench/cql-login-timer.ts) and report the login's wait. */
  readonly timeLogin?: boolean;
}

/** Builds warm-handler as `sls package` would, with the given source-map settings, plus the views. */
async function buildBundle(
  key: string,
  overrides: BuildOptions,
  entry = GET_FEATURES_ENTRY,
  root = ROOT,
): Promise<string> {
  const dir = join(WORK, key);
  rmSync(dir, { recursive: true, force: true });
  const { metafile } = await build({
    ...packagingOptions(root),
    ...overrides,
    entryPoints: {
      "functions/get-features/warm-handler": join(root, entry),
    },
    outdir: dir,
    logLevel: "warning",
    metafile: true,
  });
  bundleContents.set(dir, bytesByPackage(metafile));
  cpSync(join(root, "resources/feature-views"), join(dir, "resources/feature-views"), { recursive: true });
  return dir;
}

/**
 * serverless.yml's plugins plus one that replaces `from` by `to` in `file` as it is bundled: the
 * same code with one setting changed (fails the build if `from` is no longer in the file).
 */
function withSourcePatch(file: string, from: string, to: string): BuildOptions {
  const path = join(ROOT, file);
  const patch: Plugin = {
    name: "source-patch",
    setup(builder) {
      builder.onLoad({ filter: /\.ts$/ }, (args) => {
        if (args.path !== path) return undefined;
        const source = readFileSync(path, "utf8");
        if (!source.includes(from)) throw new Error(`${file} no longer contains ${JSON.stringify(from)}`);
        return { contents: source.replace(from, to), loader: "ts" };
      });
    },
  };
  return { plugins: [...(packagingOptions(ROOT).plugins ?? []), patch] };
}

/**
 * The tree of a git revision, exported (`git archive`) under WORK with this checkout's node_modules
 * linked in, so its bundle builds with its own sources, serverless.yml and plugins.
 */
function revisionTree(revision: string): string {
  const dir = join(WORK, `revision-${revision.replace(/[^A-Za-z0-9._-]/g, "_")}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const archive = execFileSync("git", ["archive", "--format=tar", revision], {
    cwd: ROOT,
    maxBuffer: 1 << 30,
  });
  execFileSync("tar", ["-x", "-C", dir], { input: archive });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

/** Built bundle directory → bytes of output per source package (esbuild's metafile), largest first. */
const bundleContents = new Map<string, Record<string, number>>();

function bytesByPackage(metafile: Metafile): Record<string, number> {
  const totals = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? "(project)";
      totals.set(pkg, (totals.get(pkg) ?? 0) + bytesInOutput);
    }
  }
  return Object.fromEntries([...totals].sort((a, b) => b[1] - a[1]));
}

async function unpackZip(zipPath: string): Promise<string> {
  const dir = join(WORK, "packaged");
  rmSync(dir, { recursive: true, force: true });
  const zip = await JSZip.loadAsync(readFileSync(resolve(ROOT, zipPath)));
  for (const [name, entry] of Object.entries(zip.files)) {
    if (entry.dir) continue;
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), await entry.async("nodebuffer"));
  }
  return dir;
}

// Runs in the fresh process. performance.now() counts from the process's time origin, so the first
// reading is Node's own boot (which Lambda's Init Duration includes as well).
const PROBE = `
import { existsSync, readFileSync } from "node:fs";
import { SourceMap } from "node:module";
const boot = performance.now();
const bundle = process.env.PROBE_BUNDLE;
const m = await import(bundle);
const imported = performance.now();
await m.connected; // already settled for warm-handler (top-level await); pending for handler.ts
const ready = performance.now();
const cpu = process.cpuUsage(); // this process's CPU until ready, Node's boot included
const event = { version: "2.0", routeKey: "GET /features/{view}/{entityId}", rawPath: "/features/energy/MAC000002",
  rawQueryString: "", headers: {}, isBase64Encoded: false, pathParameters: { view: "energy", entityId: "MAC000002" },
  requestContext: { requestId: "cold", http: { method: "GET", path: "/features/energy/MAC000002" } } };
const context = { awsRequestId: "cold", functionName: "getFeatures", memoryLimitInMB: "1024",
  invokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:getFeatures", getRemainingTimeInMillis: () => 5000 };
const response = await m.handler(event, context);
const invoked = performance.now();
let mapMs = null;
if (existsSync(bundle + ".map")) {
  const t = performance.now();
  new SourceMap(JSON.parse(readFileSync(bundle + ".map", "utf8"))).findEntry(0, 1000);
  mapMs = performance.now() - t;
}
process.stdout.write("PROBE " + JSON.stringify({ bootMs: boot, initMs: ready - boot, readyMs: ready,
  cpuToReadyMs: (cpu.user + cpu.system) / 1000,
  importMs: imported - boot, connectAfterImportMs: ready - imported,
  firstInvokeMs: invoked - ready, status: response.statusCode, connected: await m.connected, mapMs }) + "\\n");
process.exit(0);
`;

interface Sample {
  bootMs: number;
  initMs: number;
  readyMs: number;
  /** CPU time (user + system, all threads) of the process until ready: the load-independent cost. */
  cpuToReadyMs: number;
  importMs: number;
  connectAfterImportMs: number;
  firstInvokeMs: number;
  status: number;
  connected: boolean;
  mapMs: number | null;
  wallMs: number;
  /** The login's wait (ms), for variants run through the login-timing proxy. */
  loginMs: number | null;
}

let loginTimer: CqlLoginTimer | undefined;

async function sample(variant: Variant, probe: string): Promise<Sample> {
  const started = performance.now();
  loginTimer?.take();
  const port = variant.timeLogin && loginTimer !== undefined ? loginTimer.port : settings.CASSANDRA_PORT;
  const child = await run(process.execPath, [probe], {
    cwd: variant.bundle,
    env: {
      PATH: process.env.PATH,
      NODE_OPTIONS: variant.nodeOptions,
      PROBE_BUNDLE: join(variant.bundle, HANDLER_MODULE),
      LAMBDA_TASK_ROOT: variant.bundle,
      ONLINE_STORE: "cassandra",
      CASSANDRA_CONTACT_POINTS: "127.0.0.1",
      CASSANDRA_PORT: String(port),
      ...localCassandraAuthEnv(),
      KEYSPACE: settings.BENCH_COLD_KEYSPACE,
      FEATURE_VIEWS_DIR: "resources/feature-views",
      POWERTOOLS_SERVICE_NAME: "feature-store-cold",
      POWERTOOLS_METRICS_NAMESPACE: "FeatureStoreBench",
      POWERTOOLS_LOG_LEVEL: "WARN",
      AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: "1",
    },
  });
  const wallMs = performance.now() - started;
  const line = child.stdout.split("\n").find((l) => l.startsWith("PROBE "));
  if (child.status !== 0 || line === undefined) {
    throw new Error(`${variant.name}: probe failed (${child.status}): ${child.stderr.slice(-2000)}`);
  }
  const logins = variant.timeLogin ? (loginTimer?.take() ?? []) : [];
  const loginMs = variant.timeLogin ? logins.reduce((a, b) => a + b, 0) : null;
  return {
    ...(JSON.parse(line.slice("PROBE ".length)) as Omit<Sample, "wallMs" | "loginMs">),
    wallMs,
    loginMs,
  };
}

/** spawn, collected (spawnSync would block the login-timing proxy in this process). */
function run(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

function stats(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  const round = (v: number) => Math.round(v * 10) / 10;
  return { p50: round(at(0.5)), min: round(sorted[0] as number), max: round(sorted.at(-1) as number) };
}

async function main() {
  const loadAtStart = loadavg();
  const started = performance.now();
  const template = serverlessTemplate(ROOT);
  const templateNodeOptions =
    template.functions.getFeatures.environment?.NODE_OPTIONS ??
    template.provider.environment?.NODE_OPTIONS ??
    "";
  const withSources = await buildBundle("linked-with-sources", { sourcemap: "linked", sourcesContent: true });
  const asTemplate = await buildBundle("as-serverless-yml", {});
  const noMap = await buildBundle("no-map", { sourcemap: false });
  // handler.ts as the entry (no top-level await): init splits into the import and the connect.
  const split = await buildBundle("split-import-connect", {}, "functions/get-features/handler.ts");
  // Before the views were embedded at build time (resources/esbuild-plugins.cjs): the view files
  // read with yaml at init, yaml in the bundle. The older "before" variants below read them so too.
  const withYaml = await buildBundle("views-from-yaml", { plugins: [] });
  // Before adm-zip was replaced by a stub (serverless.yml alias): the driver's real dependency.
  const withAdmZip = await buildBundle("with-adm-zip", { alias: {}, plugins: [] });
  // Before the SigV4 login of our own (functions/commons/sigv4-auth-provider.ts): the same bundle
  // with aws-sigv4-auth-cassandra-plugin, its v2 SDK (aliased to aws-sdk/global, as serverless.yml
  // had it) and crypto-js in its place. The local node logs in by password either way: the
  // difference is what importing the bundle costs.
  mkdirSync(WORK, { recursive: true });
  const pluginShim = join(WORK, "plugin-sigv4-auth-provider.mjs");
  writeFileSync(
    pluginShim,
    'import { SigV4AuthProvider } from "aws-sigv4-auth-cassandra-plugin";\n' +
      "export class KeyspacesSigV4AuthProvider extends SigV4AuthProvider {\n" +
      "  constructor(region) { super({ region }); this.region = region; }\n}\n",
  );
  const withPlugin = await buildBundle("sigv4-plugin", {
    alias: { "aws-sdk": "aws-sdk/global" },
    nodePaths: [join(ROOT, "node_modules")],
    plugins: [
      {
        name: "sigv4-plugin",
        setup(builder) {
          // Our module only (the plugin has a lib/sigv4-auth-provider.js of its own).
          builder.onResolve({ filter: /sigv4-auth-provider\.js$/ }, (args) =>
            args.importer.startsWith(join(ROOT, "functions")) ? { path: pluginShim } : undefined,
          );
        },
      },
    ],
  });
  // The driver's connect options, one at a time (functions/commons/cassandra-online-store.ts).
  const STORE = "functions/commons/cassandra-online-store.ts";
  const metadataSync = await buildBundle(
    "option-metadata-sync",
    withSourcePatch(STORE, "isMetadataSyncEnabled: false,", "isMetadataSyncEnabled: true,"),
  );
  const noWarmup = await buildBundle(
    "option-no-warmup",
    withSourcePatch(STORE, "pooling: { warmup: true },", "pooling: { warmup: false },"),
  );
  const allVariants: Variant[] = [
    {
      name: "before: map with sources + --enable-source-maps",
      bundle: withSources,
      nodeOptions: "--enable-source-maps",
    },
    { name: "map with sources, no flag", bundle: withSources, nodeOptions: "--no-enable-source-maps" },
    {
      name: `serverless.yml as is (${templateNodeOptions || "no NODE_OPTIONS"})`,
      bundle: asTemplate,
      nodeOptions: templateNodeOptions,
    },
    {
      name: `serverless.yml as is, through the login-timing proxy (${templateNodeOptions || "no NODE_OPTIONS"})`,
      bundle: asTemplate,
      nodeOptions: templateNodeOptions,
      timeLogin: true,
    },
    { name: "no source map at all", bundle: noMap, nodeOptions: "" },
    {
      name: `option: isMetadataSyncEnabled true, the driver's default (${templateNodeOptions || "no NODE_OPTIONS"})`,
      bundle: metadataSync,
      nodeOptions: templateNodeOptions,
    },
    {
      name: `option: pooling.warmup false (${templateNodeOptions || "no NODE_OPTIONS"})`,
      bundle: noWarmup,
      nodeOptions: templateNodeOptions,
    },
    {
      name: `split: handler.ts entry, init = import + connect (${templateNodeOptions || "no NODE_OPTIONS"})`,
      bundle: split,
      nodeOptions: templateNodeOptions,
    },
    {
      name: `before (round 2): views read with yaml at init (${templateNodeOptions || "no NODE_OPTIONS"})`,
      bundle: withYaml,
      nodeOptions: templateNodeOptions,
    },
    {
      name: `before: adm-zip bundled (${templateNodeOptions || "no NODE_OPTIONS"})`,
      bundle: withAdmZip,
      nodeOptions: templateNodeOptions,
    },
    {
      name: `before (main's bundle): aws-sigv4-auth-cassandra-plugin + aws-sdk v2, adm-zip (${templateNodeOptions || "no NODE_OPTIONS"})`,
      bundle: withPlugin,
      nodeOptions: templateNodeOptions,
    },
  ];
  if (settings.BENCH_COLD_BEFORE !== undefined) {
    const revision = settings.BENCH_COLD_BEFORE;
    const root = revisionTree(revision);
    const before = await buildBundle(`before-${revision}`, {}, undefined, root);
    const nodeOptions =
      serverlessTemplate(root).functions.getFeatures.environment?.NODE_OPTIONS ?? templateNodeOptions;
    allVariants.push(
      { name: `before: ${revision} (${nodeOptions || "no NODE_OPTIONS"})`, bundle: before, nodeOptions },
      {
        name: `before: ${revision}, through the login-timing proxy (${nodeOptions || "no NODE_OPTIONS"})`,
        bundle: before,
        nodeOptions,
        timeLogin: true,
      },
    );
  }
  if (settings.BENCH_COLD_ZIP !== undefined) {
    const packaged = await unpackZip(settings.BENCH_COLD_ZIP);
    allVariants.push(
      { name: "packaged zip + --enable-source-maps", bundle: packaged, nodeOptions: "--enable-source-maps" },
      { name: "packaged zip, no flag", bundle: packaged, nodeOptions: "--no-enable-source-maps" },
    );
  }
  const only =
    settings.BENCH_COLD_VARIANTS === undefined ? undefined : new RegExp(settings.BENCH_COLD_VARIANTS);
  const variants = allVariants.filter((v) => only?.test(v.name) ?? true);
  if (variants.length === 0) throw new Error(`no variant matches BENCH_COLD_VARIANTS`);
  const probe = join(WORK, "probe.mjs");
  writeFileSync(probe, PROBE);

  const samples = new Map<Variant, Sample[]>(variants.map((v) => [v, []]));
  loginTimer = await CqlLoginTimer.start(settings.CASSANDRA_PORT);
  for (const variant of variants) await sample(variant, probe); // one discarded run each: file cache warm
  for (let i = 1; i <= settings.BENCH_COLD_SAMPLES; i++) {
    for (const variant of variants) samples.get(variant)?.push(await sample(variant, probe));
    log(`sample ${i}/${settings.BENCH_COLD_SAMPLES} of each variant done`);
  }
  const loadAtEnd = loadavg();
  await loginTimer.stop();

  const size = (path: string) => (existsSync(path) ? statSync(path).size : null);
  const results = variants.map((variant) => {
    const runs = samples.get(variant) ?? [];
    const bundlePath = join(variant.bundle, HANDLER_MODULE);
    return {
      variant: variant.name,
      nodeOptions: variant.nodeOptions,
      bundleBytes: size(bundlePath),
      mapBytes: size(`${bundlePath}.map`),
      bundleBytesByPackage: bundleContents.get(variant.bundle) ?? null,
      connectedEverySample: runs.every((r) => r.connected),
      statuses: [...new Set(runs.map((r) => r.status))],
      bootMs: stats(runs.map((r) => r.bootMs)),
      initMs: stats(runs.map((r) => r.initMs)),
      importMs: stats(runs.map((r) => r.importMs)),
      connectAfterImportMs: stats(runs.map((r) => r.connectAfterImportMs)),
      processStartToReadyMs: stats(runs.map((r) => r.readyMs)),
      cpuToReadyMs: stats(runs.map((r) => r.cpuToReadyMs)),
      firstInvokeMs: stats(runs.map((r) => r.firstInvokeMs)),
      loginMs: variant.timeLogin ? stats(runs.map((r) => r.loginMs ?? 0)) : null,
      initExcludingLoginMs: variant.timeLogin ? stats(runs.map((r) => r.initMs - (r.loginMs ?? 0))) : null,
      firstErrorMapDecodeMs: runs[0]?.mapMs == null ? null : stats(runs.map((r) => r.mapMs as number)),
      wallMs: stats(runs.map((r) => r.wallMs)),
    };
  });
  const result = {
    benchmark: "cold-start",
    startedAt: new Date().toISOString(),
    command: "npm run bench:cold",
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      node: process.version,
      loadavgAtStart: loadAtStart,
      loadavgAtEnd: loadAtEnd,
    },
    settings,
    wallSeconds: Math.round((performance.now() - started) / 100) / 10,
    results,
  };
  const dir = join(ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `cold-start-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);

  const cell = (s: { p50: number; min: number; max: number }) => `${s.p50} (${s.min}–${s.max})`;
  log(`ms, p50 (min–max) of ${settings.BENCH_COLD_SAMPLES} fresh processes each:`);
  log(
    "| variant | bundle / map kB | boot | init (import + connect) | of which connect¹ | CPU to ready² | first invoke | first error: map decode |",
  );
  log("|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    const kb = (b: number | null) => (b === null ? "–" : String(Math.round(b / 1024)));
    log(
      `| ${r.variant} | ${kb(r.bundleBytes)} / ${kb(r.mapBytes)} | ${cell(r.bootMs)} | ${cell(r.initMs)} | ${cell(r.connectAfterImportMs)} | ${cell(r.cpuToReadyMs)} | ${cell(r.firstInvokeMs)} | ${r.firstErrorMapDecodeMs === null ? "–" : cell(r.firstErrorMapDecodeMs)} |`,
    );
  }
  for (const r of results) {
    if (r.loginMs !== null && r.initExcludingLoginMs !== null) {
      log(
        `${r.variant}: login wait (AUTH_RESPONSE -> AUTH_SUCCESS) ${cell(r.loginMs)}, init excluding it ${cell(r.initExcludingLoginMs)}`,
      );
    }
  }
  const asIs = results.find((r) => r.variant.startsWith("serverless.yml as is"))?.bundleBytesByPackage;
  if (asIs) {
    const top = Object.entries(asIs).slice(0, 8);
    log(
      `serverless.yml as is, kB by package (esbuild metafile): ${top.map(([p, b]) => `${p} ${Math.round(b / 1024)}`).join(", ")}`,
    );
  }
  log("¹ only the handler.ts entry (no top-level await) shows it; the others connect inside the import");
  log(
    "² user + system CPU of the process (all its threads) from its start until ready, Node's boot included",
  );
  log(
    `load average ${loadAtStart.map((l) => l.toFixed(2)).join(" ")} at start, ${loadAtEnd.map((l) => l.toFixed(2)).join(" ")} at end; ${result.wallSeconds} s; wrote ${path}`,
  );
}

main().catch((error: unknown) => {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
