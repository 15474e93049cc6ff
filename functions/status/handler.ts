// status: the run ledger of one view (or every view) for people:
//   sls invoke -f status --data '{"view":"energy"}'
import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import middy from "@middy/core";
import { z } from "zod";
import { readConfig } from "#commons/config.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { DynamoDbRunLedgerStore } from "#commons/run-ledger-store.js";
import { status } from "./status.js";

const config = readConfig(
  z.object({
    FEATURE_VIEWS_DIR: z.string().min(1).default("resources/feature-views"),
    RUN_LEDGER_TABLE: z.string().regex(/^[A-Za-z0-9_.-]{3,255}$/, "must be a DynamoDB table name"),
  }),
);
const deps = {
  ledger: new DynamoDbRunLedgerStore(config.RUN_LEDGER_TABLE, new DynamoDBClient({})),
  views: loadFeatureViews(config.FEATURE_VIEWS_DIR),
};
const logger = new Logger();

export const handler = middy(async (event: unknown) => status(event, deps)).use(injectLambdaContext(logger));
