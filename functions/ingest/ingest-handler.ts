// ingest's middy stack, built from its dependencies: tests and the local stack pass theirs,
// handler.ts wires the production ones.
import type { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { S3Event } from "aws-lambda";
import { type IngestDependencies, type IngestOutcome, ingestS3Event } from "./ingest-raw-files.js";

export function createIngestHandler(deps: IngestDependencies, logger: Logger) {
  return middy(async (event: S3Event): Promise<IngestOutcome[]> => {
    const outcomes = await ingestS3Event(event, deps);
    for (const outcome of outcomes) logger.info(`raw file ${outcome.outcome}`, { ...outcome });
    return outcomes;
  }).use(injectLambdaContext(logger));
}
