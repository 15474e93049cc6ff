// Settings of the local pipeline (`npm run local` and the e2e suite): ports, directories, keyspace and
// bucket names. Read once from the environment and validated, so a bad value fails with its name.
import { join, resolve } from "node:path";
import { z } from "zod";
import { readConfig } from "#commons/config.js";
import { identifierSchema } from "#commons/identifiers.js";

export const ROOT = resolve(__dirname, "..");

const port = z.coerce.number().int().min(0).max(65_535);
const identifier = identifierSchema;
const bucketPrefix = z.string().regex(/^[a-z0-9][a-z0-9-]{1,40}$/, "must be a short bucket-name prefix");

export const localSettingsSchema = z.object({
  /** Where set-up installs and engines keep state; the pipeline's own files go to <dir>/pipeline. */
  FEATURE_STORE_LOCAL_DIR: z.string().min(1).default(join(ROOT, ".local")),
  /** getFeatures over HTTP. */
  LOCAL_HTTP_PORT: port.default(3000),
  /**
   * IAM authorization of the local HTTP API: "iam" requires SigV4 signatures made with the fixed
   * local credentials (local/iam-auth.ts), as the deployed routes do; "none" (default) lets
   * unsigned requests (plain curl) through.
   */
  LOCAL_HTTP_AUTH: z.enum(["none", "iam"]).default("none"),
  /** The pipeline's own moto server (S3, SQS, EMR); not scripts/moto.sh's 5055 the integration suites share. */
  LOCAL_MOTO_PORT: port.default(5056),
  CASSANDRA_PORT: port.default(9042),
  CASSANDRA_LOCAL_DC: z.string().min(1).default("datacenter1"),
  KEYSPACE: z._default(identifier, "feature_store"),
  LOCAL_BUCKET_PREFIX: bucketPrefix.default("feature-store-local"),
  FEATURE_VIEW: z._default(identifier, "energy"),
  /** Local Spark parallelism for the job runner (local[N]). */
  LOCAL_SPARK_CORES: z.coerce.number().int().min(1).max(64).default(2),
  LOCAL_SPARK_DRIVER_MEMORY: z
    .string()
    .regex(/^\d+[mg]$/)
    .default("2g"),
});

export type LocalSettings = z.infer<typeof localSettingsSchema>;

export interface LocalPaths {
  readonly root: string;
  readonly localDir: string;
  /** Everything the pipeline writes: inputs, offline store, logs, ledgers. */
  readonly pipelineDir: string;
  readonly offlineDir: string;
  readonly inputsDir: string;
  readonly logsDir: string;
  readonly dataDir: string;
  readonly venvPython: string;
  /** moto launched with S3 events in the shape S3 sends (run with venvPython). */
  readonly motoServer: string;
  readonly featureViewsDir: string;
  /** The views compiled for the job (functions/commons/compiled-view.ts), as the deploy ships them. */
  readonly compiledViewsDir: string;
  /** The running stack's endpoints, for `npm run local:upload`. */
  readonly stackFile: string;
}

export function readLocalSettings(env: NodeJS.ProcessEnv = process.env): LocalSettings {
  return readConfig(localSettingsSchema, env);
}

export function localPaths(settings: LocalSettings, pipelineName = "pipeline"): LocalPaths {
  const localDir = resolve(settings.FEATURE_STORE_LOCAL_DIR);
  const pipelineDir = join(localDir, pipelineName);
  return {
    root: ROOT,
    localDir,
    pipelineDir,
    offlineDir: join(pipelineDir, "offline"),
    inputsDir: join(pipelineDir, "inputs"),
    logsDir: join(pipelineDir, "logs"),
    dataDir: join(pipelineDir, "data"),
    venvPython: join(localDir, "venv/bin/python"),
    motoServer: join(ROOT, "scripts/moto_server.py"),
    featureViewsDir: join(ROOT, "resources/feature-views"),
    compiledViewsDir: join(localDir, "compiled-views"),
    stackFile: join(pipelineDir, "stack.json"),
  };
}

export interface LocalBuckets {
  readonly raw: string;
  readonly offline: string;
  readonly artifacts: string;
}

export function localBuckets(prefix: string): LocalBuckets {
  return { raw: `${prefix}-raw`, offline: `${prefix}-offline`, artifacts: `${prefix}-artifacts` };
}

/** moto's fixed account and the region every local client uses. */
export const LOCAL_REGION = "eu-west-1";
export const LOCAL_ACCOUNT = "123456789012";
