// What submit can start, chosen by the request's `jobType`: "features" (the default, so the
// original request shape keeps working) or "training-set".
import { InvalidRequestError } from "../commons/errors.js";
import { type FeatureJobDependencies, type FeatureJobStarted, startFeatureJob } from "./start-feature-job.js";
import { startTrainingSet, type TrainingSetStarted } from "./start-training-set.js";

export const JOB_TYPES = ["features", "training-set"] as const;

export type JobStarted = FeatureJobStarted | TrainingSetStarted;

/** Dispatches on `jobType`; anything that is not an object goes to the feature job's validation. */
export async function submitJob(input: unknown, deps: FeatureJobDependencies): Promise<JobStarted> {
  if (typeof input !== "object" || input === null || !("jobType" in input)) {
    return startFeatureJob(input, deps);
  }
  const { jobType, ...rest } = input as { jobType: unknown };
  if (jobType === "training-set") return startTrainingSet(input, deps);
  if (jobType === "features") return startFeatureJob(rest, deps);
  throw new InvalidRequestError(`jobType must be one of ${JOB_TYPES.map((t) => `"${t}"`).join(", ")}`);
}
