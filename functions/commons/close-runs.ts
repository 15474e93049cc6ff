// Closing feature-job runs: EMR step and cluster outcomes applied to the run ledger (succeeded,
// retried, failed), and the scheduled reconcile that drives each view on when an event was missed.
import { CancelStepsCommand, DescribeStepCommand, TerminateJobFlowsCommand } from "@aws-sdk/client-emr";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import {
  idleLock,
  markRunning,
  now,
  type RunDependencies,
  retryRunId,
  type StartOutcome,
} from "./feature-runs.js";
import { jobLocationsFor } from "./jobs/artifacts.js";
import { expiresAt, LOCK_SK, type RunItem, readLock, readRun, runSk, viewPk } from "./run-ledger.js";
import { parseS3Uri } from "./s3-object.js";
import { settleRun, startNextRun } from "./start-runs.js";

/**
 * A run still "running" this long after RUN_TIMEOUT_MINUTES is cancelled: the job ends itself at
 * the timeout (--timeout-minutes); the margin covers a transient cluster's start-up.
 */
export const RUN_TIMEOUT_GRACE_MINUTES = 30;

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
