// What submit can start, chosen by the request's `jobType`: "features" (the default, so the
// original request shape keeps working), "repair" or "training-set". A feature job and a repair go
// through the run ledger's per-view lock like every run ingest starts: refused while a run of the
// view is going. The requests' rules and the steps live in functions/commons/jobs/.
import { InvalidRequestError } from "#commons/errors.js";
import type { RunDependencies } from "#commons/feature-runs.js";
import { newRunId, randomRunIdSuffix } from "#commons/identifiers.js";
import { trainingSetLocationsFor } from "#commons/jobs/artifacts.js";
import { validateFeatureJobRequest } from "#commons/jobs/feature-job-request.js";
import { featureJobStepName } from "#commons/jobs/feature-job-step.js";
import { validateRepairRequest } from "#commons/jobs/repair-request.js";
import { type FeatureJobStarted, startTrainingSetStep } from "#commons/jobs/start-step.js";
import { trainingSetRunOf, validateTrainingSetRequest } from "#commons/jobs/training-set-request.js";
import { startRequestedRun } from "#commons/start-runs.js";

export const JOB_TYPES = ["features", "repair", "training-set"] as const;

export interface TrainingSetStarted {
  readonly jobType: "training-set";
  readonly name: string;
  readonly runId: string;
  readonly clusterId: string;
  readonly stepIds: readonly string[];
  readonly stepName: string;
  readonly transientCluster: boolean;
  readonly outputUri: string;
  readonly manifestUri: string;
}

export type JobStarted = Omit<FeatureJobStarted, "transientCluster"> | TrainingSetStarted;

async function submitFeatureJob(input: unknown, deps: RunDependencies): Promise<JobStarted> {
  const request = validateFeatureJobRequest(input, deps.views, deps.config.RAW_BUCKET);
  const started = await startRequestedRun(request, deps);
  return {
    runId: started.runId,
    clusterId: started.clusterId,
    stepIds: [started.stepId],
    stepName: featureJobStepName({ ...request, runId: started.runId }),
  };
}

async function submitRepair(input: unknown, deps: RunDependencies): Promise<JobStarted> {
  const request = validateRepairRequest(input, deps.views);
  const started = await startRequestedRun({ ...request, inputs: [], mode: "repair" }, deps);
  return {
    runId: started.runId,
    clusterId: started.clusterId,
    stepIds: [started.stepId],
    stepName: featureJobStepName({ view: request.view, inputs: [], mode: "repair", runId: started.runId }),
  };
}

/** A training set runs outside the run ledger (it writes no feature data): started at once. */
async function submitTrainingSet(input: unknown, deps: RunDependencies): Promise<TrainingSetStarted> {
  const { config } = deps;
  const request = validateTrainingSetRequest(input, deps.views, config);
  const now = deps.now?.() ?? new Date();
  const suffix = deps.randomSuffix?.() ?? randomRunIdSuffix();
  const run = trainingSetRunOf(request, request.runId ?? newRunId(now, suffix), config);
  const started = await startTrainingSetStep(run, deps);
  const locations = trainingSetLocationsFor(config);
  return {
    jobType: "training-set",
    name: run.name,
    runId: run.runId,
    clusterId: started.clusterId,
    stepIds: started.stepIds,
    transientCluster: started.transientCluster,
    stepName: started.stepName,
    outputUri: locations.outputUri(run.name, run.runId),
    manifestUri: locations.manifestUri(run.name, run.runId),
  };
}

/** Dispatches on `jobType`; anything that is not an object goes to the feature job's validation. */
export async function submitJob(input: unknown, deps: RunDependencies): Promise<JobStarted> {
  if (typeof input !== "object" || input === null || !("jobType" in input)) {
    return submitFeatureJob(input, deps);
  }
  const { jobType, ...rest } = input as { jobType: unknown };
  if (jobType === "training-set") return submitTrainingSet(input, deps);
  if (jobType === "repair") return submitRepair(input, deps);
  if (jobType === "features") return submitFeatureJob(rest, deps);
  throw new InvalidRequestError(`jobType must be one of ${JOB_TYPES.map((t) => `"${t}"`).join(", ")}`);
}
