// runEvents' middy stack, built from its dependencies (tests and the local stack pass theirs).
import type { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { RunDependencies } from "#commons/feature-runs.js";
import { handleRunEvent, type RunEventOutcome } from "./run-events.js";

export function createRunEventsHandler(deps: RunDependencies, logger: Logger) {
  return middy(async (event: unknown): Promise<RunEventOutcome> => {
    const outcome = await handleRunEvent(event, deps);
    logger.info(`run event ${outcome.status}`, { outcome });
    return outcome;
  }).use(injectLambdaContext(logger));
}
