// The feature job's run orchestration over the run ledger: at most one run per view at a time (a
// LOCK item taken with a conditional write), queued files batched into the next run, runs closed
// from EMR step events, failed runs retried with the same inputs a bounded number of times, then
// their files marked failed with an alert. Every transition is a conditional write, so a
// duplicate or late event, or two invocations racing, change nothing twice; every crash leaves
// the ledger in a state that `reconcileView` (run every 5 minutes) drives on to the end.
//
// This file holds what the orchestration depends on (its ports and settings) and the transitions
// both halves share; start-runs.ts takes, takes over and hands on a view's lock; close-runs.ts
// applies EMR's outcomes to runs and holds the scheduled reconcile.
import type { EMRClient } from "@aws-sdk/client-emr";
import type { S3Client } from "@aws-sdk/client-s3";
import type { FeatureJobConfig } from "./feature-job-config.js";
import type { FeatureView } from "./feature-view.js";
import { newRunId, randomRunIdSuffix } from "./identifiers.js";
import type { FeatureJobRun } from "./jobs/feature-job-step.js";
import { fileSk, LOCK_SK, type RunItem, runSk, viewPk } from "./run-ledger.js";
import type { RunLedgerStore } from "./run-ledger-store.js";

/** How long a starter may hold the lock in "starting" before another invocation takes over. */
export const START_LEASE_MS = 3 * 60_000;

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

export const now = (deps: RunDependencies) => deps.now?.() ?? new Date();

export function freshRunId(deps: RunDependencies): string {
  const suffix = deps.randomSuffix?.() ?? randomRunIdSuffix();
  return newRunId(now(deps), suffix);
}

/** The retry of attempt n of a run: same base id, "-a<n+1>" (stays within 64 characters). */
export function retryRunId(baseRunId: string, attempt: number): string {
  return `${baseRunId}-a${attempt}`;
}

export function jobRun(run: RunItem, deps: RunDependencies): FeatureJobRun {
  return {
    view: run.view,
    inputs: run.inputs,
    mode: run.mode,
    runId: run.runId,
    ...(run.repair ? { repair: run.repair } : {}),
    timeoutMinutes: deps.config.RUN_TIMEOUT_MINUTES,
  };
}

export async function markRunning(
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
  const holdsLock = await deps.ledger.update(
    pk,
    LOCK_SK,
    { state: "running", clusterId: where.clusterId, stepId: where.stepId, leaseUntil: undefined },
    { equals: { runId: run.runId } },
  );
  // A run already settled (its lock moved on) keeps its files' final states.
  if (!holdsLock) return;
  for (const fileId of run.fileIds) {
    await deps.ledger.update(pk, fileSk(fileId), { state: "running", runId: run.runId, updatedAt: at });
  }
}

export function idleLock(): Record<string, undefined | string> {
  return { state: "idle", runId: undefined, leaseUntil: undefined, clusterId: undefined, stepId: undefined };
}
