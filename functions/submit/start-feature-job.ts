// Starts one run of the Spark feature job on EMR: a step on the configured cluster, or a
// transient cluster when none is configured. The one code path both submit (by hand, backfills)
// and ingest (each new raw file) use.
import type { EMRClient } from "@aws-sdk/client-emr";
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
import { newRunId } from "../commons/feature-runs.js";
import type { FeatureView } from "../commons/feature-view.js";
import { runIdSchema } from "../commons/identifiers.js";
import { parseS3Uri } from "../commons/s3-object.js";
import { startEmrStep } from "./start-emr-step.js";

export { newRunId };

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
              : /[*?[\]{}\\]/.test(at.key)
                ? "has a glob character (* ? [ ] { } \\), which Spark would expand instead of reading the key"
                : undefined;
    if (problem) throw new InvalidRequestError(`Input ${uri} ${problem}`);
  }
  if (new Set(request.inputs).size !== request.inputs.length) {
    throw new InvalidRequestError("Inputs must not repeat a file");
  }
  return request;
}

/** Validates the request and starts the job; returns where it runs. Bypasses the run ledger. */
export async function startFeatureJob(
  input: unknown,
  deps: FeatureJobDependencies,
): Promise<FeatureJobStarted> {
  const request = validateFeatureJobRequest(input, deps.views, deps.config.RAW_BUCKET);
  const now = deps.now?.() ?? new Date();
  const suffix = deps.randomSuffix?.() ?? Math.random().toString(16).slice(2, 8).padEnd(6, "0");
  return startFeatureJobStep(
    {
      view: request.view,
      inputs: request.inputs,
      mode: request.mode,
      runId: request.runId ?? newRunId(now, suffix),
    },
    deps,
  );
}

/**
 * Starts one run as an EMR step, inputs as given (the orchestration's staged copies, or a
 * validated request): the one place a feature-job step is built and added.
 */
export async function startFeatureJobStep(
  run: FeatureJobRun,
  deps: Pick<FeatureJobDependencies, "emr" | "config">,
): Promise<FeatureJobStarted> {
  const { config } = deps;
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
