// runEvents: EventBridge rules deliver EMR step and cluster state changes and a rate(5 minutes)
// schedule; this closes runs in the ledger, retries failed ones, alerts on runs that failed for
// good, starts the next batch of each view and reconciles what an event missed.
import { Logger } from "@aws-lambda-powertools/logger";
import { z } from "zod";
import { readConfig } from "#commons/config.js";
import { runConfigSchema } from "#commons/feature-job-config.js";
import { runDependencies } from "#commons/run-adapters.js";
import { createRunEventsHandler } from "./run-events-handler.js";

const config = readConfig(
  runConfigSchema.extend({
    /** SNS topic for runs that failed for good; unset: no alert (the metric RunsFailed still counts). */
    ALERTS_TOPIC_ARN: z
      .string()
      .regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/, "must be an SNS topic ARN")
      .optional(),
  }),
);

export const handler = createRunEventsHandler(
  runDependencies(config, { alertsTopicArn: config.ALERTS_TOPIC_ARN }),
  new Logger(),
);
