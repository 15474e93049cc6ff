// ingest: S3 ObjectCreated on raw/<view>/*.csv in the raw bucket. Starts the feature job for
// each good file (once per object version) and quarantines bad ones with a report.
import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { EMRClient } from "@aws-sdk/client-emr";
import { S3Client } from "@aws-sdk/client-s3";
import middy from "@middy/core";
import type { S3Event } from "aws-lambda";
import { z } from "zod";
import { readConfig } from "../commons/config.js";
import { featureJobConfigSchema } from "../commons/feature-job-config.js";
import { loadFeatureViews } from "../commons/feature-view.js";
import { type IngestOutcome, ingestS3Event } from "./ingest-raw-files.js";

const config = readConfig(
  featureJobConfigSchema.extend({
    /** Files larger than this are quarantined (default 5 GiB). */
    RAW_MAX_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(5 * 1024 ** 3),
  }),
);
const views = loadFeatureViews(config.FEATURE_VIEWS_DIR);
const s3 = new S3Client({});
const emr = new EMRClient({});
const logger = new Logger();

export const handler = middy(async (event: S3Event): Promise<IngestOutcome[]> => {
  const outcomes = await ingestS3Event(event, { s3, emr, config, views });
  for (const outcome of outcomes) logger.info(`raw file ${outcome.outcome}`, { ...outcome });
  return outcomes;
}).use(injectLambdaContext(logger));
