// `npm run local:upload -- …`: puts a raw CSV into the running local pipeline's raw bucket (through
// the S3 API of its moto endpoint, no aws CLI needed) and follows it: quarantined with a report, or
// its feature job run to the end, then one updated vector read back over HTTP.
//
//   npm run local:upload -- path/to/file.csv [--name <file name in raw/energy/>]
//   npm run local:upload -- --day 2014-03-01 [--households N]     # generate a one-day file
//   npm run local:upload -- --bad [--kind bad_header|empty|header_only]  # a malformed file
//   add --no-wait to return right after the upload
import { existsSync, readFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { fileIdOf, readFile } from "#commons/run-ledger.js";
import { DynamoDbRunLedgerStore } from "#commons/run-ledger-store.js";
import { quarantineKeyFor } from "#functions/ingest/ingest-raw-files.js";
import { csvFacts } from "./csv-facts.js";
import { sleep } from "./engines.js";
import type { StepRecord } from "./job-runner.js";
import { localAwsClients } from "./local-aws.js";
import { httpGet } from "./read-burst.js";
import { summaryLines } from "./run-summary.js";
import { sampleFile } from "./sample-data.js";
import { localPaths, readLocalSettings } from "./settings.js";
import { readStackFile } from "./stack.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

/** Command-line flags; a wrong one ends the command with a usage hint, not a stack trace. */
function parseFlags() {
  try {
    return parseArgs({
      options: {
        name: { type: "string" },
        day: { type: "string" },
        households: { type: "string" },
        bad: { type: "boolean", default: false },
        kind: { type: "string", default: "bad_header" },
        "no-wait": { type: "boolean", default: false },
        timeout: { type: "string", default: "600" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\nusage: see the header of local/upload.ts\n`);
    process.exit(2);
  }
}
const { values: flags, positionals } = parseFlags();

const say = (message: string) => process.stdout.write(`[local:upload] ${message}\n`);

async function readJson<T>(s3: S3Client, bucket: string, key: string): Promise<T | undefined> {
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return JSON.parse((await object.Body?.transformToString("utf-8")) ?? "null") as T;
  } catch (error) {
    if ((error as Error).name === "NoSuchKey") return undefined;
    throw error;
  }
}

async function main(): Promise<number> {
  const settings = readLocalSettings();
  const paths = localPaths(settings);
  const stack = readStackFile(paths.stackFile);
  if (!stack) {
    say(`no running local pipeline (${paths.stackFile}); start it with: npm run local`);
    return 2;
  }
  const view = loadFeatureViews(paths.featureViewsDir).get(stack.view);
  if (!view) throw new Error(`unknown view ${stack.view}`);

  // The file: given, or generated with the same generator as the seed data.
  let file: string;
  if (flags.day || flags.bad) {
    const day = flags.day ?? "2014-03-01";
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new Error("--day must be YYYY-MM-DD");
    const spec = {
      // Same households as the running stack's generated data, so their vectors move on.
      households: Number(flags.households ?? stack.sampleHouseholds ?? 300),
      start: day,
      end: day,
      ...(flags.bad ? { malformed: flags.kind } : {}),
    };
    file = sampleFile(spec, join(paths.dataDir, "uploads"), paths.venvPython, paths.root).path;
  } else if (positionals[0]) {
    // npm runs this from the package root; a relative path means the caller's directory.
    file = resolve(process.env.INIT_CWD ?? process.cwd(), positionals[0]);
    if (!existsSync(file)) throw new Error(`${file}: no such file`);
  } else {
    say("usage: npm run local:upload -- <file.csv> | --day YYYY-MM-DD | --bad [--kind bad_header]");
    return 2;
  }

  const { s3, dynamodb } = localAwsClients(stack.endpoint);
  const key = `raw/${view.name}/${flags.name ?? basename(file)}`;
  if (!key.endsWith(".csv")) {
    // The raw bucket notifies ingest of raw/…/*.csv only (resources/storage.cjs), as in AWS.
    say(
      `${key} does not end in .csv: S3 would send no event and nothing would process it (use --name x.csv)`,
    );
    return 2;
  }
  const started = Date.now();
  const put = await s3.send(
    new PutObjectCommand({
      Bucket: stack.buckets.raw,
      Key: key,
      Body: readFileSync(file),
      ContentType: "text/csv",
    }),
  );
  say(`uploaded ${file} → s3://${stack.buckets.raw}/${key}`);
  if (flags["no-wait"]) return 0;

  // Follow the file the way an operator would in AWS: its run-ledger item, or its quarantine report.
  // Ingest files it under the same identity, from S3's event (tests/integration/aws-s3-events.test.ts).
  const runs = new DynamoDbRunLedgerStore(stack.runLedgerTable, dynamodb);
  const fileId = fileIdOf({ bucket: stack.buckets.raw, key, versionId: put.VersionId, eTag: put.ETag });
  const reportKey = `${quarantineKeyFor(key, view.name)}.report.json`;
  const deadline = started + Number(flags.timeout) * 1000;
  let runId: string | undefined;
  let announced = "";
  while (Date.now() < deadline) {
    const report = await readJson<{ problems: Array<{ message: string }>; checkedAt?: string }>(
      s3,
      stack.buckets.raw,
      reportKey,
    );
    if (report && Date.parse(report.checkedAt ?? "") >= started - 1000) {
      say(`QUARANTINED: ${report.problems.map((p) => p.message).join("; ")}`);
      say(`  report: s3://${stack.buckets.raw}/${reportKey}`);
      say(`  copy:   s3://${stack.buckets.raw}/${quarantineKeyFor(key, view.name)}`);
      return 1;
    }
    const item = await readFile(runs, view.name, fileId);
    const seen = item ? `${item.state} ${item.runId ?? ""}` : "";
    if (item && seen !== announced) {
      announced = seen;
      say(
        `run ledger: ${item.state}${item.runId ? ` (run ${item.runId})` : ""}` +
          ` after ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }
    if (item?.state === "succeeded" || item?.state === "failed") {
      runId = item.runId;
      break;
    }
    await sleep(500);
  }
  if (runId === undefined) {
    say(`the file's run did not end within ${flags.timeout} s (npm run local:status shows where it is)`);
    return 1;
  }

  const ledger = join(paths.pipelineDir, "steps", `${stack.clusterId}.json`);
  let step: StepRecord | undefined;
  while (Date.now() < deadline) {
    const steps = existsSync(ledger)
      ? ((JSON.parse(readFileSync(ledger, "utf8")) as { steps: StepRecord[] }).steps ?? [])
      : [];
    step = steps.find((s) => s.runId === runId && (s.state === "COMPLETED" || s.state === "FAILED"));
    if (step) break;
    await sleep(1000);
  }
  if (!step) {
    say(`run ${runId} did not finish within ${flags.timeout} s`);
    return 1;
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  say(`job ${step.state} (${step.seconds} s in Spark; ${seconds} s since the upload); log ${step.log}`);
  if (step.summaryUri) say(`summary (${step.summaryUri}):\n${summaryLines(step.summary).join("\n")}`);
  if (step.state !== "COMPLETED") return 1;

  const facts = await csvFacts(file, view.entityColumn, view.eventDateColumn);
  const [entity] = facts.lastDay.keys();
  if (entity !== undefined) {
    const url = `${stack.httpUrl}/features/${view.name}/${entity}`;
    const response = await httpGet(url);
    const body = JSON.parse(response.body) as { featureDate?: string; features?: Record<string, unknown> };
    say(`served now (${((Date.now() - started) / 1000).toFixed(1)} s after the upload): curl -s ${url}`);
    say(
      `  ${entity}: featureDate ${body.featureDate} (file's last day ${facts.lastDay.get(entity)}), ` +
        `energy_sum ${body.features?.energy_sum}, energy_sum_3m ${body.features?.energy_sum_3m}`,
    );
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    say(`error: ${(error as Error).message ?? String(error)}`);
    process.exitCode = 1;
  },
);
