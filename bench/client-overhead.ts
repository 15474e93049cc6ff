// Client overhead: what the TypeScript client (SigV4 signing, response parsing, retries wrapper)
// adds per call on top of an unsigned raw HTTP GET + JSON.parse over the same keep-alive transport,
// for a single vector and a batch of 100, in one run. The server is a node:http server answering a
// canned getFeatures body of the energy view (no store, no signature check), so the difference is
// the client's own work. Interleaved rounds so drift hits both sides alike.
// Usage: npm run bench:client [-- --calls 3000]. Writes bench/results/client-overhead-<ts>.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { FeatureStoreClient } from "#clients/typescript/src/index.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";

const { values } = parseArgs({ options: { calls: { type: "string", default: "3000" } } });
const CALLS = Number(values.calls);
const ROUNDS = 5;

const energy = loadFeatureViews(join(__dirname, "../resources/feature-views")).get("energy");
if (energy === undefined) throw new Error("no energy view");
const features = Object.fromEntries(
  energy.features.map((f, i) => [f.name, f.type === "int" ? i : i + 0.123]),
);
const single = JSON.stringify({ view: "energy", entityId: "MAC000002", featureDate: "2014-02-28", features });
const ids = Array.from({ length: 100 }, (_, i) => `MAC${String(i).padStart(6, "0")}`);
const batch = JSON.stringify({
  view: "energy",
  results: ids.map((entityId) => ({ entityId, found: true, featureDate: "2014-02-28", features })),
});

const server = createServer((req, res) => {
  const body = req.url?.startsWith("/features/energy?") ? batch : single;
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
});

function rawGet(agent: Agent, url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

async function time(calls: number, call: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    await call();
    samples.push((performance.now() - started) * 1000);
  }
  return samples;
}

function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
  return {
    p50Us: Math.round(at(0.5)),
    p99Us: Math.round(at(0.99)),
    meanUs: Math.round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
}

async function main() {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const client = new FeatureStoreClient({
    endpoint: base,
    region: "eu-west-1",
    credentials: { accessKeyId: "AKIABENCH", secretAccessKey: "bench-secret" },
    maxSockets: 1,
  });
  const cases = {
    single: {
      raw: () => rawGet(agent, `${base}/features/energy/MAC000002`),
      client: () => client.getFeatures("energy", "MAC000002"),
    },
    batch100: {
      raw: () => rawGet(agent, `${base}/features/energy?ids=${ids.join(",")}`),
      client: () => client.getBatch("energy", ids),
    },
  };
  const samples: Record<string, { raw: number[]; client: number[] }> = {};
  for (const [name, pair] of Object.entries(cases)) {
    await time(200, pair.raw); // warm-up
    await time(200, pair.client);
    samples[name] = { raw: [], client: [] };
    for (let round = 0; round < ROUNDS; round++) {
      samples[name].raw.push(...(await time(CALLS / ROUNDS, pair.raw)));
      samples[name].client.push(...(await time(CALLS / ROUNDS, pair.client)));
    }
  }
  client.close();
  agent.destroy();
  server.close();

  const results = Object.fromEntries(
    Object.entries(samples).map(([name, s]) => {
      const raw = stats(s.raw);
      const signed = stats(s.client);
      return [
        name,
        {
          raw,
          client: signed,
          overheadP50Us: signed.p50Us - raw.p50Us,
          overheadMeanUs: signed.meanUs - raw.meanUs,
        },
      ];
    }),
  );
  const report = {
    at: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadavg: loadavg(),
    callsPerSide: CALLS,
    responseBytes: { single: single.length, batch100: batch.length },
    results,
  };
  const dir = join(__dirname, "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `client-overhead-${report.at.replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  for (const [name, r] of Object.entries(results)) {
    process.stdout.write(
      `${name.padEnd(9)} raw p50 ${r.raw.p50Us} µs  client p50 ${r.client.p50Us} µs  overhead p50 ${r.overheadP50Us} µs, mean ${r.overheadMeanUs} µs (p99 raw ${r.raw.p99Us} / client ${r.client.p99Us} µs)\n`,
    );
  }
  process.stdout.write(`wrote ${file}\n`);
}

void main();
