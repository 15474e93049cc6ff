// submit: starts the feature job for given raw files, e.g. a backfill by hand:
//   sls invoke -f submit --data '{"view":"energy","inputs":["s3://<raw>/raw/energy/a.csv"],"mode":"full"}'
// (refused while a run of the view is going: one feature job per view at a time), or, with
// "jobType":"training-set", a training set (docs/TRAINING_SETS.md, "Run it on EMR").
import { Logger } from "@aws-lambda-powertools/logger";
import { readConfig } from "#commons/config.js";
import { runConfigSchema } from "#commons/feature-job-config.js";
import { runDependencies } from "#commons/run-adapters.js";
import { createSubmitHandler } from "./submit-handler.js";

export const handler = createSubmitHandler(runDependencies(readConfig(runConfigSchema)), new Logger());
