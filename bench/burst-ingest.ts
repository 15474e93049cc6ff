// A burst of one-day files through the whole local pipeline (S3 event → ingest → run ledger → local
// Spark job → runEvents), measured: how many runs, how long from the first upload to every file
// served, and whether any two runs of the view overlapped (from the ledger's own timestamps).
// Before the run ledger, every file was its own job; the one-file run measured first is that cost.
//
//   node --import tsx bench/burst-ingest.ts [--files 8] [--households 40]
// Uses its own keyspace, moto port, buckets and directory (.local/burst-pipeline); needs Cassandra.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { listRuns, type RunItem } from "#commons/run-ledger.js";
import { csvFacts } from "#local/csv-facts.js";
import { captureHandlerOutput } from "#local/handler-output.js";
import { httpGet } from "#local/read-burst.js";
import { sampleFile } from "#local/sample-data.js";
import { localPaths, readLocalSettings } from "#local/settings.js";
import { LocalStack } from "#local/stack.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const { values: flags } = parseArgs({
  options: { files: { type: "string", default: "8" }, households: { type: "string", default: "40" } },
});
const FILES = Number(flags.files);
const HOUSEHOLDS = Number(flags.households);

const settings = readLocalSettings({
  ...process.env,
  KEYSPACE: process.env.KEYSPACE ?? "feature_store_burst",
  LOCAL_MOTO_PORT: process.env.LOCAL_MOTO_PORT ?? "5164",
  LOCAL_HTTP_PORT: process.env.LOCAL_HTTP_PORT ?? "3164",
  LOCAL_BUCKET_PREFIX: process.env.LOCAL_BUCKET_PREFIX ?? "feature-store-burst",
});
const paths = localPaths(settings, "burst-pipeline");
rmSync(paths.pipelineDir, { recursive: true, force: true });
const terminal = captureHandlerOutput(join(paths.logsDir, "handlers.log"), false);
const say = (message: string) => terminal.stderr(`[burst] ${message}\n`);
const stack = new LocalStack({ settings, paths, say, reconcileMs: 5000 });

const day = (offset: number) => new Date(Date.UTC(2014, 2, 1 + offset)).toISOString().slice(0, 10);

async function upload(spec: { start: string; end: string }, name: string) {
  const file = sampleFile(
    { households: HOUSEHOLDS, ...spec },
    paths.dataDir,
    paths.venvPython,
    paths.root,
  ).path;
  const uploaded = await stack.upload(file, name);
  const outcome = await stack.waitForIngest(uploaded.key, uploaded.seq, 120_000);
  if (outcome.outcome !== "queued") throw new Error(`${name}: ${outcome.outcome}`);
  return outcome.fileId;
}

async function served(entity: string): Promise<string | undefined> {
  const response = await httpGet(`${stack.httpUrl}/features/energy/${entity}`);
  return response.status === 200
    ? (JSON.parse(response.body) as { featureDate?: string }).featureDate
    : undefined;
}

function overlaps(runs: readonly RunItem[]): string[] {
  const spans = runs
    .filter((r) => r.startedAt && r.endedAt)
    .map((r) => ({ id: r.runId, from: Date.parse(r.startedAt ?? ""), to: Date.parse(r.endedAt ?? "") }))
    .sort((a, b) => a.from - b.from);
  return spans
    .slice(1)
    .flatMap((s, i) => (s.from < (spans[i]?.to ?? 0) ? [`${spans[i]?.id} / ${s.id}`] : []));
}

async function main(): Promise<void> {
  await stack.startEngines();
  await stack.startServices();
  const seedStart = Date.now();
  const seed = await upload({ start: "2013-01-01", end: "2014-02-28" }, "seed.csv");
  await stack.waitForFile("energy", seed, 30 * 60_000);
  say(`seed loaded in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`);

  // One file alone: what each file cost when every file was its own job.
  const oneStart = Date.now();
  const one = await upload({ start: day(0), end: day(0) }, `day-${day(0)}.csv`);
  const oneFile = await stack.waitForFile("energy", one, 30 * 60_000);
  const oneSeconds = (Date.now() - oneStart) / 1000;
  say(`one file alone: ${oneFile.state} in ${oneSeconds.toFixed(1)} s`);

  // The burst: FILES one-day files uploaded at once.
  const burstStart = Date.now();
  const names = Array.from({ length: FILES }, (_, i) => day(i + 1));
  const ids = await Promise.all(names.map((d) => upload({ start: d, end: d }, `day-${d}.csv`)));
  const files = await Promise.all(ids.map((id) => stack.waitForFile("energy", id, 60 * 60_000)));
  const lastDay = names[names.length - 1] ?? "";
  const lastFile = sampleFile(
    { households: HOUSEHOLDS, start: lastDay, end: lastDay },
    paths.dataDir,
    paths.venvPython,
    paths.root,
  ).path;
  const [entity = ""] = (await csvFacts(lastFile, "household_id", "day")).lastDay.keys();
  let servedDate = await served(entity);
  while (servedDate !== lastDay && Date.now() - burstStart < 120_000) {
    await new Promise((r) => setTimeout(r, 500));
    servedDate = await served(entity);
  }
  const burstSeconds = (Date.now() - burstStart) / 1000;
  const runs = await listRuns(stack.ledger, "energy", 100);
  const burstRuns = new Set(files.map((f) => f.runId));
  const lines = [
    `files in the burst:               ${FILES} one-day files (${names[0]} … ${lastDay}), ${HOUSEHOLDS} households`,
    `file states:                      ${files.map((f) => f.state).join(", ")}`,
    `runs the burst took:              ${burstRuns.size} (${[...burstRuns].join(", ")})`,
    `runs per batch (files):           ${runs
      .filter((r) => burstRuns.has(r.runId))
      .map((r) => r.fileIds.length)
      .join(", ")}`,
    `first upload → all served:        ${burstSeconds.toFixed(1)} s (served featureDate ${servedDate})`,
    `one file alone (old cost / file): ${oneSeconds.toFixed(1)} s → ${FILES} files one job each ≈ ${(oneSeconds * FILES).toFixed(0)} s in sequence`,
    `overlapping runs in the ledger:   ${overlaps(runs).join("; ") || "none"} (of ${runs.length} runs)`,
  ];
  terminal.stdout(`${lines.join("\n")}\n`);
}

main()
  .catch((error: unknown) => say(`error: ${(error as Error).stack ?? String(error)}`))
  .finally(() => stack.stop());
