// `npm run local:status [-- --view energy] [--runs N] [--json]`: the run ledger of the running local
// pipeline, read from its DynamoDB table on moto by the same code as the status function on AWS
// (`sls invoke -f status --data '{"view":"energy"}'`): what runs now, recent runs, queued files,
// failures and quarantined files.
import { parseArgs } from "node:util";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { DynamoDbRunLedgerStore } from "#commons/run-ledger-store.js";
import { status, type ViewStatus } from "#functions/status/status.js";
import { localAwsClients } from "./local-aws.js";
import { localPaths, readLocalSettings } from "./settings.js";
import { readStackFile } from "./stack.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const { values: flags } = parseArgs({
  options: {
    view: { type: "string" },
    runs: { type: "string", default: "10" },
    json: { type: "boolean", default: false },
  },
});

const when = (iso: string | undefined) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$|Z$/, "") : "-");

function describe(view: ViewStatus): string[] {
  const lines = [`view ${view.view}`];
  const lock = view.lock;
  lines.push(
    lock.state === "idle"
      ? "  now      idle"
      : `  now      ${lock.state} run ${"runId" in lock ? lock.runId : "?"}${"stepId" in lock && lock.stepId ? ` (step ${lock.stepId})` : ""}`,
  );
  if ("newestFeatureDate" in lock && lock.newestFeatureDate)
    lines.push(`  newest   features dated ${lock.newestFeatureDate}`);
  lines.push(
    `  files    ${view.queued.length} queued, ${view.running.length} running, ${view.succeededFiles} succeeded, ` +
      `${view.failed.length} failed, ${view.quarantined.length} quarantined${view.received.length ? `, ${view.received.length} received (not staged yet)` : ""}`,
  );
  if (view.runs.length > 0) lines.push("  runs (newest first)");
  for (const run of view.runs) {
    const took =
      run.startedAt && run.endedAt
        ? ` ${((Date.parse(run.endedAt) - Date.parse(run.startedAt)) / 1000).toFixed(0)} s`
        : "";
    lines.push(
      `    ${run.runId.padEnd(34)} ${run.state.padEnd(9)} attempt ${run.attempt}  ${String(run.fileIds.length).padStart(3)} file(s)` +
        `  ${run.mode}  started ${when(run.startedAt)}${took}` +
        (run.deltaVersion !== undefined ? `  delta v${run.deltaVersion}` : "") +
        (run.error ? `  ${run.error}` : ""),
    );
  }
  for (const [label, files] of [
    ["queued", view.queued],
    ["failed", view.failed],
    ["quarantined", view.quarantined],
  ] as const) {
    for (const file of files) {
      lines.push(
        `  ${label.padEnd(11)} ${file.key}${file.runId ? ` (run ${file.runId})` : ""}${file.error ? `: ${file.error}` : ""}`,
      );
    }
  }
  return lines;
}

async function main(): Promise<number> {
  const paths = localPaths(readLocalSettings());
  const stack = readStackFile(paths.stackFile);
  if (!stack) {
    process.stderr.write(`no running local pipeline (${paths.stackFile}); start it with: npm run local\n`);
    return 2;
  }
  const ledger = new DynamoDbRunLedgerStore(stack.runLedgerTable, localAwsClients(stack.endpoint).dynamodb);
  const shown = await status(
    { ...(flags.view ? { view: flags.view } : {}), runs: Number(flags.runs) },
    { ledger, views: loadFeatureViews(paths.featureViewsDir) },
  );
  process.stdout.write(
    flags.json ? `${JSON.stringify(shown, null, 2)}\n` : `${shown.views.flatMap(describe).join("\n")}\n`,
  );
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`error: ${(error as Error).message ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
