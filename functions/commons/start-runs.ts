// Starting feature-job runs under the view's lock (feature-runs.ts has the rules): the next batch
// of queued files, a backfill or repair by hand, the take-over of a starter that died, and the
// hand-over when a run closes (its retry, or idle and the next batch).
import { ListClustersCommand, ListStepsCommand } from "@aws-sdk/client-emr";
import {
  freshRunId,
  idleLock,
  jobRun,
  markRunning,
  now,
  type RunDependencies,
  RunInProgressError,
  START_LEASE_MS,
  type StartOutcome,
} from "./feature-runs.js";
import { featureJobPurpose } from "./jobs/cluster.js";
import { featureJobStepName, type RepairSelection, type RunMode } from "./jobs/feature-job-step.js";
import {
  expiresAt,
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

/** The step a dead starter may have added: by name on the cluster, or a transient cluster by name. */
async function findStartedStep(
  run: RunItem,
  deps: RunDependencies,
): Promise<{ clusterId: string; stepId: string; transientCluster: boolean } | undefined> {
  const stepName = featureJobStepName(jobRun(run, deps));
  // The step was added after the run item (a minute's margin for clock skew).
  const createdAfter = new Date(Date.parse(run.createdAt) - 60_000);
  // ListSteps answers at most 50 steps a page, newest first (AWS_CONTRACTS E12): on a shared cluster
  // other steps may have pushed the run's off the first page, so page on until the steps are older
  // than the run.
  const stepOn = async (clusterId: string) => {
    let marker: string | undefined;
    do {
      const page = await deps.emr.send(new ListStepsCommand({ ClusterId: clusterId, Marker: marker }));
      const found = page.Steps?.find((s) => s.Name === stepName)?.Id;
      if (found) return found;
      const oldest = page.Steps?.at(-1)?.Status?.Timeline?.CreationDateTime;
      if (oldest && oldest.getTime() < createdAfter.getTime()) return undefined;
      marker = page.Marker;
    } while (marker);
    return undefined;
  };
  const clusterId = deps.config.EMR_CLUSTER_ID;
  if (clusterId) {
    const stepId = await stepOn(clusterId);
    return stepId ? { clusterId, stepId, transientCluster: false } : undefined;
  }
  // A transient cluster is named "<stack> <view> <runId>" (featureJobPurpose) and tagged with the
  // run id; it was created after the run item.
  const purpose = featureJobPurpose(jobRun(run, deps)).name;
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
  if (run.state === "running" && run.clusterId && run.stepId) {
    // The starter died after recording the run running but before the lock: finish that, so the
    // reconcile watches the step (DescribeStep) instead of leaving the view locked for good.
    const where = {
      clusterId: run.clusterId,
      stepId: run.stepId,
      transientCluster: run.transientCluster ?? false,
    };
    await markRunning(run, where, deps);
    return { status: "started", runId, ...where };
  }
  if (run.state !== "starting") return settleRun(run, deps);
  const found = await findStartedStep(run, deps);
  if (found) {
    await markRunning(run, found, deps);
    return { status: "started", runId, clusterId: found.clusterId, stepId: found.stepId };
  }
  return launch(run, deps);
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
