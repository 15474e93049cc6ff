// submit's middy stack, built from its dependencies (tests and the local stack pass theirs).
import type { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { RunDependencies } from "#commons/feature-runs.js";
import { type JobStarted, submitJob } from "./submit-job.js";

export function createSubmitHandler(deps: RunDependencies, logger: Logger) {
  return middy(async (event: unknown): Promise<JobStarted> => {
    const started = await submitJob(event, deps);
    logger.info("jobType" in started ? "training-set job started" : "feature job started", { ...started });
    return started;
  }).use(injectLambdaContext(logger));
}
