// The feature job's run orchestration over the run ledger: at most one run per view at a time (a
// LOCK item taken with a conditional write), queued files batched into the next run, runs closed
// from EMR step events, failed runs retried with the same inputs a bounded number of times, then
// their files marked failed with an alert. Every transition is a conditional write, so a
// duplicate or late event, or two invocations racing, change nothing twice; every crash leaves
// the ledger in a state that `reconcileView` (run every 5 minutes) drives on to the end.
import {
  CancelStepsCommand,
  DescribeStepCommand,
  type EMRClient,
  ListClustersCommand,
  ListStepsCommand,
  TerminateJobFlowsCommand,
} from "@aws-sdk/client-emr";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { FeatureJobConfig } from "./feature-job-config.js";
import type { FeatureView } from "./feature-view.js";
import { newRunId, randomRunIdSuffix } from "./identifiers.js";
import { jobLocationsFor } from "./jobs/artifacts.js";
import { featureJobPurpose } from "./jobs/cluster.js";
import {
  type FeatureJobRun,
  featureJobStepName,
  type RepairSelection,
  type RunMode,
} from "./jobs/feature-job-step.js";
import {
  expiresAt,
  type FileItem,
  fileSk,
  LOCK_SK,
  type LockItem,
  ledgerItem,
  queuedFiles,
  type RunItem,
  readLock,
  readRun,
  runSk,
  viewPk,
} from "./run-ledger.js";
import type { RunLedgerStore } from "./run-ledger-store.js";
import { parseS3Uri } from "./s3-object.js";

/** How long a starter may hold the lock in "starting" before another invocation takes over. */
export const START_LEASE_MS = 3 * 60_000;
/**
 * A run still "running" this long after RUN_TIMEOUT_MINUTES is cancelled: the job ends itself at
 * the timeout (--timeout-minutes); the margin covers a transient cluster's start-up.
 */
export const RUN_TIMEOUT_GRACE_MINUTES = 30;

export interface RunSettings {
  readonly MAX_RUN_ATTEMPTS: number;
  readonly RUN_TIMEOUT_MINUTES: number;
  readonly MAX_FILES_PER_RUN: number;
}

/** CloudWatch metrics of the runs (namespace FeatureStore, dimension view). */
export interface RunMetrics {
  count(name: "RunsFailed" | "RunsSucceeded" | "FilesQuarantined", view: string, value?: number): void;
  hours(name: "FeatureDataAgeHours", view: string, value: number): void;
}

/** Where a run that failed for good is announced (SNS on AWS). */
export interface RunAlerts {
  publish(subject: string, message: string): Promise<void>;
}

/** Starts one EMR step for a run; jobs/start-step.ts startFeatureJobStep on AWS. */
export type StartRunStep = (
  run: FeatureJobRun,
) => Promise<{ clusterId: string; stepIds: readonly string[]; transientCluster: boolean }>;

export interface RunDependencies {
  readonly ledger: RunLedgerStore;
  readonly emr: EMRClient;
  readonly s3: S3Client;
  readonly config: FeatureJobConfig & RunSettings;
  readonly views: ReadonlyMap<string, FeatureView>;
  readonly startStep: StartRunStep;
  readonly metrics?: RunMetrics;
  readonly alerts?: RunAlerts;
  readonly now?: () => Date;
  readonly randomSuffix?: () => string;
}

export type StartOutcome =
  | {
      readonly status: "started";
      readonly runId: string;
      readonly clusterId: string;
      readonly stepId: string;
    }
  | { readonly status: "busy"; readonly runId: string | undefined }
  | { readonly status: "idle" };

/** A run of this view is going; submit refuses a backfill then (docs/DEPLOY.md, "Run ledger"). */
export class RunInProgressError extends Error {
  override name = "RunInProgressError";
}

const now = (deps: RunDependencies) => deps.now?.() ?? new Date();

function freshRunId(deps: RunDependencies): string {
  const suffix = deps.randomSuffix?.() ?? randomRunIdSuffix();
  return newRunId(now(deps), suffix);
}

/** The retry of attempt n of a run: same base id, "-a<n+1>" (stays within 64 characters). */
export function retryRunId(baseRunId: string, attempt: number): string {
  return `${baseRunId}-a${attempt}`;
}

function jobRun(run: RunItem, deps: RunDependencies): FeatureJobRun {
  return {
    view: run.view,
    inputs: run.inputs,
    mode: run.mode,
    runId: run.runId,
    ...(run.repair ? { repair: run.repair } : {}),
    timeoutMinutes: deps.config.RUN_TIMEOUT_MINUTES,
  };
}

// --- Starting runs ---

/**
 * Takes the view's lock for a new run of the given inputs, or reports who holds it. The lock goes
 * idle → starting only if it is absent or idle, so at most one invocation wins.
 */
async function acquireLock(view: string, runId: string, deps: RunDependencies): Promise<boolean> {
  const at = now(deps);
  return deps.ledger.update(
    viewPk(view),
    LOCK_SK,
    { view, state: "starting", runId, leaseUntil: at.getTime() + START_LEASE_MS, since: at.toISOString() },
    { ifAbsent: true, equals: { state: "idle" } },
  );
}

/** Starts the next batch of queued files of the view if no run holds the lock. */
export async function startNextRun(
  view: string,
  deps: RunDependencies,
  trigger: RunItem["trigger"],
): Promise<StartOutcome> {
  const lock = await readLock(deps.ledger, view);
  if (lock?.state === "running") return { status: "busy", runId: lock.runId };
  if (lock?.state === "starting") {
    if ((lock.leaseUntil ?? 0) > now(deps).getTime()) return { status: "busy", runId: lock.runId };
    return takeOver(view, lock, deps);
  }
  if ((await queuedFiles(deps.ledger, view)).length === 0) return { status: "idle" };
  const runId = freshRunId(deps);
  if (!(await acquireLock(view, runId, deps))) {
    return { status: "busy", runId: (await readLock(deps.ledger, view))?.runId };
  }
  // Read again under the lock: a list read before it may hold files a run that just ended took.
  const files = (await queuedFiles(deps.ledger, view)).slice(0, deps.config.MAX_FILES_PER_RUN);
  if (files.length === 0) {
    await deps.ledger.update(viewPk(view), LOCK_SK, idleLock(), { equals: { runId } });
    return { status: "idle" };
  }
  const run: RunItem = {
    view,
    runId,
    baseRunId: runId,
    attempt: 1,
    state: "starting",
    mode: "incremental",
    fileIds: files.map((f) => f.fileId),
    inputs: files.map((f) => f.stagedUri ?? ""),
    trigger,
    createdAt: now(deps).toISOString(),
  };
  await deps.ledger.put(ledgerItem(viewPk(view), runSk(runId), run), { ifAbsent: true });
  return launch(run, deps);
}

/**
 * A backfill by hand (submit): a run of the given inputs through the same lock. Refused with
 * RunInProgressError while another run of the view holds it; nothing is queued.
 */
export async function startRequestedRun(
  request: {
    view: string;
    inputs: readonly string[];
    mode: RunMode;
    runId?: string | undefined;
    repair?: RepairSelection | undefined;
  },
  deps: RunDependencies,
): Promise<StartOutcome & { status: "started" }> {
  const runId = request.runId ?? freshRunId(deps);
  if (!(await acquireLock(request.view, runId, deps))) {
    const lock = await readLock(deps.ledger, request.view);
    throw new RunInProgressError(
      `View ${request.view} has a run going (${lock?.runId ?? "?"}, ${lock?.state ?? "?"}); only one feature ` +
        `job per view runs at a time. Submit again when it has ended (see the status function).`,
    );
  }
  const run: RunItem = {
    view: request.view,
    runId,
    baseRunId: runId,
    attempt: 1,
    state: "starting",
    mode: request.mode,
    ...(request.repair ? { repair: request.repair } : {}),
    fileIds: [],
    inputs: request.inputs,
    trigger: "submit",
    createdAt: now(deps).toISOString(),
  };
  await deps.ledger.put(ledgerItem(viewPk(request.view), runSk(runId), run), { ifAbsent: true });
  const outcome = await launch(run, deps);
  if (outcome.status !== "started") throw new RunInProgressError(`Run ${runId} could not be started`);
  return outcome;
}

/**
 * Adds the run's step and records where it runs. If adding the step fails the lock stays
 * "starting" until its lease ends: the step may have been added after all (a lost response), and
 * the take-over looks for it before starting it again.
 */
async function launch(run: RunItem, deps: RunDependencies): Promise<StartOutcome> {
  const started = await deps.startStep(jobRun(run, deps));
  const stepId = started.stepIds[0] ?? "";
  await markRunning(
    run,
    { clusterId: started.clusterId, stepId, transientCluster: started.transientCluster },
    deps,
  );
  return { status: "started", runId: run.runId, clusterId: started.clusterId, stepId };
}

async function markRunning(
  run: RunItem,
  where: { clusterId: string; stepId: string; transientCluster: boolean },
  deps: RunDependencies,
): Promise<void> {
  const at = now(deps).toISOString();
  const pk = viewPk(run.view);
  await deps.ledger.update(
    pk,
    runSk(run.runId),
    { state: "running", startedAt: at, ...where },
    { equals: { state: "starting" } },
  );
  await deps.ledger.update(
    pk,
    LOCK_SK,
    { state: "running", clusterId: where.clusterId, stepId: where.stepId, leaseUntil: undefined },
    { equals: { runId: run.runId } },
  );
  for (const fileId of run.fileIds) {
    await deps.ledger.update(pk, fileSk(fileId), { state: "running", runId: run.runId, updatedAt: at });
  }
}

/** The step a dead starter may have added: by name on the cluster, or a transient cluster by name. */
async function findStartedStep(
  run: RunItem,
  deps: RunDependencies,
): Promise<{ clusterId: string; stepId: string; transientCluster: boolean } | undefined> {
  const stepName = featureJobStepName(jobRun(run, deps));
  const stepOn = async (clusterId: string) =>
    (await deps.emr.send(new ListStepsCommand({ ClusterId: clusterId }))).Steps?.find(
      (s) => s.Name === stepName,
    )?.Id;
  const clusterId = deps.config.EMR_CLUSTER_ID;
  if (clusterId) {
    const stepId = await stepOn(clusterId);
    return stepId ? { clusterId, stepId, transientCluster: false } : undefined;
  }
  // A transient cluster is named "<stack> <view> <runId>" (featureJobPurpose) and tagged with the
  // run id; it was created after the run item.
  const purpose = featureJobPurpose(jobRun(run, deps)).name;
  const createdAfter = new Date(Date.parse(run.createdAt) - 60_000);
  let marker: string | undefined;
  do {
    const page = await deps.emr.send(new ListClustersCommand({ CreatedAfter: createdAfter, Marker: marker }));
    const cluster = page.Clusters?.find((c) => c.Name?.endsWith(` ${purpose}`) && c.Id);
    if (cluster?.Id) {
      return { clusterId: cluster.Id, stepId: (await stepOn(cluster.Id)) ?? "", transientCluster: true };
    }
    marker = page.Marker;
  } while (marker);
  return undefined;
}

/** Takes over a lock whose starter's lease ran out: finish what it started, or start it again. */
async function takeOver(view: string, lock: LockItem, deps: RunDependencies): Promise<StartOutcome> {
  const runId = lock.runId ?? "";
  const claimed = await deps.ledger.update(
    viewPk(view),
    LOCK_SK,
    { leaseUntil: now(deps).getTime() + START_LEASE_MS },
    { equals: { state: "starting", runId, leaseUntil: lock.leaseUntil ?? null } },
  );
  if (!claimed) return { status: "busy", runId };
  const run = await readRun(deps.ledger, view, runId);
  if (run === undefined) {
    // The starter died before writing its run: nothing was started. Free the lock, start afresh.
    await deps.ledger.update(viewPk(view), LOCK_SK, idleLock(), { equals: { runId } });
    return startNextRun(view, deps, "reconcile");
  }
  if (run.state !== "starting") return settleRun(run, deps);
  const found = await findStartedStep(run, deps);
  if (found) {
    await markRunning(run, found, deps);
    return { status: "started", runId, clusterId: found.clusterId, stepId: found.stepId };
  }
  return launch(run, deps);
}

function idleLock(): Record<string, undefined | string> {
  return { state: "idle", runId: undefined, leaseUntil: undefined, clusterId: undefined, stepId: undefined };
}

// --- Closing runs ---

export const STEP_STATES = [
  "PENDING",
  "RUNNING",
  "COMPLETED",
  "CANCEL_PENDING",
  "CANCELLED",
  "FAILED",
  "INTERRUPTED",
] as const;
export type StepState = (typeof STEP_STATES)[number];

export interface StepStateChange {
  readonly view: string;
  readonly runId: string;
  readonly clusterId: string;
  readonly stepId: string;
  readonly state: string;
  readonly message?: string | undefined;
}

export type CloseOutcome =
  | { readonly status: "ignored"; readonly reason: string }
  | { readonly status: "running"; readonly runId: string }
  | {
      readonly status: "succeeded" | "failed" | "retried";
      readonly runId: string;
      readonly next?: StartOutcome;
    };

/** Applies one step state change to its run. Duplicates and late events find the run moved on. */
export async function onStepStateChange(
  change: StepStateChange,
  deps: RunDependencies,
): Promise<CloseOutcome> {
  const run = await readRun(deps.ledger, change.view, change.runId);
  if (!run)
    return { status: "ignored", reason: `no run ${change.runId} of view ${change.view} in the ledger` };
  if (run.stepId && change.stepId && run.stepId !== change.stepId) {
    return { status: "ignored", reason: `step ${change.stepId} is not the run's step ${run.stepId}` };
  }
  if (!(run.state === "starting" || run.state === "running")) {
    return { status: "ignored", reason: `run ${run.runId} is already ${run.state}` };
  }
  switch (change.state) {
    case "PENDING":
    case "RUNNING":
    case "CANCEL_PENDING":
      // The step exists: if its starter died before recording it, record it now.
      if (run.state === "starting") {
        await markRunning(
          run,
          {
            clusterId: change.clusterId,
            stepId: change.stepId,
            transientCluster: !deps.config.EMR_CLUSTER_ID,
          },
          deps,
        );
      }
      return { status: "running", runId: run.runId };
    case "COMPLETED":
      return succeed(run, deps);
    case "FAILED":
    case "CANCELLED":
    case "INTERRUPTED":
      return failAttempt(run, `step ${change.state}${change.message ? `: ${change.message}` : ""}`, deps);
    default:
      return { status: "ignored", reason: `unknown step state ${change.state}` };
  }
}

/** A transient cluster that ended with errors before its step reported: a failed attempt. */
export async function onClusterTerminatedWithErrors(
  change: { clusterId: string; name: string; message?: string | undefined },
  deps: RunDependencies,
): Promise<CloseOutcome> {
  const [view, runId] = change.name.split(" ").slice(-2);
  if (!view || !runId)
    return { status: "ignored", reason: `cluster ${change.name} is not a feature-job cluster` };
  const run = await readRun(deps.ledger, view, runId);
  if (!run || run.clusterId !== change.clusterId || !(run.state === "starting" || run.state === "running")) {
    return { status: "ignored", reason: `no active run on cluster ${change.clusterId}` };
  }
  return failAttempt(
    run,
    `cluster terminated with errors${change.message ? `: ${change.message}` : ""}`,
    deps,
  );
}

interface JobSummaryFacts {
  deltaVersion?: number;
  rejectedRows?: number;
  newestFeatureDate?: string;
}

/** What the run's summary.json says about its output; empty when it cannot be read. */
async function readSummary(
  run: RunItem,
  deps: RunDependencies,
): Promise<JobSummaryFacts & { summaryUri?: string }> {
  const summaryUri = jobLocationsFor(deps.config).summaryUri(run.view, run.runId);
  const at = parseS3Uri(summaryUri);
  if (!at) return {};
  try {
    const response = await deps.s3.send(new GetObjectCommand({ Bucket: at.bucket, Key: at.key }));
    const summary = JSON.parse((await response.Body?.transformToString("utf-8")) ?? "{}") as {
      rejected_rows?: number;
      offline?: { delta_version?: number; last_date?: string };
    };
    return {
      summaryUri,
      ...(typeof summary.offline?.delta_version === "number"
        ? { deltaVersion: summary.offline.delta_version }
        : {}),
      ...(typeof summary.rejected_rows === "number" ? { rejectedRows: summary.rejected_rows } : {}),
      ...(typeof summary.offline?.last_date === "string"
        ? { newestFeatureDate: summary.offline.last_date }
        : {}),
    };
  } catch {
    return { summaryUri };
  }
}

async function succeed(run: RunItem, deps: RunDependencies): Promise<CloseOutcome> {
  const facts = await readSummary(run, deps);
  const at = now(deps);
  const won = await deps.ledger.update(
    viewPk(run.view),
    runSk(run.runId),
    { state: "succeeded", endedAt: at.toISOString(), expiresAt: expiresAt(at), ...facts },
    { equals: { state: run.state } },
  );
  if (!won) return { status: "ignored", reason: `run ${run.runId} was closed by another event` };
  deps.metrics?.count("RunsSucceeded", run.view);
  const next = await settleRun({ ...run, state: "succeeded", ...facts }, deps);
  return { status: "succeeded", runId: run.runId, next };
}

/** A failed attempt: retry the same inputs under a new run id, or fail the run for good. */
async function failAttempt(run: RunItem, error: string, deps: RunDependencies): Promise<CloseOutcome> {
  const at = now(deps);
  const retry = run.attempt < deps.config.MAX_RUN_ATTEMPTS;
  const nextRunId = retry ? retryRunId(run.baseRunId, run.attempt + 1) : undefined;
  const won = await deps.ledger.update(
    viewPk(run.view),
    runSk(run.runId),
    {
      state: retry ? "retried" : "failed",
      endedAt: at.toISOString(),
      error,
      expiresAt: expiresAt(at),
      ...(nextRunId ? { nextRunId } : {}),
    },
    { equals: { state: run.state } },
  );
  if (!won) return { status: "ignored", reason: `run ${run.runId} was closed by another event` };
  const closed: RunItem = {
    ...run,
    state: retry ? "retried" : "failed",
    error,
    ...(nextRunId ? { nextRunId } : {}),
  };
  const next = await settleRun(closed, deps);
  return { status: retry ? "retried" : "failed", runId: run.runId, next };
}

/**
 * Carries a closed run's outcome to its files and the lock; idempotent, so the reconcile can redo
 * it after a crash between the run's transition and here.
 */
export async function settleRun(run: RunItem, deps: RunDependencies): Promise<StartOutcome> {
  const pk = viewPk(run.view);
  const at = now(deps);
  if (run.state === "retried" && run.nextRunId) {
    const next: RunItem = {
      ...run,
      runId: run.nextRunId,
      attempt: run.attempt + 1,
      state: "starting",
      trigger: "retry",
      createdAt: at.toISOString(),
    };
    for (const key of [
      "startedAt",
      "endedAt",
      "clusterId",
      "stepId",
      "transientCluster",
      "nextRunId",
      "error",
      "expiresAt",
    ]) {
      delete (next as unknown as Record<string, unknown>)[key];
    }
    await deps.ledger.put(ledgerItem(pk, runSk(next.runId), next), { ifAbsent: true });
    // The lock passes from the failed attempt to its retry, never through idle: no other batch
    // can start in between.
    const handed = await deps.ledger.update(
      pk,
      LOCK_SK,
      {
        state: "starting",
        runId: next.runId,
        leaseUntil: at.getTime() + START_LEASE_MS,
        clusterId: undefined,
        stepId: undefined,
      },
      { equals: { runId: run.runId } },
    );
    if (!handed) return { status: "busy", runId: (await readLock(deps.ledger, run.view))?.runId };
    const current = await readRun(deps.ledger, run.view, next.runId);
    return launch(current ?? next, deps);
  }
  if (run.state === "succeeded" || run.state === "failed") {
    for (const fileId of run.fileIds) {
      await deps.ledger.update(pk, fileSk(fileId), {
        state: run.state,
        runId: run.runId,
        updatedAt: at.toISOString(),
        expiresAt: expiresAt(at),
        ...(run.deltaVersion !== undefined ? { deltaVersion: run.deltaVersion } : {}),
        ...(run.error !== undefined ? { error: run.error } : {}),
      });
    }
    if (run.state === "failed" && !run.alertedAt) await alertFailed(run, deps);
    const lock = await readLock(deps.ledger, run.view);
    const newest =
      run.newestFeatureDate && (!lock?.newestFeatureDate || run.newestFeatureDate > lock.newestFeatureDate)
        ? { newestFeatureDate: run.newestFeatureDate, lastSucceededRunId: run.runId }
        : {};
    await deps.ledger.update(
      pk,
      LOCK_SK,
      { ...idleLock(), since: at.toISOString(), ...newest },
      { equals: { runId: run.runId } },
    );
    return startNextRun(run.view, deps, "run-events");
  }
  return { status: "busy", runId: run.runId };
}

async function alertFailed(run: RunItem, deps: RunDependencies): Promise<void> {
  deps.metrics?.count("RunsFailed", run.view);
  await deps.alerts?.publish(
    `feature-store: run ${run.baseRunId} of view ${run.view} failed`,
    [
      `The feature job of view ${run.view} failed ${run.attempt} time(s) and is not retried again.`,
      `Last attempt: ${run.runId}: ${run.error ?? "unknown error"}`,
      `Files marked failed (${run.fileIds.length}); inputs:`,
      ...run.inputs.map((uri) => `  ${uri}`),
      "Upload the files again (or submit a backfill) once the cause is fixed.",
    ].join("\n"),
  );
  await deps.ledger.update(viewPk(run.view), runSk(run.runId), { alertedAt: now(deps).toISOString() });
}

// --- The scheduled reconcile ---

export type ReconcileOutcome =
  | StartOutcome
  | CloseOutcome
  | { readonly status: "waiting"; readonly runId: string | undefined };

/**
 * Drives one view on: starts queued files when nothing runs, takes over an expired "starting"
 * lock, settles a run closed half-way, closes a run whose step ended without an event reaching
 * us, cancels a run past its timeout, and reports how old the view's newest features are.
 */
export async function reconcileView(view: string, deps: RunDependencies): Promise<ReconcileOutcome> {
  const lock = await readLock(deps.ledger, view);
  if (lock?.newestFeatureDate) {
    const ageHours = (now(deps).getTime() - Date.parse(`${lock.newestFeatureDate}T00:00:00Z`)) / 3_600_000;
    if (Number.isFinite(ageHours)) deps.metrics?.hours("FeatureDataAgeHours", view, Math.max(0, ageHours));
  }
  if (!lock || lock.state === "idle" || lock.state === "starting")
    return startNextRun(view, deps, "reconcile");
  const run = lock.runId ? await readRun(deps.ledger, view, lock.runId) : undefined;
  if (!run) {
    await deps.ledger.update(viewPk(view), LOCK_SK, idleLock(), { equals: { runId: lock.runId ?? null } });
    return startNextRun(view, deps, "reconcile");
  }
  if (run.state !== "running" && run.state !== "starting") return settleRun(run, deps);
  if (run.clusterId && run.stepId) {
    const step = await deps.emr.send(
      new DescribeStepCommand({ ClusterId: run.clusterId, StepId: run.stepId }),
    );
    const state = step.Step?.Status?.State;
    if (state === "COMPLETED" || state === "FAILED" || state === "CANCELLED" || state === "INTERRUPTED") {
      return onStepStateChange(
        {
          view,
          runId: run.runId,
          clusterId: run.clusterId,
          stepId: run.stepId,
          state,
          message: step.Step?.Status?.StateChangeReason?.Message,
        },
        deps,
      );
    }
  }
  const startedAt = Date.parse(run.startedAt ?? run.createdAt);
  const limitMs = (deps.config.RUN_TIMEOUT_MINUTES + RUN_TIMEOUT_GRACE_MINUTES) * 60_000;
  if (now(deps).getTime() - startedAt > limitMs && run.clusterId) {
    if (run.transientCluster) {
      await deps.emr.send(new TerminateJobFlowsCommand({ JobFlowIds: [run.clusterId] }));
    } else if (run.stepId) {
      await deps.emr.send(new CancelStepsCommand({ ClusterId: run.clusterId, StepIds: [run.stepId] }));
    }
    return failAttempt(
      run,
      `timed out after ${deps.config.RUN_TIMEOUT_MINUTES} minutes; step cancelled`,
      deps,
    );
  }
  return { status: "waiting", runId: run.runId };
}

export type { FileItem };
