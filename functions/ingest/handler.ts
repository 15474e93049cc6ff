// ingest: S3 ObjectCreated on raw/<view>/*.csv in the raw bucket. Records each good file in the
// run ledger, stages the checked version and queues it for its view's next run (one run per view
// at a time); quarantines bad ones with a report.
import { Logger } from "@aws-lambda-powertools/logger";
import { z } from "zod";
import { readConfig } from "#commons/config.js";
import { runConfigSchema } from "#commons/feature-job-config.js";
import { runDependencies } from "#commons/run-adapters.js";
import { createIngestHandler } from "./ingest-handler.js";

const config = readConfig(
  runConfigSchema.extend({
    /** Files larger than this are quarantined (default 5 GiB). */
    RAW_MAX_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(5 * 1024 ** 3),
  }),
);

export const handler = createIngestHandler({ ...runDependencies(config), config }, new Logger());
