// submit: starts the feature job for given raw files, e.g. a backfill by hand:
//   sls invoke -f submit --data '{"view":"energy","inputs":["s3://<raw>/raw/energy/a.csv"],"mode":"full"}'
// or, with "jobType":"training-set", a training set (docs/TRAINING_SETS.md, "Run it on EMR").
import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { EMRClient } from "@aws-sdk/client-emr";
import middy from "@middy/core";
import { readFeatureJobConfig } from "../commons/feature-job-config.js";
import { loadFeatureViews } from "../commons/feature-view.js";
import { type JobStarted, submitJob } from "./submit-job.js";

const config = readFeatureJobConfig();
const views = loadFeatureViews(config.FEATURE_VIEWS_DIR);
const emr = new EMRClient({});
const logger = new Logger();

export const handler = middy(async (event: unknown): Promise<JobStarted> => {
  const started = await submitJob(event, { emr, config, views });
  logger.info("jobType" in started ? "training-set job started" : "feature job started", { ...started });
  return started;
}).use(injectLambdaContext(logger));
