// Local HTTP adapter overhead: the CPU the adapter (local/http-adapter.ts: routing, the API Gateway
// v2 event, the Lambda context, the response) adds per request over calling the getFeatures
// handler in-process. One process, one request at a time, three modes interleaved in rounds:
//   inProcess  the real middy stack called with an event (an in-memory store answers one row)
//   bareHttp   a node:http server answering the same body: Node's HTTP client + server cost
//   adapter    the same handler behind LocalHttpApi, over keep-alive HTTP
// adapter overhead = adapter - bareHttp - inProcess (process CPU per request, client included in
// both HTTP modes, so it cancels). Usage: npm run bench:adapter [-- --requests 5000].
// Writes bench/results/http-adapter-<ts>.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import type { FeatureView } from "#commons/feature-view.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import type { OnlineRow, OnlineStore } from "#commons/online-store.js";
import { FeatureReader } from "#functions/get-features/feature-reader.js";
import { createGetFeaturesHandler } from "#functions/get-features/http-handler.js";
import { LocalHttpApi } from "#local/http-adapter.js";
import { lambdaContext } from "#local/lambda-context.js";

const { values } = parseArgs({
  options: { requests: { type: "string", default: "5000" }, rounds: { type: "string", default: "5" } },
});
const REQUESTS = Number(values.requests);
const ROUNDS = Number(values.rounds);
const ROOT = join(__dirname, "..");
const log = (message: string) => process.stderr.write(`[http-adapter] ${message}\n`);

const views = loadFeatureViews(join(ROOT, "resources/feature-views"));
const energy = views.get("energy") as FeatureView;
const row: OnlineRow = {
  entityId: "MAC000002",
  featureDate: "2014-02-27",
  features: Object.fromEntries(energy.features.map((f, i) => [f.name, i + 0.125])),
};
const store: OnlineStore = {
  getLatest: async (_view, ids) => ids.map(() => row),
  close: async () => undefined,
};

async function main() {
  const loadAtStart = loadavg();
  const started = performance.now();
  // As the local stack runs it: Powertools lines on stdout (here a null sink), the deployed
  // telemetry defaults of the function itself (every request logged, one EMF record each).
  process.env.POWERTOOLS_SERVICE_NAME ??= "feature-store-bench";
  process.env.POWERTOOLS_METRICS_NAMESPACE ??= "FeatureStoreBench";
  const realStdoutWrite = process.stdout.write.bind(process.stdout);
  process.stdout.write = (() => true) as typeof process.stdout.write;
  const handler = createGetFeaturesHandler({
    reader: new FeatureReader(views, store),
    logger: new Logger({ logLevel: "INFO" }),
    metrics: new Metrics(),
  });

  const api = new LocalHttpApi(handler);
  const base = await api.listen(0);
  const body = JSON.stringify({
    view: "energy",
    entityId: row.entityId,
    featureDate: row.featureDate,
    features: row.features,
  });
  const bare = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
    response.end(body);
  });
  await new Promise<void>((done) => bare.listen(0, "127.0.0.1", done));
  const barePort = (bare.address() as AddressInfo).port;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const get = (url: string) =>
    new Promise<void>((done, fail) => {
      const req = request(url, { agent }, (res) => {
        res.resume();
        res.on("end", done);
      });
      req.on("error", fail);
      req.end();
    });
  const path = "/features/energy/MAC000002";
  const event = {
    version: "2.0",
    routeKey: "GET /features/{view}/{entityId}",
    rawPath: path,
    rawQueryString: "",
    headers: {},
    isBase64Encoded: false,
    pathParameters: { view: "energy", entityId: "MAC000002" },
    requestContext: { requestId: "in-process", http: { method: "GET", path } },
  };
  let sequence = 0;
  const modes: Record<string, () => Promise<unknown>> = {
    inProcess: () => {
      sequence += 1;
      return handler(event as never, lambdaContext("feature-store-bench-getFeatures", `r-${sequence}`));
    },
    bareHttp: () => get(`http://127.0.0.1:${barePort}${path}`),
    adapter: () => get(`${base}${path}`),
  };

  const cpu: Record<string, number[]> = { inProcess: [], bareHttp: [], adapter: [] };
  for (const fn of Object.values(modes)) for (let i = 0; i < 3000; i++) await fn(); // warm-up (JIT)
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [name, fn] of Object.entries(modes)) {
      const before = process.cpuUsage();
      for (let i = 0; i < REQUESTS; i++) await fn();
      const used = process.cpuUsage(before);
      cpu[name]?.push(Math.round(((used.user + used.system) / REQUESTS) * 10) / 10);
    }
  }
  await api.close();
  await new Promise<void>((done) => bare.close(() => done()));
  agent.destroy();
  process.stdout.write = realStdoutWrite;

  const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] as number;
  const overheads = cpu.adapter?.map(
    (adapter, i) => Math.round((adapter - (cpu.bareHttp?.[i] ?? 0) - (cpu.inProcess?.[i] ?? 0)) * 10) / 10,
  ) as number[];
  const result = {
    benchmark: "http-adapter",
    startedAt: new Date().toISOString(),
    command: "npm run bench:adapter",
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      node: process.version,
      loadavgAtStart: loadAtStart,
      loadavgAtEnd: loadavg(),
    },
    settings: { requests: REQUESTS, rounds: ROUNDS },
    wallSeconds: Math.round((performance.now() - started) / 100) / 10,
    cpuMicrosPerRequest: cpu,
    adapterOverheadMicros: {
      perRound: overheads,
      median: median(overheads),
      limit: 100,
      met: median(overheads) <= 100,
    },
  };
  const dir = join(ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `http-adapter-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  for (const [name, list] of Object.entries(cpu))
    log(`${name.padEnd(10)} CPU µs/request per round: ${list.join(", ")}`);
  log(
    `adapter overhead (adapter - bareHttp - inProcess): ${overheads.join(", ")} µs; median ${median(overheads)} (target <= 100); load ${loadAtStart.map((l) => l.toFixed(2)).join(" ")}; ${result.wallSeconds} s; wrote ${file}`,
  );
}

main().catch((error: unknown) => {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
