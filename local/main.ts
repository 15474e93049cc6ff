// `npm run local` (after scripts/local.sh has run set-up): starts the local pipeline, puts a raw CSV
// through it (S3 event → ingest → EMR step → local Spark job → Delta + Cassandra), shows a served
// feature vector with the curl command that repeats it and a read-latency burst, then serves until
// Ctrl-C, reporting every later upload. Ctrl-C (SIGINT/SIGTERM) stops everything it started.
//
//   scripts/local.sh [--csv <file>] [--households N] [--reload] [--exit-after-ready]
//                    [--burst-requests N] [--burst-concurrency N] [--verbose]
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import type { IngestOutcome } from "#functions/ingest/ingest-raw-files.js";
import { csvFacts } from "./csv-facts.js";
import { captureHandlerOutput } from "./handler-output.js";
import { LOCAL_IAM_CREDENTIALS, localRequestSigner } from "./iam-auth.js";
import type { StepRecord } from "./job-runner.js";
import { httpGet, readBurst } from "./read-burst.js";
import { summaryLines } from "./run-summary.js";
import type { S3EventReport } from "./s3-events.js";
import { SEED_END, SEED_START, sampleFile } from "./sample-data.js";
import { localPaths, readLocalSettings } from "./settings.js";
import { LocalStack } from "./stack.js";

// Node 20 is supported here (package.json engines); the SDK's notice about future releases is noise.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

/** Command-line flags; a wrong one ends the command with a usage hint, not a stack trace. */
function parseFlags() {
  try {
    return parseArgs({
      options: {
        csv: { type: "string" },
        households: { type: "string", default: "300" },
        reload: { type: "boolean", default: false },
        "exit-after-ready": { type: "boolean", default: false },
        "burst-requests": { type: "string", default: "2000" },
        "burst-concurrency": { type: "string", default: "8" },
        verbose: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
      strict: true,
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\nusage: see scripts/local.sh --help\n`);
    process.exit(2);
  }
}
const { values: flags } = parseFlags();

const processStart = Number(process.env.LOCAL_T0_MS ?? Date.now());
const setupSeconds = Number(process.env.LOCAL_SETUP_SECONDS ?? Number.NaN);
const since = (t: number) => `${((Date.now() - t) / 1000).toFixed(1)} s`;

const settings = readLocalSettings();
const paths = localPaths(settings);
// With LOCAL_HTTP_AUTH=iam the API wants SigV4: this command's own reads sign like any caller.
const sign = settings.LOCAL_HTTP_AUTH === "iam" ? localRequestSigner() : undefined;
const handlerLog = join(paths.logsDir, "handlers.log");
// The handlers log every request (as to CloudWatch): to a file, and also here with --verbose.
const terminal = captureHandlerOutput(handlerLog, flags.verbose);
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (message: string) => terminal.stderr(`\x1b[1;34m[feature-store]\x1b[0m ${message}\n`);
const out = (message = "") => terminal.stdout(`${message}\n`);
const loadedView = loadFeatureViews(paths.featureViewsDir).get(settings.FEATURE_VIEW);
if (!loadedView) throw new Error(`No feature view ${settings.FEATURE_VIEW} in ${paths.featureViewsDir}`);
const view = loadedView;

function describeOutcome(outcome: IngestOutcome): string {
  switch (outcome.outcome) {
    case "queued":
    case "already-recorded": {
      const first =
        outcome.outcome === "queued"
          ? `${outcome.key}: accepted and queued (file ${outcome.fileId.slice(0, 12)})`
          : `${outcome.key}: this version is already in the run ledger (${outcome.state}${outcome.runId ? `, run ${outcome.runId}` : ""})`;
      const run = outcome.run;
      return run.status === "started"
        ? `${first}; feature job started (run ${run.runId}, EMR step ${run.stepId})`
        : run.status === "busy"
          ? `${first}; waits for the view's next run (run ${run.runId ?? "?"} holds the view)`
          : first;
    }
    case "quarantined":
      return (
        `${outcome.key}: QUARANTINED (${outcome.problems.map((p) => p.message).join("; ")})\n` +
        `    copy:   ${outcome.quarantineKey ?? "(not copied)"}\n    report: ${outcome.reportKey}`
      );
    case "ignored":
      return `${outcome.key}: ignored (${outcome.reason})`;
  }
}

function onIngest(report: S3EventReport): void {
  if (report.kind === "outcomes") for (const o of report.outcomes) say(`ingest: ${describeOutcome(o)}`);
  else if (report.kind === "failed") {
    say(
      `ingest: attempt ${report.attempt} failed for ${report.keys.join(", ")}: ${report.error} (will retry)`,
    );
  } else say(`ingest: gave up on ${report.keys.join(", ")} after retries: ${report.error}`);
}

function onStep(event: "queued" | "started" | "finished", step: StepRecord): void {
  if (event === "started") {
    say(`job ${step.runId}: spark-submit running locally (${step.inputs?.join(", ")}; log ${step.log})`);
  } else if (event === "finished") {
    say(
      `job ${step.runId}: ${step.state} in ${step.seconds} s` +
        (step.summaryUri ? ` (summary at ${step.summaryUri})` : "") +
        (step.error ? ` — ${step.error}` : ""),
    );
  }
}

const stack = new LocalStack({ settings, paths, say, onIngest, onStep });

let shuttingDown: Promise<void> | undefined;
let firstSignalAt = 0;
function shutdown(code: number, reason: string): Promise<void> {
  shuttingDown ??= (async () => {
    say(`${reason}: stopping everything this run started`);
    const hardStop = setTimeout(() => {
      say("shutdown is taking over 3 minutes; exiting");
      process.exit(code || 1);
    }, 180_000);
    hardStop.unref();
    await stack.stop();
    say("stopped");
    process.exit(code);
  })();
  return shuttingDown;
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    // npm forwards the terminal's Ctrl-C too, so one keypress can arrive twice: only a signal
    // well after the first one means "stop waiting".
    if (shuttingDown && Date.now() - firstSignalAt > 3000) {
      say("second interrupt: exiting without waiting (run the command again to clean up leftovers)");
      process.exit(130);
    }
    if (!shuttingDown) firstSignalAt = Date.now();
    void shutdown(signal === "SIGINT" ? 130 : 143, `${signal} received`);
  });
}

interface SeedRecord {
  readonly sha256: string;
  readonly keyspace: string;
  readonly file: string;
  readonly runId: string;
  readonly entity: string;
  readonly featureDate: string;
  readonly loadedAt: string;
}

const seedLedger = join(paths.pipelineDir, "seeds.json");
function readSeeds(): SeedRecord[] {
  return existsSync(seedLedger) ? (JSON.parse(readFileSync(seedLedger, "utf8")) as SeedRecord[]) : [];
}

async function servedDate(baseUrl: string, entity: string): Promise<string | undefined> {
  const response = await httpGet(
    `${baseUrl}/features/${view.name}/${encodeURIComponent(entity)}`,
    undefined,
    10_000,
    sign,
  );
  if (response.status !== 200) return undefined;
  return (JSON.parse(response.body) as { featureDate?: string }).featureDate ?? undefined;
}

async function main(): Promise<void> {
  if (flags.help) {
    out(
      readFileSync(__filename, "utf8")
        .split("\n")
        .slice(0, 7)
        .join("\n")
        .replace(/^\/\/ ?/gm, ""),
    );
    process.exit(0);
  }
  const households = Number(flags.households);
  if (!Number.isInteger(households) || households < 1 || households > 100_000) {
    throw new Error("--households must be an integer between 1 and 100000");
  }
  const timings: Array<[string, string]> = [];
  if (Number.isFinite(setupSeconds))
    timings.push(["set-up (install what is missing)", `${setupSeconds.toFixed(1)} s`]);

  const enginesStart = Date.now();
  say("starting the engines: Cassandra and a local AWS endpoint (moto: S3, SQS, EMR)");
  await stack.startEngines();
  await stack.startServices();
  timings.push(["engines up (Cassandra, moto, ingest, job runner, HTTP API)", since(enginesStart)]);
  say(`getFeatures HTTP API on ${stack.httpUrl} (handler logs: ${handlerLog})`);

  // The raw file: given, or generated (cached) by the Spark side's deterministic generator.
  let csv: string;
  if (flags.csv) {
    csv = resolve(process.env.LOCAL_CALLER_CWD ?? process.cwd(), flags.csv);
    if (!existsSync(csv)) throw new Error(`--csv ${csv}: no such file`);
  } else {
    say(
      `raw data: ${households} synthetic households, ${SEED_START} to ${SEED_END} (spark/tools/synthetic.py)`,
    );
    const sample = sampleFile(
      { households, start: SEED_START, end: SEED_END },
      paths.dataDir,
      paths.venvPython,
      paths.root,
    );
    csv = sample.path;
    stack.annotate({ sampleHouseholds: households });
    say(
      sample.reused ? `raw data: reusing ${csv}` : `raw data: wrote ${csv} in ${sample.seconds.toFixed(1)} s`,
    );
  }
  const facts = await csvFacts(csv, view.entityColumn, view.eventDateColumn);
  say(`raw data: ${facts.rows} rows, ${facts.lastDay.size} entities`);
  const ids = [...facts.lastDay.keys()];
  // The example: the entity whose data runs latest (ties: the first in the file).
  let example = ids[0] ?? "";
  for (const [id, day] of facts.lastDay) if (day > (facts.lastDay.get(example) ?? "")) example = id;

  const jobStart = Date.now();
  const known = readSeeds().find((s) => s.sha256 === facts.sha256 && s.keyspace === settings.KEYSPACE);
  // Loaded before, and both stores still hold it: the Delta table and a served vector.
  const alreadyServed =
    known !== undefined &&
    existsSync(join(paths.offlineDir, "delta", view.name, "_delta_log")) &&
    (await servedDate(stack.httpUrl, known.entity)) !== undefined;
  if (alreadyServed && !flags.reload) {
    say(`raw data: already loaded by run ${known.runId} (${known.loadedAt}); the stores still hold it`);
    say("          skipping the upload (--reload puts it through the pipeline again)");
    timings.push(["job", "skipped (data already loaded)"]);
  } else {
    const uploaded = await stack.upload(csv);
    say(`upload: s3://${stack.aws.buckets.raw}/${uploaded.key} (${(uploaded.bytes / 1e6).toFixed(1)} MB)`);
    const outcome = await stack.waitForIngest(uploaded.key, uploaded.seq, 120_000);
    if (outcome.outcome !== "queued" && outcome.outcome !== "already-recorded") {
      throw new Error(`the raw file was not accepted: ${describeOutcome(outcome)}`);
    }
    // Followed through the run ledger: the file may wait for a run already going.
    const file = await stack.waitForFile(view.name, outcome.fileId, 30 * 60_000);
    const step = await stack.runner.waitForRun(file.runId ?? "", 60_000);
    if (file.state !== "succeeded" || step.state !== "COMPLETED") {
      out(summaryLines(step.summary).join("\n"));
      throw new Error(`the feature job failed: ${step.error ?? "see its log"} (log: ${step.log})`);
    }
    timings.push(["job (upload → ingest → Spark → Delta + Cassandra)", since(jobStart)]);
    out();
    out(bold(`Run summary (${step.summaryUri})`));
    out(summaryLines(step.summary).join("\n"));
    const date = (await servedDate(stack.httpUrl, example)) ?? "";
    const seeds = readSeeds().filter((s) => !(s.sha256 === facts.sha256 && s.keyspace === settings.KEYSPACE));
    seeds.push({
      sha256: facts.sha256,
      keyspace: settings.KEYSPACE,
      file: csv,
      runId: file.runId ?? "",
      entity: example,
      featureDate: date,
      loadedAt: new Date().toISOString(),
    });
    writeFileSync(seedLedger, `${JSON.stringify(seeds, null, 2)}\n`);
  }

  const url = `${stack.httpUrl}/features/${view.name}/${example}`;
  const vector = await httpGet(url, undefined, 10_000, sign);
  timings.push(["first served vector (from the start of the command)", since(processStart)]);
  out();
  out(bold(`Feature vector of ${example} over HTTP (status ${vector.status}):`));
  out(`  curl -s ${url}`);
  try {
    out(JSON.stringify(JSON.parse(vector.body), null, 2));
  } catch {
    out(vector.body);
  }
  if (vector.status !== 200) throw new Error(`GET ${url} answered ${vector.status}`);

  const requests = Number(flags["burst-requests"]);
  const concurrency = Number(flags["burst-concurrency"]);
  if (requests > 0) {
    const burst = await readBurst(stack.httpUrl, view.name, ids, requests, concurrency, sign);
    out();
    out(
      bold(
        `Read burst: ${burst.requests} GETs, ${burst.concurrency} concurrent, random ids of ${ids.length}`,
      ),
    );
    out(
      `  p50 ${burst.p50Ms.toFixed(2)} ms   p99 ${burst.p99Ms.toFixed(2)} ms   max ${burst.maxMs.toFixed(2)} ms   ` +
        `${Math.round(burst.perSecond)} req/s   statuses ${JSON.stringify(burst.statusCounts)}`,
    );
  }

  out();
  out(bold("Elapsed"));
  for (const [name, value] of timings) out(`  ${name.padEnd(58)} ${value}`);
  out();

  if (flags["exit-after-ready"]) {
    await shutdown(0, "--exit-after-ready");
    return;
  }
  if (sign !== undefined) {
    out(bold("IAM auth is on (LOCAL_HTTP_AUTH=iam): sign requests with SigV4, service execute-api,"));
    out(
      `  region eu-west-1, access key ${LOCAL_IAM_CREDENTIALS.accessKeyId}, secret ${LOCAL_IAM_CREDENTIALS.secretAccessKey}:`,
    );
    out(
      `  curl -s --aws-sigv4 aws:amz:eu-west-1:execute-api --user ${LOCAL_IAM_CREDENTIALS.accessKeyId}:${LOCAL_IAM_CREDENTIALS.secretAccessKey} ${url}`,
    );
  }
  out(bold("Serving. Try:"));
  out(`  curl -s ${url}`);
  out(
    `  curl -s '${stack.httpUrl}/features/${view.name}?ids=${ids.slice(0, 3).join(",")}&features=energy_sum,energy_mean_3m'`,
  );
  out("  npm run local:upload -- --day 2014-03-01        # a later day: new features appear");
  out("  npm run local:upload -- --bad                   # a malformed file: quarantined with a report");
  out("  npm run local:upload -- path/to/file.csv       # any file of the energy view");
  out("Ctrl-C stops everything this command started.");
}

process.on("uncaughtException", (error) => {
  say(`unexpected error: ${error.stack ?? error.message}`);
  void shutdown(1, "failed");
});

main().catch((error: unknown) => {
  say(`error: ${(error as Error).message ?? String(error)}`);
  void shutdown(1, "failed");
});
