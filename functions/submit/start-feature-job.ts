// Starts one run of the Spark feature job on EMR: a step on the configured cluster, or a
// transient cluster when none is configured. The one code path both submit (by hand, backfills)
// and ingest (each new raw file) use.
import { type EMRClient, ListStepsCommand } from "@aws-sdk/client-emr";
import { z } from "zod";
import {
  type FeatureJobRun,
  featureJobPurpose,
  featureJobStep,
  featureJobStepName,
  JOB_MODES,
  s3JobLocations,
} from "../commons/emr-step.js";
import { InvalidRequestError } from "../commons/errors.js";
import type { FeatureJobConfig } from "../commons/feature-job-config.js";
import type { FeatureView } from "../commons/feature-view.js";
import { runIdSchema } from "../commons/identifiers.js";
import { parseS3Uri } from "../commons/s3-object.js";
import { startEmrStep } from "./start-emr-step.js";

export const featureJobRequestSchema = z.strictObject({
  view: z.string().min(1).max(64),
  inputs: z.array(z.string().min(1).max(1100)).min(1).max(500),
  mode: z.enum(JOB_MODES),
  runId: runIdSchema.optional(),
});

export type FeatureJobRequest = z.infer<typeof featureJobRequestSchema>;

export interface FeatureJobStarted {
  readonly runId: string;
  readonly clusterId: string;
  readonly stepIds: readonly string[];
  readonly stepName: string;
  /** True when a transient cluster was started for this run. */
  readonly transientCluster: boolean;
}

export interface FeatureJobDependencies {
  readonly emr: EMRClient;
  readonly config: FeatureJobConfig;
  readonly views: ReadonlyMap<string, FeatureView>;
  readonly now?: () => Date;
  readonly randomSuffix?: () => string;
}

/** A sortable, unique run id: UTC timestamp plus a random suffix, e.g. 20261126T184500Z-3f9a1c. */
export function newRunId(now: Date, suffix: string): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
  return `${stamp}-${suffix}`;
}

/** Checks the request against the views and the raw bucket; throws InvalidRequestError. */
export function validateFeatureJobRequest(
  input: unknown,
  views: ReadonlyMap<string, FeatureView>,
  rawBucket: string,
): FeatureJobRequest {
  const parsed = featureJobRequestSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(request)"}: ${i.message}`);
    throw new InvalidRequestError(`Invalid feature job request: ${issues.join("; ")}`);
  }
  const request = parsed.data;
  if (!views.has(request.view)) {
    throw new InvalidRequestError(
      `Unknown feature view "${request.view}"; known views: ${[...views.keys()].join(", ")}`,
    );
  }
  const prefix = `raw/${request.view}/`;
  for (const uri of request.inputs) {
    const at = parseS3Uri(uri);
    const problem =
      at === undefined
        ? "is not an s3:// URI"
        : at.bucket !== rawBucket
          ? `is not in the raw bucket ${rawBucket}`
          : !at.key.startsWith(prefix) || at.key.split("/").includes("..")
            ? `is not under ${prefix}`
            : !at.key.endsWith(".csv")
              ? "is not a .csv file"
              : undefined;
    if (problem) throw new InvalidRequestError(`Input ${uri} ${problem}`);
  }
  if (new Set(request.inputs).size !== request.inputs.length) {
    throw new InvalidRequestError("Inputs must not repeat a file");
  }
  return request;
}

/**
 * The id of a step with this name among the cluster's most recent steps (first page, newest
 * first), if any: how a retry finds out that a dead invocation did start its step after all.
 */
export async function findRecentStep(
  emr: EMRClient,
  clusterId: string,
  stepName: string,
): Promise<string | undefined> {
  const response = await emr.send(new ListStepsCommand({ ClusterId: clusterId }));
  return response.Steps?.find((step) => step.Name === stepName)?.Id;
}

/** Validates the request and starts the job; returns where it runs. */
export async function startFeatureJob(
  input: unknown,
  deps: FeatureJobDependencies,
): Promise<FeatureJobStarted> {
  const { config } = deps;
  const request = validateFeatureJobRequest(input, deps.views, config.RAW_BUCKET);
  const now = deps.now?.() ?? new Date();
  const suffix = deps.randomSuffix?.() ?? Math.random().toString(16).slice(2, 8).padEnd(6, "0");
  const run: FeatureJobRun = {
    view: request.view,
    inputs: request.inputs,
    mode: request.mode,
    runId: request.runId ?? newRunId(now, suffix),
  };
  const locations = s3JobLocations({
    artifactsBucket: config.ARTIFACTS_BUCKET,
    offlineBucket: config.OFFLINE_BUCKET,
    keyspace: config.KEYSPACE,
  });
  const started = await startEmrStep(
    deps.emr,
    config,
    (transient) => featureJobStep(run, locations, transient),
    featureJobPurpose(run),
  );
  return { runId: run.runId, ...started, stepName: featureJobStepName(run) };
}
