// Serving benchmark: how much getFeatures adds on top of the bare driver, and how it compares with
// the seed's access pattern. Seeds 5,560 energy entities into its own keyspace of the local
// Cassandra, then, in one run and at one concurrency, measures:
//   floor    bare driver, prepared SELECT of one wide row by id
//   handler  the real getFeatures middy stack in-process, fed API Gateway events
//   history  the seed's pattern: unprepared, string-built SELECT * over a ~630-row history partition
// and an open-loop run of the handler at a fixed rate (latency from each request's scheduled send
// time, so a stall is not hidden by coordinated omission). The seed is written once and reused;
// measuring starts once the node has no compaction running (a fresh 3.5M-row seed keeps it
// compacting for minutes, which made the floor's tail swing 5x between runs), and the measured
// phase runs BENCH_RUNS times in a row, reporting the spread of the handler/floor p99 ratio. Within a
// run, floor and handler alternate in rounds of ABBA order; each run's ratio is taken over all its
// rounds' requests merged, with a 95% interval from a paired bootstrap over rounds (p99-ratio.ts).
// The handler runs with the telemetry settings serverless.yml deploys (request-log sampling,
// batched latency metric). Writes bench/results/serve-<ts>.json and a chart (.png) next to it.
// Usage: npm run bench:serve (settings: see `settings` below).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import { Client, types } from "cassandra-driver";
import * as hdr from "hdr-histogram-js";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { cassandraClientOptions, onlineStoreConfigSchema } from "#commons/cassandra-online-store.js";
import { readConfig } from "#commons/config.js";
import type { FeatureView } from "#commons/feature-view.js";
import { loadFeatureViewFile } from "#commons/feature-view-files.js";
import { identifierSchema } from "#commons/identifiers.js";
import { createKeyspaceCql, createTableCql, onlineColumns } from "#commons/online-schema.js";
import { localCassandraAuthEnv, localCassandraAuthProvider } from "#scripts/cassandra/local-credentials.js";
import {
  abbaOrder,
  bootstrapRatio,
  type Mode,
  mulberry32,
  quantileOfUnion,
  type RoundSamples,
  ratioOfRounds,
  sortedSample,
  spread,
  tailEpisodes,
} from "./p99-ratio.js";

const settings = readConfig(
  z.object({
    BENCH_KEYSPACE: z._default(identifierSchema, "feature_store_bench"),
    CASSANDRA_PORT: z.coerce.number().int().min(1).max(65_535).default(9042),
    BENCH_ENTITIES: z.coerce.number().int().min(10).max(100_000).default(5560),
    BENCH_HISTORY_DAYS: z.coerce.number().int().min(1).max(2000).default(630),
    BENCH_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(16),
    /**
     * Measured requests per closed-loop mode and run (after a warm-up of BENCH_WARMUP). A p99 rests on
     * its slowest 1%, and those come in clumps (one stall delays every request in flight: 5-7 slow
     * requests per stall quiet, 10-20 loaded), so a p99 of 20,000 stood on only ~10-35 separate
     * events. The ratio's spread shrinks about as 1/sqrt(requests); 300,000 (~25 s per mode quiet)
     * held three runs within ±2-9% of their median quiet and ±10-15% loaded (docs/PERFORMANCE.md,
     * "a p99 ratio that holds still").
     */
    BENCH_REQUESTS: z.coerce.number().int().min(100).max(10_000_000).default(300_000),
    /**
     * Warm-up requests per mode before the first run. 2,000 (~0.2 s) left run 1 colder than the rest:
     * in all seven invocations measured, run 1 had the lowest handler/floor ratio (the floor's p99
     * 1.5x its later runs' on the quiet machine).
     */
    BENCH_WARMUP: z.coerce.number().int().min(0).max(1_000_000).default(30_000),
    /**
     * ...and for at least this long. With 30,000 requests (~5 s) the first ~10-15 s of run 1 were still
     * slower for both modes (segment p99s 4.3-5.3 ms against ~3.1 later), which one more depending on
     * the invocation: the 20,000-request run 1 read 0.78, the 300,000-request ones 1.14 and 1.18.
     */
    BENCH_WARMUP_SECONDS: z.coerce.number().int().min(0).max(3600).default(30),
    /**
     * Rounds per run; each runs floor, handler, handler, floor (the next one handler, floor, floor,
     * handler), so background load and drift hit both modes alike. Rounds are also the unit of the
     * ratio's bootstrap interval: an even number keeps the order balanced, and a bootstrap needs
     * enough of them (20: segments of 7,500 requests, each still hundreds of stall episodes long).
     */
    BENCH_ROUNDS: z.coerce.number().int().min(1).max(1000).default(20),
    /**
     * Requests sent, not recorded, at the start of every closed-loop segment, the loop running on:
     * a per-mode warm-up after each switch. Measured: the first tenth of the handler's segments had a
     * p99 1.1-1.25x the rest's, and a warm-up that paused the loop before measuring did not help.
     */
    BENCH_SEGMENT_WARMUP: z.coerce.number().int().min(0).max(1_000_000).default(1_000),
    /** Resamples of the paired bootstrap over rounds behind each ratio's 95% interval. */
    BENCH_BOOTSTRAP_RESAMPLES: z.coerce.number().int().min(100).max(100_000).default(2000),
    /** on: also write every closed-loop request's start and latency (…-raw.json), for analysis. */
    BENCH_RAW: z.enum(["on", "off"]).default("off"),
    /** The seed's pattern reads ~630 rows per request: fewer requests keep the run short. */
    BENCH_HISTORY_REQUESTS: z.coerce.number().int().min(100).max(10_000_000).default(4_000),
    BENCH_RATE: z.coerce.number().int().min(1).max(100_000).default(1000),
    BENCH_RATE_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
    BENCH_PYTHON: z.string().default(".local/venv/bin/python"),
    /** Consecutive measured runs (closed + open loop each) whose handler/floor p99 ratios are compared. */
    BENCH_RUNS: z.coerce.number().int().min(1).max(20).default(3),
    /** Longest wait for the node's compactions to finish before measuring (0: don't wait). */
    BENCH_COMPACTION_WAIT_SECONDS: z.coerce.number().int().min(0).max(7200).default(900),
    /** When compactions cannot be seen (no SELECT on system_views): wait after a fresh seed. */
    BENCH_SETTLE_SECONDS: z.coerce.number().int().min(0).max(7200).default(300),
    /**
     * on: the local node's threads on the last core, this process on the others (taskset, Linux), put
     * back at exit, so client and node stop taking turns on one core. Off by default: on two cores it
     * did not steady the p99 ratio across runs, and it squeezes the client's tail at a fixed rate
     * (docs/PERFORMANCE.md, "checked on a quiet machine").
     */
    BENCH_PIN: z.enum(["on", "off"]).default("off"),
  }),
);

const ROOT = resolve(__dirname, "..");
const KS = settings.BENCH_KEYSPACE;
const view: FeatureView = loadFeatureViewFile(join(ROOT, "resources/feature-views/energy.yml"));
const HISTORY_TABLE = "energy_history";
const ids = Array.from({ length: settings.BENCH_ENTITIES }, (_, i) => `MAC${String(i + 2).padStart(6, "0")}`);
// Kept before the handler's output is redirected (see main) so progress still reaches the terminal.
const realStderrWrite = process.stderr.write.bind(process.stderr);
const log = (message: string) => realStderrWrite(`[serve-bench] ${message}\n`);

// ---------------------------------------------------------------------------------------------
// Seeding

function featureValues(random: () => number): unknown[] {
  return view.features.map((f) =>
    f.type === "int" ? Math.floor(random() * 48) : Math.round(random() * 5e5) / 1e4,
  );
}

async function runBounded<T>(items: readonly T[], parallel: number, work: (item: T) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await work(item);
      }
    }),
  );
}

async function seed(client: Client): Promise<Record<string, unknown>> {
  const started = performance.now();
  await client.execute(createKeyspaceCql(KS));
  await client.execute(createTableCql(view, KS));
  const featureColumns = view.features.map((f) => `${f.name} ${f.type === "int" ? "int" : "double"}`);
  await client.execute(
    `CREATE TABLE IF NOT EXISTS ${KS}.${HISTORY_TABLE} (entity_id text, day date, ${featureColumns.join(", ")}, ` +
      "PRIMARY KEY (entity_id, day)) WITH CLUSTERING ORDER BY (day ASC)",
  );
  await client.execute(`CREATE TABLE IF NOT EXISTS ${KS}.bench_seed (name text PRIMARY KEY, spec text)`);
  const spec = `${settings.BENCH_ENTITIES} entities x ${settings.BENCH_HISTORY_DAYS} days, v1`;
  const done = await client.execute(`SELECT spec FROM ${KS}.bench_seed WHERE name = 'energy'`);
  if (done.first()?.get("spec") === spec) {
    log(`seed already present (${spec})`);
    return { reused: true, spec };
  }

  const random = mulberry32(42);
  const latestCql = `INSERT INTO ${KS}.${view.onlineTable} (${onlineColumns(view)
    .map((c) => c.name)
    .join(", ")}) VALUES (${onlineColumns(view)
    .map(() => "?")
    .join(", ")})`;
  const historyColumns = ["entity_id", "day", ...view.features.map((f) => f.name)];
  const historyCql = `INSERT INTO ${KS}.${HISTORY_TABLE} (${historyColumns.join(", ")}) VALUES (${historyColumns
    .map(() => "?")
    .join(", ")})`;
  const lastDay = types.LocalDate.fromString("2014-02-27");
  const lastDayMs = Date.UTC(2014, 1, 27);
  const dayAt = (offset: number) => types.LocalDate.fromDate(new Date(lastDayMs - offset * 86_400_000));
  const write = { prepare: true, consistency: types.consistencies.localQuorum };

  await runBounded(ids, 64, (id) =>
    client.execute(latestCql, [id, lastDay, ...featureValues(random), new Date()], write),
  );
  log(`seeded ${ids.length} latest rows in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  // History: one partition per entity, written in single-partition unlogged batches (cheap).
  const chunk = 30;
  let written = 0;
  const oldestDay = dayAt(settings.BENCH_HISTORY_DAYS - 1);
  const probeCql = `SELECT day FROM ${KS}.${HISTORY_TABLE} WHERE entity_id = ? AND day = ?`;
  await runBounded(ids, 16, async (id) => {
    // Partitions are written newest chunk first, so the oldest day marks a complete one: a run
    // interrupted (e.g. the node restarted by another suite) resumes where it stopped.
    if ((await client.execute(probeCql, [id, oldestDay], { prepare: true })).rowLength === 1) return;
    for (let start = 0; start < settings.BENCH_HISTORY_DAYS; start += chunk) {
      const queries = [];
      for (let d = start; d < Math.min(start + chunk, settings.BENCH_HISTORY_DAYS); d++) {
        queries.push({ query: historyCql, params: [id, dayAt(d), ...featureValues(random)] });
      }
      await client.batch(queries, { ...write, logged: false });
      written += queries.length;
    }
    if (written % 500_000 < settings.BENCH_HISTORY_DAYS) log(`history rows written: ${written}`);
  });
  await client.execute(`INSERT INTO ${KS}.bench_seed (name, spec) VALUES ('energy', ?)`, [spec], {
    prepare: true,
  });
  const seconds = (performance.now() - started) / 1000;
  log(`seeded ${written} history rows; seeding took ${seconds.toFixed(0)} s`);
  return { reused: false, spec, historyRows: written, seconds };
}

// ---------------------------------------------------------------------------------------------
// Measurement

interface Recording {
  histogram: hdr.Histogram;
  /** Offsets (ms since the measured phase began) and latencies (ms) of every request. */
  at: number[];
  latencyMs: number[];
  errors: number;
  elapsedMs: number;
  /** Process CPU time (user + system) spent while this mode ran: the noise-robust cost. */
  cpuMicros: number;
}

/** One clock for every mode, so the timeline shows the interleaved rounds as they ran. */
let measuredPhaseStart = performance.now();

function newRecording(): Recording {
  return {
    histogram: hdr.build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: 120_000_000,
      numberOfSignificantValueDigits: 3,
    }),
    at: [],
    latencyMs: [],
    errors: 0,
    elapsedMs: 0,
    cpuMicros: 0,
  };
}

function record(recording: Recording, begin: number, end: number, ok: boolean) {
  const latency = end - begin;
  recording.histogram.recordValue(Math.max(1, Math.round(latency * 1000)));
  recording.at.push(begin - measuredPhaseStart);
  recording.latencyMs.push(latency);
  if (!ok) recording.errors += 1;
}

type Request = (id: string) => Promise<boolean>;

const randomId = () => ids[Math.floor(Math.random() * ids.length)] as string;

/**
 * Closed loop: `concurrency` workers, each sending its next request when the last one returns. The
 * first `skip` requests are sent but not recorded, without pausing the loop: restarting a closed
 * loop sends all workers' requests in the same tick, and a warm-up that drains first would end
 * with the same synchronised restart it is meant to hide.
 */
async function closedLoop(request: Request, count: number, into?: Recording, skip = 0): Promise<void> {
  let issued = 0;
  let startedAt = performance.now();
  let cpuBefore = process.cpuUsage();
  await Promise.all(
    Array.from({ length: settings.BENCH_CONCURRENCY }, async () => {
      while (issued < count + skip) {
        const recorded = issued >= skip;
        if (issued === skip && skip > 0) {
          startedAt = performance.now();
          cpuBefore = process.cpuUsage();
        }
        issued += 1;
        const begin = performance.now();
        let ok = false;
        try {
          ok = await request(randomId());
        } catch {
          ok = false;
        }
        if (into !== undefined && recorded) record(into, begin, performance.now(), ok);
      }
    }),
  );
  if (into !== undefined) {
    into.elapsedMs += performance.now() - startedAt;
    const cpu = process.cpuUsage(cpuBefore);
    into.cpuMicros += cpu.user + cpu.system;
  }
}

/**
 * Open loop at `rate` requests/s for `seconds`: request i is due at start + i/rate and its latency
 * is measured from that due time, whether or not the generator managed to send it on time.
 */
interface OpenLoopRun {
  recording: Recording;
  lateSends: number;
  /**
   * How late the event loop itself ran, per segment (a fresh monitor each time: a re-enabled one
   * would count the paused interval). On a starved machine the scheduler, not the code under
   * test, sets the tail, and this shows it.
   */
  loopDelays: Array<{ p99: number; p999: number; max: number }>;
}

function newOpenLoopRun(): OpenLoopRun {
  return { recording: newRecording(), lateSends: 0, loopDelays: [] };
}

/** One open-loop segment, accumulated into `run` (segments of two modes can alternate). */
async function fixedRate(request: Request, rate: number, seconds: number, run: OpenLoopRun) {
  const { recording } = run;
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const total = rate * seconds;
  const intervalMs = 1000 / rate;
  const startedAt = performance.now() + 5;
  const cpuBefore = process.cpuUsage();
  let next = 0;
  const inFlight = new Set<Promise<void>>();
  await new Promise<void>((done) => {
    const tick = () => {
      const now = performance.now();
      while (next < total && startedAt + next * intervalMs <= now) {
        const due = startedAt + next * intervalMs;
        if (now - due > 1) run.lateSends += 1;
        next += 1;
        const pending: Promise<void> = request(randomId())
          .catch(() => false)
          .then((ok) => {
            record(recording, due, performance.now(), ok);
            inFlight.delete(pending);
          });
        inFlight.add(pending);
      }
      if (next >= total) done();
      else setTimeout(tick, Math.max(0, Math.min(1, startedAt + next * intervalMs - performance.now())));
    };
    setTimeout(tick, 5);
  });
  await Promise.all(inFlight);
  recording.elapsedMs += performance.now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  recording.cpuMicros += cpu.user + cpu.system;
  loopDelay.disable();
  const ms = (ns: number) => Math.round(ns / 1000) / 1000;
  run.loopDelays.push({
    p99: ms(loopDelay.percentile(99)),
    p999: ms(loopDelay.percentile(99.9)),
    max: ms(loopDelay.max),
  });
}

function summary(recording: Recording) {
  const h = recording.histogram;
  const ms = (us: number) => Math.round(us) / 1000;
  const percentiles = [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100];
  return {
    requests: h.totalCount,
    errors: recording.errors,
    throughputPerSecond: Math.round((h.totalCount / recording.elapsedMs) * 1000),
    clientCpuMicrosPerRequest: Math.round(recording.cpuMicros / Math.max(1, h.totalCount)),
    latencyMs: {
      p50: ms(h.getValueAtPercentile(50)),
      p90: ms(h.getValueAtPercentile(90)),
      p99: ms(h.getValueAtPercentile(99)),
      p999: ms(h.getValueAtPercentile(99.9)),
      max: ms(h.maxValue),
      mean: ms(h.mean),
    },
    percentileCurve: percentiles.map((p) => [p, ms(h.getValueAtPercentile(p))]),
    timeline: timeline(recording),
  };
}

/** Per-window p50/p99/max over the run (seconds on the shared clock), for the time chart. */
function timeline(recording: Recording, windows = 120): number[][] {
  const first = recording.at.reduce((min, t) => Math.min(min, t), Number.POSITIVE_INFINITY);
  const last = recording.at.reduce((max, t) => Math.max(max, t), 0);
  const span = Math.max(last - first, 1);
  const width = span / windows;
  const buckets: number[][] = Array.from({ length: windows }, () => []);
  recording.at.forEach((t, i) => {
    buckets[Math.min(windows - 1, Math.floor((t - first) / width))]?.push(recording.latencyMs[i] as number);
  });
  return buckets
    .map((values, index) => {
      if (values.length === 0) return undefined;
      values.sort((a, b) => a - b);
      const at = (q: number) => values[Math.min(values.length - 1, Math.floor(q * values.length))] as number;
      const round = (v: number) => Math.round(v * 1000) / 1000;
      return [
        round((first + (index + 0.5) * width) / 1000),
        round(at(0.5)),
        round(at(0.99)),
        round(at(1)),
        values.length,
      ];
    })
    .filter((row): row is number[] => row !== undefined);
}

/** One closed-loop stretch of one mode inside a round. */
interface Segment {
  mode: Mode;
  /** 0-based round of its run. */
  round: number;
  /** 1-4: where the segment ran in its round's ABBA order. */
  position: number;
  /** On the measured phase's clock (ms), and as UTC (to line up with the node's logs). */
  startedAtMs: number;
  startedAtUtc: string;
  recording: Recording;
  /** How late this process's event loop ran while the segment ran (a fresh monitor per segment). */
  loopDelayMs: { p99: number; max: number };
}

interface MeasuredRun {
  loadavgAtStart: number[];
  loadavgAtEnd: number[];
  startedMs: number;
  wallSeconds: number;
  segments: Segment[];
  floor: Recording;
  handler: Recording;
  /** Each round's latencies per mode, sorted: the unit of the ratio and of its bootstrap. */
  rounds: RoundSamples[];
  /** Handler/floor p99 of each closed-loop round (its segments of both modes ran back to back). */
  roundRatios: number[];
  /** Rounds that began while the node was compacting (undefined: compactions not visible). */
  roundsStartedDuringCompaction: number | undefined;
  rate: OpenLoopRun;
  floorRate: OpenLoopRun;
}

function mergeRecordings(recordings: readonly Recording[]): Recording {
  const merged = newRecording();
  for (const r of recordings) {
    merged.histogram.add(r.histogram);
    for (const t of r.at) merged.at.push(t);
    for (const l of r.latencyMs) merged.latencyMs.push(l);
    merged.errors += r.errors;
    merged.elapsedMs += r.elapsedMs;
    merged.cpuMicros += r.cpuMicros;
  }
  return merged;
}

function mergeOpenLoopRuns(runs: readonly OpenLoopRun[]): OpenLoopRun {
  return {
    recording: mergeRecordings(runs.map((r) => r.recording)),
    lateSends: runs.reduce((sum, r) => sum + r.lateSends, 0),
    loopDelays: runs.flatMap((r) => r.loopDelays),
  };
}

const p99Ms = (recording: Recording) => Math.round(recording.histogram.getValueAtPercentile(99)) / 1000;

/** A run's numbers without the per-request timeline. */
function brief(recording: Recording) {
  const h = recording.histogram;
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    requests: h.totalCount,
    errors: recording.errors,
    throughputPerSecond: Math.round((h.totalCount / Math.max(1, recording.elapsedMs)) * 1000),
    cpu: Math.round(recording.cpuMicros / Math.max(1, h.totalCount)),
    p50: ms(h.getValueAtPercentile(50)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
  };
}

const round3 = (v: number) => Math.round(v * 1000) / 1000;

/** One closed-loop segment of `mode`, its first BENCH_SEGMENT_WARMUP requests not recorded. */
async function closedLoopSegment(
  mode: Mode,
  request: Request,
  count: number,
  round: number,
  position: number,
): Promise<Segment> {
  const recording = newRecording();
  const loopDelay = monitorEventLoopDelay({ resolution: 2 });
  const startedAtMs = performance.now() - measuredPhaseStart;
  const startedAtUtc = new Date().toISOString();
  loopDelay.enable();
  await closedLoop(request, count, recording, settings.BENCH_SEGMENT_WARMUP);
  loopDelay.disable();
  const ms = (ns: number) => Math.round(ns / 1000) / 1000;
  return {
    mode,
    round,
    position,
    startedAtMs,
    startedAtUtc,
    recording,
    loopDelayMs: { p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) },
  };
}

/**
 * Where one mode's tail in one run came from: how many separate episodes its slow requests (above
 * the mode's p99) form, how many of them overlapped a GC pause of this process, how much GC and
 * event-loop delay this process had while the mode ran.
 */
function tailDiagnostics(segments: readonly Segment[], gcPauses: ReadonlyArray<[number, number]>) {
  const recording = mergeRecordings(segments.map((s) => s.recording));
  const p99 = quantileOfUnion([sortedSample(recording.latencyMs)], 0.99);
  const tail = tailEpisodes(recording.at, recording.latencyMs, p99);
  const overlapsGc = (begin: number, end: number) => gcPauses.some(([from, to]) => from < end && to > begin);
  let slowDuringGc = 0;
  recording.latencyMs.forEach((latency, i) => {
    const begin = recording.at[i] as number;
    if (latency > p99 && overlapsGc(begin, begin + latency)) slowDuringGc += 1;
  });
  let gcMs = 0;
  let segmentMs = 0;
  for (const segment of segments) {
    const from = segment.startedAtMs;
    const to = from + segment.recording.elapsedMs;
    segmentMs += segment.recording.elapsedMs;
    for (const [start, end] of gcPauses) gcMs += Math.max(0, Math.min(end, to) - Math.max(start, from));
  }
  return {
    p99Ms: round3(p99),
    slowRequests: tail.requests,
    slowEpisodes: tail.episodes,
    slowRequestsPerEpisode: Math.round((tail.requests / Math.max(1, tail.episodes)) * 10) / 10,
    slowDuringClientGcPercent: Math.round((slowDuringGc / Math.max(1, tail.requests)) * 1000) / 10,
    clientGcMsPerSecond: Math.round((gcMs / Math.max(1, segmentMs)) * 10_000) / 10,
    eventLoopDelayMaxMs: Math.max(...segments.map((s) => s.loopDelayMs.max)),
    eventLoopDelayP99Ms: Math.max(...segments.map((s) => s.loopDelayMs.p99)),
  };
}

/** p99 (ms) of one mode's segments grouped by position in the round, and the first tenth of each segment vs the rest. */
function orderEffects(segments: readonly Segment[], mode: Mode) {
  const own = segments.filter((s) => s.mode === mode);
  const p99Of = (samples: ArrayLike<number>[]) =>
    round3(
      quantileOfUnion(
        samples.map((v) => sortedSample(v)),
        0.99,
      ),
    );
  const first: number[] = [];
  const rest: number[] = [];
  for (const segment of own) {
    const latencies = segment.recording.latencyMs;
    const head = Math.ceil(latencies.length * 0.1);
    latencies.forEach((latency, i) => {
      (i < head ? first : rest).push(latency);
    });
  }
  return {
    p99ByPosition: [1, 2, 3, 4].map((position) =>
      p99Of(own.filter((s) => s.position === position).map((s) => s.recording.latencyMs)),
    ),
    p99FirstTenthOfSegments: p99Of([first]),
    p99RestOfSegments: p99Of([rest]),
  };
}

/** Whether the node runs a compaction now (undefined when the role may not see it). */
async function compactionRunning(client: Client): Promise<boolean | undefined> {
  try {
    return (await client.execute("SELECT kind FROM system_views.sstable_tasks")).rowLength > 0;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Quiet node

/**
 * Waits until the node runs no compaction (system_views.sstable_tasks, Cassandra 4+; the node has
 * no JMX port for nodetool). scripts/cassandra/local-auth-setup.ts grants the project role SELECT
 * on that one table; a node whose roles predate it (set up before; `scripts/cassandra.sh restart`
 * re-runs the setup) cannot show them: the run then says so in `compactions.checked` and measures
 * anyway.
 */
async function waitForCompactions(client: Client): Promise<Record<string, unknown>> {
  const started = performance.now();
  const deadline = started + settings.BENCH_COMPACTION_WAIT_SECONDS * 1000;
  let polls = 0;
  for (;;) {
    let tasks: Array<{ table: string; kind: string; progress: number }>;
    try {
      const result = await client.execute(
        "SELECT keyspace_name, table_name, kind, progress, total FROM system_views.sstable_tasks",
      );
      tasks = result.rows.map((row) => ({
        table: `${row.get("keyspace_name")}.${row.get("table_name")}`,
        kind: String(row.get("kind")),
        progress: Number(row.get("total")) > 0 ? Number(row.get("progress")) / Number(row.get("total")) : 0,
      }));
    } catch (error) {
      log(`cannot see the node's compactions (${(error as Error).message}); measuring without waiting`);
      return { checked: false, reason: (error as Error).message };
    }
    const waitedSeconds = Math.round((performance.now() - started) / 100) / 10;
    if (tasks.length === 0) {
      if (polls > 0) log(`compactions finished after ${waitedSeconds} s`);
      return { checked: true, waitedSeconds, quiet: true };
    }
    if (performance.now() > deadline) {
      log(`still compacting after ${waitedSeconds} s (BENCH_COMPACTION_WAIT_SECONDS); measuring anyway`);
      return { checked: true, waitedSeconds, quiet: false, running: tasks };
    }
    if (polls % 6 === 0) {
      const list = tasks.map((t) => `${t.kind} ${t.table} ${Math.round(t.progress * 100)}%`).join(", ");
      log(`waiting for ${tasks.length} compaction task(s): ${list}`);
    }
    polls += 1;
    await new Promise((done) => setTimeout(done, 5000));
  }
}

/** The getFeatures telemetry settings serverless.yml deploys (params.default), as env vars. */
function deployedTelemetryEnv(): Record<string, string> {
  const template = parseYaml(readFileSync(join(ROOT, "serverless.yml"), "utf8")) as {
    params: { default: Record<string, string> };
  };
  const params = template.params.default;
  return {
    REQUEST_LOG_SAMPLE_RATE: String(params.requestLogSampleRate ?? "1"),
    METRICS_FLUSH_INTERVAL_MS: String(params.metricsFlushIntervalMs ?? "0"),
  };
}

// ---------------------------------------------------------------------------------------------
// Pinning

/** The local node's pid, when scripts/cassandra.sh started it (its pid file) and it still runs. */
function localNodePid(): number | undefined {
  const pidFile = join(
    process.env.FEATURE_STORE_LOCAL_DIR ?? join(ROOT, ".local"),
    "cassandra",
    "cassandra.pid",
  );
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  if (!Number.isInteger(pid) || !existsSync(`/proc/${pid}`)) return undefined;
  return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("CassandraDaemon") ? pid : undefined;
}

function taskset(cores: string, pid: number): boolean {
  return spawnSync("taskset", ["-acp", cores, String(pid)], { stdio: "ignore" }).status === 0;
}

/** Pins (BENCH_PIN): the node to the last core, this process to the others; says what it did. */
function pinCores(): {
  pinned: boolean;
  node?: number;
  nodeCores?: string;
  benchCores?: string;
  reason?: string;
} {
  const count = cpus().length;
  if (settings.BENCH_PIN === "off") return { pinned: false, reason: "BENCH_PIN=off" };
  if (count < 2) return { pinned: false, reason: "one core" };
  const node = localNodePid();
  if (node === undefined) return { pinned: false, reason: "no local node from scripts/cassandra.sh" };
  const nodeCores = String(count - 1);
  const benchCores = count === 2 ? "0" : `0-${count - 2}`;
  if (!taskset(nodeCores, node)) return { pinned: false, reason: "taskset failed or missing" };
  process.on("exit", () => taskset(`0-${count - 1}`, node));
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));
  taskset(benchCores, process.pid);
  log(
    `pinned: node (pid ${node}) on core ${nodeCores}, this benchmark on core(s) ${benchCores} (BENCH_PIN=off: none)`,
  );
  return { pinned: true, node, nodeCores, benchCores };
}

async function main() {
  const loadAtStart = loadavg();
  const pinning = pinCores();
  const admin = new Client({
    contactPoints: ["127.0.0.1"],
    localDataCenter: "datacenter1",
    protocolOptions: { port: settings.CASSANDRA_PORT },
    socketOptions: { readTimeout: 60_000 },
    authProvider: localCassandraAuthProvider(),
  });
  await admin.connect();
  const seeding = await seed(admin);
  let compactions: Record<string, unknown> =
    settings.BENCH_COMPACTION_WAIT_SECONDS > 0 ? await waitForCompactions(admin) : { checked: false };
  if (compactions.checked === false && seeding.reused === false && settings.BENCH_SETTLE_SECONDS > 0) {
    // Compactions unobservable and the seed just written: give the node a fixed time instead.
    log(`seed just written: letting the node settle for ${settings.BENCH_SETTLE_SECONDS} s`);
    await new Promise((done) => setTimeout(done, settings.BENCH_SETTLE_SECONDS * 1000));
    compactions = { ...compactions, settledSeconds: settings.BENCH_SETTLE_SECONDS };
  }

  // The handler and the floor use the same driver settings (the adapter's), the history mode a
  // default client like the seed's sample.
  Object.assign(process.env, {
    ONLINE_STORE: "cassandra",
    CASSANDRA_CONTACT_POINTS: "127.0.0.1",
    CASSANDRA_PORT: String(settings.CASSANDRA_PORT),
    ...localCassandraAuthEnv(),
    KEYSPACE: KS,
    FEATURE_VIEWS_DIR: join(ROOT, "resources/feature-views"),
    POWERTOOLS_SERVICE_NAME: "feature-store",
    POWERTOOLS_METRICS_NAMESPACE: "FeatureStoreBench",
    POWERTOOLS_LOG_LEVEL: "INFO",
    ...deployedTelemetryEnv(),
  });
  const floorClient = new Client(cassandraClientOptions(readConfig(onlineStoreConfigSchema, process.env)));
  await floorClient.connect();
  const floorCql = `SELECT * FROM ${KS}.${view.onlineTable} WHERE entity_id = ?`;
  const floor: Request = async (id) =>
    (await floorClient.execute(floorCql, [id], { prepare: true })).rowLength === 1;

  // The handler logs one JSON line and flushes one EMF metric per request, as in Lambda; the lines
  // are formatted as usual but written to a null sink instead of the terminal.
  // (stderr too: with requests interleaved in one process, Powertools warns when another request
  // already flushed the shared metrics buffer - an artefact of the benchmark, not of Lambda.)
  let droppedLines = 0;
  const realStdoutWrite = process.stdout.write.bind(process.stdout);
  const nullSink = (() => {
    droppedLines += 1;
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = nullSink;
  process.stderr.write = nullSink;
  const serving = (await import(
    "#functions/get-features/handler.js"
  )) as typeof import("#functions/get-features/handler.js");
  await serving.connected;
  const context = {
    functionName: "feature-store-bench-getFeatures",
    memoryLimitInMB: "1024",
    invokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:feature-store-bench-getFeatures",
    awsRequestId: "bench",
    getRemainingTimeInMillis: () => 6000,
  };
  let sequence = 0;
  const handler: Request = async (id) => {
    sequence += 1;
    const event = {
      version: "2.0",
      routeKey: "GET /features/{view}/{entityId}",
      rawPath: `/features/energy/${id}`,
      rawQueryString: "",
      headers: {},
      isBase64Encoded: false,
      pathParameters: { view: "energy", entityId: id },
      requestContext: {
        requestId: `bench-${sequence}`,
        http: { method: "GET", path: `/features/energy/${id}` },
      },
    };
    const response = await serving.handler(
      event as never,
      { ...context, awsRequestId: `bench-${sequence}` } as never,
    );
    return response.statusCode === 200;
  };

  const historyClient = new Client({
    contactPoints: ["127.0.0.1"],
    localDataCenter: "datacenter1",
    protocolOptions: { port: settings.CASSANDRA_PORT },
    authProvider: localCassandraAuthProvider(),
  });
  await historyClient.connect();
  // Deliberately the defect being measured: a string-built, unprepared statement (never do this
  // with untrusted input; ids here are generated) that reads the whole history partition.
  const history: Request = async (id) =>
    (await historyClient.execute(`SELECT * FROM ${KS}.${HISTORY_TABLE} WHERE entity_id = '${id}'`))
      .rowLength > 0;

  const c = settings.BENCH_CONCURRENCY;
  // The history mode warms up first: its long reads leave work behind on the node and in this
  // process, which used to land on the first measured segment (the floor's, in every run 1). Then
  // floor and handler in ABBA rounds shaped like the measured ones, until each mode had
  // BENCH_WARMUP requests and BENCH_WARMUP_SECONDS have passed: the cold state measured lasts a time
  // (the first ~10-15 s), not a number of requests.
  log(
    `warm-up: at least ${settings.BENCH_WARMUP} requests per mode and ${settings.BENCH_WARMUP_SECONDS} s at concurrency ${c}`,
  );
  await closedLoop(history, Math.min(settings.BENCH_WARMUP, 500));
  const warmupRequests: Record<Mode, Request> = { floor, handler };
  const warmupSegment = Math.ceil(settings.BENCH_REQUESTS / settings.BENCH_ROUNDS / 2);
  const warmupEnds = performance.now() + settings.BENCH_WARMUP_SECONDS * 1000;
  for (
    let round = 0, perMode = 0;
    perMode < settings.BENCH_WARMUP || performance.now() < warmupEnds;
    round++
  ) {
    for (const mode of abbaOrder(round)) await closedLoop(warmupRequests[mode], warmupSegment);
    perMode += 2 * warmupSegment;
  }

  // Each run: BENCH_ROUNDS closed-loop rounds of four segments in ABBA order (floor, handler,
  // handler, floor; the next round handler, floor, floor, handler), then the open loop (the handler
  // for BENCH_RATE_SECONDS in total, the floor on the same schedule, alternating in segments so a
  // stall of the shared machine hits both alike). This process's GC pauses are recorded throughout.
  measuredPhaseStart = performance.now();
  const gcPauses: Array<[number, number]> = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const start = entry.startTime - measuredPhaseStart;
      gcPauses.push([start, start + entry.duration]);
    }
  });
  gcObserver.observe({ entryTypes: ["gc"] });
  const requests: Record<Mode, Request> = { floor, handler };
  const runs: MeasuredRun[] = [];
  const perSegment = Math.ceil(settings.BENCH_REQUESTS / settings.BENCH_ROUNDS / 2);
  const segmentSeconds = Math.max(1, Math.round(settings.BENCH_RATE_SECONDS / settings.BENCH_ROUNDS));
  const resamples = settings.BENCH_BOOTSTRAP_RESAMPLES;
  for (let runIndex = 1; runIndex <= settings.BENCH_RUNS; runIndex++) {
    const loadavgAtStart = loadavg();
    const startedMs = performance.now();
    const segments: Segment[] = [];
    let roundsStartedDuringCompaction: number | undefined = compactions.checked === true ? 0 : undefined;
    for (let round = 0; round < settings.BENCH_ROUNDS; round++) {
      if (roundsStartedDuringCompaction !== undefined && (await compactionRunning(admin)) === true) {
        roundsStartedDuringCompaction += 1;
      }
      for (const [index, mode] of abbaOrder(round).entries()) {
        segments.push(await closedLoopSegment(mode, requests[mode], perSegment, round, index + 1));
      }
    }
    const ofMode = (mode: Mode) => segments.filter((s) => s.mode === mode);
    const latenciesOf = (mode: Mode, round: number) =>
      sortedSample(
        ofMode(mode)
          .filter((s) => s.round === round)
          .flatMap((s) => s.recording.latencyMs),
      );
    const rounds: RoundSamples[] = Array.from({ length: settings.BENCH_ROUNDS }, (_, round) => ({
      floor: latenciesOf("floor", round),
      handler: latenciesOf("handler", round),
    }));
    const run: MeasuredRun = {
      loadavgAtStart,
      loadavgAtEnd: [],
      startedMs,
      wallSeconds: 0,
      segments,
      floor: mergeRecordings(ofMode("floor").map((s) => s.recording)),
      handler: mergeRecordings(ofMode("handler").map((s) => s.recording)),
      rounds,
      roundRatios: rounds.map((r) => round3(ratioOfRounds([r]))),
      roundsStartedDuringCompaction,
      rate: newOpenLoopRun(),
      floorRate: newOpenLoopRun(),
    };
    for (let done = 0; done < settings.BENCH_RATE_SECONDS; done += segmentSeconds) {
      const seconds = Math.min(segmentSeconds, settings.BENCH_RATE_SECONDS - done);
      await fixedRate(handler, settings.BENCH_RATE, seconds, run.rate);
      await fixedRate(floor, settings.BENCH_RATE, seconds, run.floorRate);
    }
    run.loadavgAtEnd = loadavg();
    run.wallSeconds = Math.round((performance.now() - run.startedMs) / 100) / 10;
    runs.push(run);
    const ci = bootstrapRatio(rounds, { resamples, seed: runIndex });
    log(
      `run ${runIndex}/${settings.BENCH_RUNS}: handler/floor p99 ${round3(ratioOfRounds(rounds))} (95% interval ${round3(ci.low)}-${round3(ci.high)}; ${p99Ms(run.handler)} / ${p99Ms(run.floor)} ms), paired by round ${spread(run.roundRatios).median}, load ${run.loadavgAtStart[0]?.toFixed(1)} -> ${run.loadavgAtEnd[0]?.toFixed(1)}, ${run.wallSeconds} s`,
    );
  }
  gcObserver.disconnect();
  const floorRec = mergeRecordings(runs.map((r) => r.floor));
  const handlerRec = mergeRecordings(runs.map((r) => r.handler));
  const rateRun = mergeOpenLoopRuns(runs.map((r) => r.rate));
  const floorRateRun = mergeOpenLoopRuns(runs.map((r) => r.floorRate));
  const loadAfter = loadavg();

  // Last, so the node's work after thousands of 630-row reads (GC, cache churn) hits no other mode.
  const historyRec = newRecording();
  await closedLoop(history, settings.BENCH_HISTORY_REQUESTS, historyRec);
  log("history mode done");

  process.stdout.write = realStdoutWrite;
  process.stderr.write = realStderrWrite as typeof process.stderr.write;
  await Promise.all([
    serving.store.close(),
    floorClient.shutdown(),
    historyClient.shutdown(),
    admin.shutdown(),
  ]);

  const modes = {
    floor: summary(floorRec),
    handler: summary(handlerRec),
    history: summary(historyRec),
  };
  const openLoop = (run: OpenLoopRun) => ({
    ...summary(run.recording),
    targetPerSecond: settings.BENCH_RATE,
    lateSends: run.lateSends,
    /** Worst segment's event-loop delay percentiles (ms), and every segment's. */
    eventLoopDelayMs: {
      p99: Math.max(...run.loopDelays.map((d) => d.p99)),
      p999: Math.max(...run.loopDelays.map((d) => d.p999)),
      max: Math.max(...run.loopDelays.map((d) => d.max)),
      segments: run.loopDelays,
    },
  });
  const rate = openLoop(rateRun);
  const floorRate = openLoop(floorRateRun);
  // The ratio of one run is the handler's p99 over the floor's, each over the merged requests of
  // all its rounds (not the median of per-round ratios: a round's p99 rests on a tenth of the slow
  // requests, and a median of noisy ratios throws the rest of them away).
  const allRounds = runs.flatMap((r) => r.rounds);
  const ratioOfAll = round3(ratioOfRounds(allRounds));
  const ciOfAll = bootstrapRatio(allRounds, { resamples, seed: 0 });
  const perRun = runs.map((run, index) => {
    const ci = bootstrapRatio(run.rounds, { resamples, seed: index + 1 });
    return {
      loadavgAtStart: run.loadavgAtStart,
      loadavgAtEnd: run.loadavgAtEnd,
      wallSeconds: run.wallSeconds,
      /** Handler p99 / floor p99, each over all the run's rounds merged (exact, not bucketed). */
      handlerP99OverFloorP99: round3(ratioOfRounds(run.rounds)),
      /** 95% interval of that ratio: paired bootstrap over the run's rounds (bench/p99-ratio.ts). */
      p99RatioCi95: [round3(ci.low), round3(ci.high)],
      /** The median of the rounds' ratios (the earlier, less efficient estimator; kept to compare). */
      pairedP99Ratio: spread(run.roundRatios).median,
      roundRatios: run.roundRatios,
      roundsStartedDuringCompaction: run.roundsStartedDuringCompaction,
      floor: brief(run.floor),
      handler: brief(run.handler),
      handlerAtRate: brief(run.rate.recording),
      floorAtRate: brief(run.floorRate.recording),
      /** Where each mode's tail came from in this run (see tailDiagnostics). */
      tails: {
        floor: tailDiagnostics(
          run.segments.filter((s) => s.mode === "floor"),
          gcPauses,
        ),
        handler: tailDiagnostics(
          run.segments.filter((s) => s.mode === "handler"),
          gcPauses,
        ),
      },
      segments: run.segments.map((s) => ({
        mode: s.mode,
        round: s.round,
        position: s.position,
        startedAtUtc: s.startedAtUtc,
        ms: Math.round(s.recording.elapsedMs),
        p99: p99Ms(s.recording),
        cpu: Math.round(s.recording.cpuMicros / Math.max(1, s.recording.histogram.totalCount)),
        loopDelayMaxMs: s.loopDelayMs.max,
      })),
    };
  });
  const allSegments = runs.flatMap((r) => r.segments);
  const ratioSpread = spread(perRun.map((r) => r.handlerP99OverFloorP99));
  const pairedSpread = spread(perRun.map((r) => r.pairedP99Ratio));
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const result = {
    benchmark: "serve",
    startedAt: new Date().toISOString(),
    command: "npm run bench:serve",
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      node: process.version,
      loadavgAtStart: loadAtStart,
      loadavgAfterFixedRate: loadAfter,
    },
    settings,
    pinning,
    handlerTelemetry: deployedTelemetryEnv(),
    seeding,
    compactions,
    handlerLogLinesWrittenToNullSink: droppedLines,
    runs: perRun,
    /** Handler/floor p99 ratio of each run, its median and largest deviation from it. */
    p99RatioSpread: ratioSpread,
    /** The same over each run's median of round ratios (kept to compare; see `runs`). */
    pairedP99RatioSpread: pairedSpread,
    /** Every run's rounds together: the ratio and its 95% interval (paired bootstrap over rounds). */
    pooled: {
      handlerP99OverFloorP99: ratioOfAll,
      p99RatioCi95: [round3(ciOfAll.low), round3(ciOfAll.high)],
      rounds: allRounds.length,
      bootstrapResamples: resamples,
    },
    /** Does a mode's p99 depend on where it ran in the round, or on the first requests of a segment? */
    orderEffects: {
      floor: orderEffects(allSegments, "floor"),
      handler: orderEffects(allSegments, "handler"),
    },
    clientGcPauses: { count: gcPauses.length, totalMs: round3(gcPauses.reduce((t, [a, b]) => t + b - a, 0)) },
    /** All runs together (the chart's data). */
    modes,
    fixedRate: rate,
    fixedRateFloor: floorRate,
    targets: {
      handlerP99OverFloorP99: { value: ratioOfAll, limit: 1.2, met: ratioOfAll <= 1.2 },
      ratioSpreadAcrossRuns: {
        value: ratioSpread.maxDeviationPercent,
        limitPercent: 20,
        met: ratioSpread.maxDeviationPercent <= 20,
      },
      pairedRatioSpreadAcrossRuns: {
        value: pairedSpread.maxDeviationPercent,
        limitPercent: 20,
        met: pairedSpread.maxDeviationPercent <= 20,
      },
      fixedRateP999Ms: { value: rate.latencyMs.p999, limit: 5.5, met: rate.latencyMs.p999 < 5.5 },
    },
  };
  const dir = join(ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  const jsonPath = join(dir, `serve-${stamp}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${jsonPath}`);
  if (settings.BENCH_RAW === "on") {
    const rawPath = join(dir, `serve-${stamp}-raw.json`);
    const micros = (values: readonly number[]) => values.map(round3);
    const raw = {
      clientGcPauses: gcPauses.map(([a, b]) => [round3(a), round3(b)]),
      runs: runs.map((run) =>
        run.segments.map((s) => ({
          mode: s.mode,
          round: s.round,
          position: s.position,
          startedAtMs: round3(s.startedAtMs),
          startedAtUtc: s.startedAtUtc,
          at: micros(s.recording.at),
          latencyMs: micros(s.recording.latencyMs),
        })),
      ),
    };
    writeFileSync(rawPath, JSON.stringify(raw));
    log(`wrote ${rawPath}`);
  }

  const python = resolve(ROOT, settings.BENCH_PYTHON);
  if (existsSync(python)) {
    const chart = spawnSync(python, [join(ROOT, "bench/plot_serve_bench.py"), jsonPath], {
      stdio: "inherit",
    });
    if (chart.status !== 0) log("chart rendering failed (the JSON result is complete)");
  } else {
    log(`no ${settings.BENCH_PYTHON} (run scripts/setup-python.sh) - chart skipped`);
  }

  const row = (name: string, s: ReturnType<typeof summary>) =>
    `${name.padEnd(18)} p50 ${s.latencyMs.p50} ms  p90 ${s.latencyMs.p90}  p99 ${s.latencyMs.p99}  p99.9 ${s.latencyMs.p999}  max ${s.latencyMs.max}  ${s.throughputPerSecond}/s  cpu ${s.clientCpuMicrosPerRequest} us/req  errors ${s.errors}`;
  log(row("floor", modes.floor));
  log(row("handler", modes.handler));
  log(row("history (seed)", modes.history));
  log(row(`handler @${settings.BENCH_RATE}/s`, rate));
  log(row(`floor @${settings.BENCH_RATE}/s`, floorRate));
  log(
    `event-loop delay in the worst fixed-rate segment (handler / floor): p99.9 ${rate.eventLoopDelayMs.p999} / ${floorRate.eventLoopDelayMs.p999} ms, max ${rate.eventLoopDelayMs.max} / ${floorRate.eventLoopDelayMs.max} ms; load average ${loadAtStart.map((l) => l.toFixed(1)).join(" ")} at start`,
  );
  for (const [index, run] of perRun.entries()) {
    log(
      `run ${index + 1}: handler/floor p99 ${run.handlerP99OverFloorP99}; cpu us/req floor ${run.floor.cpu} handler ${run.handler.cpu} (ratio ${Math.round((run.handler.cpu / Math.max(1, run.floor.cpu)) * 100) / 100}), @${settings.BENCH_RATE}/s floor ${run.floorAtRate.cpu} handler ${run.handlerAtRate.cpu}; load ${run.loadavgAtStart.map((l) => l.toFixed(1)).join(" ")} -> ${run.loadavgAtEnd.map((l) => l.toFixed(1)).join(" ")}`,
    );
  }
  log(
    `handler p99 / floor p99 = ${ratioOfAll} over all runs (95% interval ${result.pooled.p99RatioCi95.join("-")}; target <= 1.2); per run ${perRun.map((r) => `${r.handlerP99OverFloorP99} (${r.p99RatioCi95.join("-")})`).join(", ")}: median ${ratioSpread.median}, largest deviation ${ratioSpread.maxDeviationPercent}% (target <= 20%); paired by round ${pairedSpread.values.join(", ")}: median ${pairedSpread.median}, largest deviation ${pairedSpread.maxDeviationPercent}%; p99.9 at ${settings.BENCH_RATE}/s = ${rate.latencyMs.p999} ms (target < 5.5)`,
  );
}

main().catch((error: unknown) => {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  // Open driver pools would keep the process alive.
  process.exit(1);
});
