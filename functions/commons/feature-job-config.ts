// Settings the feature job needs wherever it is started from (submit, ingest, the local runner):
// bucket names, keyspace and the EMR placement. Read once per process through readConfig.
import { z } from "zod";
import { readConfig } from "./config.js";
import { identifierSchema } from "./identifiers.js";

const bucketName = z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be an S3 bucket name");
const positiveInt = z.coerce.number().int().positive();
const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));

export const featureJobConfigSchema = z.object({
  FEATURE_VIEWS_DIR: z.string().min(1).default("resources/feature-views"),
  RAW_BUCKET: bucketName,
  OFFLINE_BUCKET: bucketName,
  ARTIFACTS_BUCKET: bucketName,
  KEYSPACE: identifierSchema,
  /** A long-running cluster to add steps to; unset or empty starts a transient cluster per job. */
  EMR_CLUSTER_ID: optionalText.pipe(
    z
      .string()
      .regex(/^j-[A-Z0-9]{1,64}$/, "must be a cluster id")
      .optional(),
  ),
  EMR_RELEASE_LABEL: z
    .string()
    // 7.0.0 ships Python 3.9 only; the job needs 3.11 (spark-submit-step.ts EMR_PYTHON, AWS_CONTRACTS E11).
    .regex(/^emr-7\.[1-9]\d*\.\d+$/, "must be an EMR 7.x release label from emr-7.1.0 on (Python 3.11)")
    .default("emr-7.12.0"),
  EMR_PRIMARY_INSTANCE_TYPE: z.string().min(1).default("m6g.xlarge"),
  EMR_CORE_INSTANCE_TYPE: z.string().min(1).default("m6g.xlarge"),
  EMR_CORE_INSTANCE_COUNT: positiveInt.default(2),
  EMR_SERVICE_ROLE: optionalText,
  EMR_INSTANCE_PROFILE: optionalText,
  EMR_SUBNET_ID: optionalText,
  /** Names the transient clusters, e.g. feature-store-dev. */
  STACK_NAME: z.string().min(1).default("feature-store"),
});

export type FeatureJobConfig = z.infer<typeof featureJobConfigSchema>;

export function readFeatureJobConfig(env: NodeJS.ProcessEnv = process.env): FeatureJobConfig {
  return readConfig(featureJobConfigSchema, env);
}

/**
 * The run orchestration's settings (ingest, submit, runEvents, status): the ledger table and the
 * bounds of a run. A run's inputs are at most MAX_FILES_PER_RUN files (the step's argument list
 * stays well inside EMR's limits); a failed run is tried MAX_RUN_ATTEMPTS times in all.
 */
export const runConfigSchema = featureJobConfigSchema.extend({
  RUN_LEDGER_TABLE: z.string().regex(/^[A-Za-z0-9_.-]{3,255}$/, "must be a DynamoDB table name"),
  MAX_RUN_ATTEMPTS: positiveInt.max(10).default(3),
  RUN_TIMEOUT_MINUTES: positiveInt.max(24 * 60).default(120),
  MAX_FILES_PER_RUN: positiveInt.max(500).default(100),
});

export type RunConfig = z.infer<typeof runConfigSchema>;
