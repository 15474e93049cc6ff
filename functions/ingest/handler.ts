// ingest: S3 ObjectCreated on raw/<view>/*.csv in the raw bucket. Records each good file in the
// run ledger, stages the checked version and queues it for its view's next run (one run per view
// at a time); quarantines bad ones with a report.
import { Logger } from "@aws-lambda-powertools/logger";
import { readConfig } from "#commons/config.js";
import { runDependencies } from "#commons/run-adapters.js";
import { ingestConfigSchema } from "./ingest-config.js";
import { createIngestHandler } from "./ingest-handler.js";

const config = readConfig(ingestConfigSchema);

export const handler = createIngestHandler({ ...runDependencies(config), config }, new Logger());
