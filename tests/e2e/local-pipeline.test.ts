// The whole local pipeline, through the same modules `npm run local` uses: a raw CSV uploaded to the
// local S3 raw bucket reaches the real ingest handler as an S3 event, its EMR step runs as a local
// Spark job into both stores, and getFeatures serves over HTTP a vector equal to one computed here
// independently (plain arithmetic over the generated rows). Then a malformed file is quarantined
// with its report while reads keep succeeding, and a later day's file advances the served vector.
// Last, a burst of 8 one-day files at once: a few runs, never two at a time (from the run ledger),
// and every entity served at its latest day.
// Own keyspace, buckets, moto port and pipeline directory, so it does not clash with other suites.
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { Client } from "cassandra-driver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listRuns } from "#commons/run-ledger.js";
import { quarantineKeyFor } from "#functions/ingest/ingest-raw-files.js";
import { captureHandlerOutput } from "#local/handler-output.js";
import type { StepRecord } from "#local/job-runner.js";
import { httpGet } from "#local/read-burst.js";
import { sampleFile } from "#local/sample-data.js";
import { localPaths, readLocalSettings } from "#local/settings.js";
import { LocalStack } from "#local/stack.js";
import { localCassandraAuthProvider } from "#scripts/cassandra/local-credentials.js";

const settings = readLocalSettings({
  ...process.env,
  KEYSPACE: "feature_store_e2e",
  LOCAL_BUCKET_PREFIX: "feature-store-e2e",
  LOCAL_MOTO_PORT: process.env.E2E_MOTO_PORT ?? "5057",
  LOCAL_HTTP_PORT: "0",
});
const paths = localPaths(settings, "e2e-pipeline");
// A clean slate: this suite's offline store, inputs, ledgers and logs (online rows: beforeAll).
rmSync(paths.pipelineDir, { recursive: true, force: true });
// The handlers' per-request logs go to a file (as to CloudWatch); progress lines to the terminal.
const terminal = captureHandlerOutput(join(paths.logsDir, "handlers.log"), false);
const log = (message: string) => terminal.stderr(`[e2e] ${message}\n`);

// Small but real: 12 households over 14 months (the 12-month windows are full), then one more day.
const HOUSEHOLDS = 12;
const SEED = { households: HOUSEHOLDS, start: "2013-01-01", end: "2014-02-28" };
const LATER_DAY = "2014-03-01";

interface RawRow {
  readonly id: string;
  readonly day: string;
  readonly values: Readonly<Record<string, number | null>>;
}

function readRows(file: string): RawRow[] {
  const [headerLine, ...lines] = readFileSync(file, "utf8").trimEnd().split("\n");
  const header = (headerLine ?? "").split(",");
  return lines.map((line) => {
    const cells = line.split(",");
    const values: Record<string, number | null> = {};
    header.forEach((name, i) => {
      if (i >= 2) values[name] = cells[i] === "" || cells[i] === undefined ? null : Number(cells[i]);
    });
    return { id: cells[0] as string, day: cells[1] as string, values };
  });
}

const DAY_MS = 86_400_000;
const WINDOWS = { "3m": 90, "6m": 180, "12m": 365 } as const;
const PASSTHROUGHS = [
  "energy_median",
  "energy_mean",
  "energy_max",
  "energy_count",
  "energy_std",
  "energy_sum",
  "energy_min",
];

/**
 * The vector the feature view defines for `id` on its last day, computed from the raw rows alone:
 * passthroughs of that day, and for each window the energy_sum values of the days in
 * [last day - window + 1, last day]: sum, count, max, mean and the sample stddev (null under 2 values).
 */
function expectedVector(
  rows: readonly RawRow[],
  id: string,
): { date: string; features: Record<string, number | null> } {
  const own = rows.filter((r) => r.id === id);
  const last = own.reduce((a, b) => (b.day > a.day ? b : a));
  const end = Date.parse(`${last.day}T00:00:00Z`);
  const features: Record<string, number | null> = {};
  for (const name of PASSTHROUGHS) features[name] = last.values[name] ?? null;
  for (const [suffix, days] of Object.entries(WINDOWS)) {
    const start = end - (days - 1) * DAY_MS;
    const xs = own
      .filter((r) => {
        const t = Date.parse(`${r.day}T00:00:00Z`);
        return t >= start && t <= end;
      })
      .map((r) => r.values.energy_sum)
      .filter((x): x is number => x !== null && x !== undefined);
    const n = xs.length;
    const sum = xs.reduce((a, b) => a + b, 0);
    const mean = n > 0 ? sum / n : null;
    features[`energy_sum_${suffix}`] = n > 0 ? sum : null;
    features[`energy_count_${suffix}`] = n;
    features[`energy_max_${suffix}`] = n > 0 ? Math.max(...xs) : null;
    features[`energy_mean_${suffix}`] = mean;
    features[`energy_std_${suffix}`] =
      n >= 2 && mean !== null ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : null;
  }
  return { date: last.day, features };
}

function expectVectorsEqual(served: Record<string, unknown>, expected: Record<string, number | null>): void {
  for (const [name, want] of Object.entries(expected)) {
    const got = served[name];
    if (want === null) {
      expect(got, name).toBeNull();
    } else {
      expect(typeof got, name).toBe("number");
      // Sums of up to 365 values with 3 decimals; the job's fixed-point arithmetic is exact to 1e-9.
      expect(
        Math.abs((got as number) - want),
        `${name}: served ${got}, expected ${want}`,
      ).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want)));
    }
  }
}

interface ServedVector {
  featureDate: string;
  features: Record<string, unknown>;
}

let stack: LocalStack;
let seedFile: string;
let seedRows: RawRow[];

async function getVector(id: string): Promise<{ status: number; body: ServedVector }> {
  const response = await httpGet(`${stack.httpUrl}/features/energy/${id}`);
  return { status: response.status, body: JSON.parse(response.body) as ServedVector };
}

/** Uploads a file and follows it to its ingest outcome (and, when queued, through its run). */
async function putThrough(file: string) {
  const uploaded = await stack.upload(file);
  const outcome = await stack.waitForIngest(uploaded.key, uploaded.seq, 120_000);
  let step: StepRecord | undefined;
  if (outcome.outcome === "queued") {
    const item = await stack.waitForFile("energy", outcome.fileId, 600_000);
    step = await stack.runner.waitForRun(item.runId ?? "", 60_000);
  }
  return { uploaded, outcome, step };
}

/** Rows in the current Delta table version, from the add actions' statistics in its log. */
function deltaRowCount(table: string): number {
  const logDir = join(table, "_delta_log");
  const live = new Map<string, number>();
  for (const name of readdirSync(logDir)
    .filter((f) => f.endsWith(".json"))
    .sort()) {
    for (const line of readFileSync(join(logDir, name), "utf8").split("\n")) {
      if (!line.trim()) continue;
      const action = JSON.parse(line) as {
        add?: { path: string; stats?: string };
        remove?: { path: string };
      };
      if (action.add)
        live.set(
          action.add.path,
          (JSON.parse(action.add.stats ?? "{}") as { numRecords?: number }).numRecords ?? 0,
        );
      if (action.remove) live.delete(action.remove.path);
    }
  }
  return [...live.values()].reduce((a, b) => a + b, 0);
}

beforeAll(async () => {
  stack = new LocalStack({ settings, paths, say: log, jobTimeoutMs: 600_000 });
  await stack.startEngines();
  const admin = new Client({
    contactPoints: ["127.0.0.1"],
    localDataCenter: settings.CASSANDRA_LOCAL_DC,
    protocolOptions: { port: settings.CASSANDRA_PORT },
    authProvider: localCassandraAuthProvider({ ...process.env, FEATURE_STORE_LOCAL_DIR: paths.localDir }),
  });
  await admin.connect();
  await admin.execute(`TRUNCATE ${settings.KEYSPACE}.energy_features`);
  await admin.shutdown();
  await stack.startServices();
  seedFile = sampleFile(SEED, paths.dataDir, paths.venvPython, paths.root).path;
  seedRows = readRows(seedFile);
  log(`seed file ${seedFile}: ${seedRows.length} rows`);
});

afterAll(async () => {
  await stack?.stop();
  terminal.restore();
});

describe("local pipeline, end to end", () => {
  it("puts a raw CSV through ingest and the Spark job into both stores and serves the expected vector", async () => {
    const { outcome, step } = await putThrough(seedFile);
    expect(outcome.outcome).toBe("queued");
    expect(step?.state, step?.error).toBe("COMPLETED");

    // The summary is where the EMR job would have written it, in the offline bucket.
    const summaryKey = step?.summaryUri?.replace(`s3://${stack.aws.buckets.offline}/`, "") ?? "";
    const summary = await stack.clients.s3.send(
      new GetObjectCommand({ Bucket: stack.aws.buckets.offline, Key: summaryKey }),
    );
    expect(JSON.parse((await summary.Body?.transformToString()) ?? "null")).toEqual(step?.summary);

    // Offline: the Delta table holds one row per (entity, day) of the file.
    const table = join(paths.offlineDir, "delta", "energy");
    expect(existsSync(join(table, "_delta_log"))).toBe(true);
    expect(deltaRowCount(table)).toBe(seedRows.length);

    // Online, over HTTP: every entity's latest vector; one checked value by value.
    const ids = [...new Set(seedRows.map((r) => r.id))];
    expect(ids.length).toBe(HOUSEHOLDS);
    const entity = ids[0] as string;
    const expected = expectedVector(seedRows, entity);
    const served = await getVector(entity);
    expect(served.status).toBe(200);
    expect(served.body.featureDate).toBe(expected.date);
    expectVectorsEqual(served.body.features, expected.features);
    for (const id of ids)
      expect((await getVector(id)).body.featureDate).toBe(expectedVector(seedRows, id).date);
  });

  it("quarantines a malformed file with its report while serving goes on", async () => {
    const bad = sampleFile(
      { households: 3, start: LATER_DAY, end: LATER_DAY, malformed: "bad_header" },
      join(paths.dataDir, "uploads"),
      paths.venvPython,
      paths.root,
    ).path;
    const entity = seedRows[0]?.id as string;
    const reads: number[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) {
        reads.push((await getVector(entity)).status);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const { uploaded, outcome } = await putThrough(bad);
    reading = false;
    await reader;

    expect(outcome.outcome).toBe("quarantined");
    if (outcome.outcome !== "quarantined") return;
    expect(outcome.problems.map((p) => p.code)).toEqual(
      expect.arrayContaining(["missing_columns", "extra_columns"]),
    );
    expect(outcome.reportKey).toBe(`${quarantineKeyFor(uploaded.key, "energy")}.report.json`);
    const report = await stack.clients.s3.send(
      new GetObjectCommand({ Bucket: stack.aws.buckets.raw, Key: outcome.reportKey }),
    );
    const body = JSON.parse((await report.Body?.transformToString()) ?? "{}") as { problems: unknown[] };
    expect(body.problems.length).toBeGreaterThan(0);
    // No job for it, and reads never failed.
    expect(stack.runner.steps.length).toBe(1);
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.every((status) => status === 200)).toBe(true);
    expect((await getVector(entity)).status).toBe(200);
  });

  it("a later day's file advances the served vector to the new independent expectation", async () => {
    const later = sampleFile(
      { households: HOUSEHOLDS, start: LATER_DAY, end: LATER_DAY },
      join(paths.dataDir, "uploads"),
      paths.venvPython,
      paths.root,
    ).path;
    const laterRows = readRows(later);
    const entity = laterRows[0]?.id as string;
    const started = Date.now();
    const { outcome, step } = await putThrough(later);
    expect(outcome.outcome).toBe("queued");
    expect(step?.state, step?.error).toBe("COMPLETED");

    const served = await getVector(entity);
    log(`one-day file: upload to updated vector served in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const expected = expectedVector([...seedRows, ...laterRows], entity);
    expect(expected.date).toBe(LATER_DAY);
    expect(served.status).toBe(200);
    expect(served.body.featureDate).toBe(LATER_DAY);
    expectVectorsEqual(served.body.features, expected.features);
    expect(deltaRowCount(join(paths.offlineDir, "delta", "energy"))).toBe(seedRows.length + laterRows.length);
  });

  it("a burst of 8 one-day files at once takes a few runs, never two at a time, and serves the latest day", async () => {
    const days = Array.from({ length: 8 }, (_, i) =>
      new Date(Date.UTC(2014, 2, 2 + i)).toISOString().slice(0, 10),
    );
    // Out of order on purpose: the run ledger batches whatever is queued; windows do not care.
    const files = [...days]
      .reverse()
      .map(
        (day) =>
          sampleFile(
            { households: HOUSEHOLDS, start: day, end: day },
            join(paths.dataDir, "uploads"),
            paths.venvPython,
            paths.root,
          ).path,
      );
    const rows = files.flatMap(readRows);
    const started = Date.now();
    const uploads = await Promise.all(files.map((file) => stack.upload(file)));
    const outcomes = await Promise.all(uploads.map((u) => stack.waitForIngest(u.key, u.seq, 120_000)));
    const items = await Promise.all(
      outcomes.map((o) => {
        if (o.outcome !== "queued") throw new Error(`${o.key}: ${o.outcome}`);
        return stack.waitForFile("energy", o.fileId, 1_800_000);
      }),
    );
    log(`burst of 8: all files done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(items.map((f) => f.state)).toEqual(Array(8).fill("succeeded"));
    const burstRuns = new Set(items.map((f) => f.runId));
    expect(burstRuns.size).toBeLessThanOrEqual(3);

    // No two runs of the view overlapped: from the ledger's own timestamps of every run so far.
    const spans = (await listRuns(stack.ledger, "energy", 100))
      .map((r) => ({ id: r.runId, from: Date.parse(r.startedAt ?? ""), to: Date.parse(r.endedAt ?? "") }))
      .sort((a, b) => a.from - b.from);
    expect(spans.every((s) => Number.isFinite(s.from) && Number.isFinite(s.to))).toBe(true);
    for (const [i, span] of spans.entries()) {
      const before = spans[i - 1];
      if (before)
        expect(span.from, `${span.id} started before ${before.id} ended`).toBeGreaterThanOrEqual(before.to);
    }

    // Online = the latest row per entity over everything loaded; Delta holds every row once.
    const all = [
      ...seedRows,
      ...readRows(
        sampleFile(
          { households: HOUSEHOLDS, start: LATER_DAY, end: LATER_DAY },
          join(paths.dataDir, "uploads"),
          paths.venvPython,
          paths.root,
        ).path,
      ),
      ...rows,
    ];
    for (const id of new Set(rows.map((r) => r.id))) {
      const expected = expectedVector(all, id);
      const served = await getVector(id);
      expect(served.body.featureDate).toBe(expected.date);
      expectVectorsEqual(served.body.features, expected.features);
    }
    expect(deltaRowCount(join(paths.offlineDir, "delta", "energy"))).toBe(all.length);
  });
});
