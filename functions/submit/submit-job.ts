// What submit can start, chosen by the request's `jobType`: "features" (the default, so the
// original request shape keeps working), "repair" or "training-set". A feature job and a repair go
// through the run ledger's per-view lock like every run ingest starts: refused while a run of the
// view is going.
import { featureJobStepName } from "../commons/emr-step.js";
import { InvalidRequestError } from "../commons/errors.js";
import { type RunDependencies, startRequestedRun } from "../commons/feature-runs.js";
import type { FeatureJobStarted } from "./start-feature-job.js";
import { validateFeatureJobRequest } from "./start-feature-job.js";
import { validateRepairRequest } from "./start-repair.js";
import { startTrainingSet, type TrainingSetStarted } from "./start-training-set.js";

export const JOB_TYPES = ["features", "repair", "training-set"] as const;

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

/** Dispatches on `jobType`; anything that is not an object goes to the feature job's validation. */
export async function submitJob(input: unknown, deps: RunDependencies): Promise<JobStarted> {
  if (typeof input !== "object" || input === null || !("jobType" in input)) {
    return submitFeatureJob(input, deps);
  }
  const { jobType, ...rest } = input as { jobType: unknown };
  if (jobType === "training-set") return startTrainingSet(input, deps);
  if (jobType === "repair") return submitRepair(input, deps);
  if (jobType === "features") return submitFeatureJob(rest, deps);
  throw new InvalidRequestError(`jobType must be one of ${JOB_TYPES.map((t) => `"${t}"`).join(", ")}`);
}
