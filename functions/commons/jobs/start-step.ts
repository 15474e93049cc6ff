// Starts one EMR step for either Spark job: added to the configured cluster, or as the only step
// of a transient cluster when none is configured. The one place that calls AddJobFlowSteps and
// RunJobFlow; ingest, submit and runEvents all start runs through here (via start-runs.ts for
// the feature job, whose run ledger decides when a run starts).
import {
  AddJobFlowStepsCommand,
  type EMRClient,
  ListStepsCommand,
  RunJobFlowCommand,
  type StepConfig,
} from "@aws-sdk/client-emr";
import type { S3Client } from "@aws-sdk/client-s3";
import type { FeatureJobConfig } from "../feature-job-config.js";
import type { FeatureView } from "../feature-view.js";
import { newRunId, randomRunIdSuffix } from "../identifiers.js";
import { parseS3Uri, putJsonObject } from "../s3-object.js";
import { ARTIFACT_KEYS, jobLocationsFor, trainingSetLocationsFor } from "./artifacts.js";
import {
  type ClusterPurpose,
  featureJobPurpose,
  trainingSetPurpose,
  transientClusterRequest,
} from "./cluster.js";
import { validateFeatureJobRequest } from "./feature-job-request.js";
import { type FeatureJobRun, featureJobStepName, planFeatureJobStep } from "./feature-job-step.js";
import { type TrainingSetRun, trainingSetStep, trainingSetStepName } from "./training-set-step.js";

/** What starting a step needs: the EMR client and where the job's artifacts and cluster are. */
export interface StartStepDependencies {
  readonly emr: EMRClient;
  readonly config: FeatureJobConfig;
}

/** A feature job may need to write its arguments manifest (offline bucket) before its step. */
export interface FeatureJobStepDependencies extends StartStepDependencies {
  readonly s3: S3Client;
}

export interface StepStarted {
  readonly clusterId: string;
  readonly stepIds: readonly string[];
  /** True when a transient cluster was started for this step. */
  readonly transientCluster: boolean;
}

export interface FeatureJobStarted extends StepStarted {
  readonly runId: string;
  readonly stepName: string;
}

export interface TrainingSetStepStarted extends StepStarted {
  readonly stepName: string;
}

/**
 * Starts the step built by `stepFor` (which gets whether the cluster is transient, as the
 * step's ActionOnFailure depends on it). `purpose` names and tags a transient cluster.
 */
async function startEmrStep(
  { emr, config }: StartStepDependencies,
  stepFor: (transient: boolean) => StepConfig,
  purpose: ClusterPurpose,
): Promise<StepStarted> {
  if (config.EMR_CLUSTER_ID) {
    const response = await emr.send(
      new AddJobFlowStepsCommand({ JobFlowId: config.EMR_CLUSTER_ID, Steps: [stepFor(false)] }),
    );
    return { clusterId: config.EMR_CLUSTER_ID, stepIds: response.StepIds ?? [], transientCluster: false };
  }

  if (!config.EMR_SERVICE_ROLE || !config.EMR_INSTANCE_PROFILE) {
    throw new Error("EMR_SERVICE_ROLE and EMR_INSTANCE_PROFILE are required when EMR_CLUSTER_ID is not set");
  }
  const response = await emr.send(
    new RunJobFlowCommand(
      transientClusterRequest(purpose, stepFor(true), {
        namePrefix: config.STACK_NAME,
        releaseLabel: config.EMR_RELEASE_LABEL,
        primaryInstanceType: config.EMR_PRIMARY_INSTANCE_TYPE,
        coreInstanceType: config.EMR_CORE_INSTANCE_TYPE,
        coreInstanceCount: config.EMR_CORE_INSTANCE_COUNT,
        serviceRole: config.EMR_SERVICE_ROLE,
        instanceProfile: config.EMR_INSTANCE_PROFILE,
        subnetId: config.EMR_SUBNET_ID,
        logUri: `s3://${config.ARTIFACTS_BUCKET}/${ARTIFACT_KEYS.emrLogsPrefix}`,
        pythonBootstrapUri: `s3://${config.ARTIFACTS_BUCKET}/${ARTIFACT_KEYS.pythonBootstrap}`,
      }),
    ),
  );
  // RunJobFlow does not return step ids; the new cluster has exactly this one step.
  // https://docs.aws.amazon.com/emr/latest/APIReference/API_RunJobFlow.html
  const clusterId = response.JobFlowId ?? "";
  const steps = clusterId ? await emr.send(new ListStepsCommand({ ClusterId: clusterId })) : undefined;
  return {
    clusterId,
    stepIds: (steps?.Steps ?? []).map((s) => s.Id ?? "").filter((id) => id !== ""),
    transientCluster: true,
  };
}

/**
 * Starts one feature-job run, inputs as given (the run ledger's staged copies, or a request's).
 * A run whose inputs or repair entities would pass EMR's step limit gets its arguments manifest
 * written first (the same on a shared and a transient cluster: the step differs only in
 * ActionOnFailure); a retry writes its own under its own run id.
 */
export async function startFeatureJobStep(
  run: FeatureJobRun,
  deps: FeatureJobStepDependencies,
): Promise<FeatureJobStarted> {
  const locations = jobLocationsFor(deps.config);
  const { manifest } = planFeatureJobStep(run, locations, false);
  if (manifest) {
    const at = parseS3Uri(manifest.uri);
    if (!at) throw new Error(`Malformed arguments manifest URI ${manifest.uri}`);
    await putJsonObject(deps.s3, at, manifest.body);
  }
  const started = await startEmrStep(
    deps,
    (transient) => planFeatureJobStep(run, locations, transient).step,
    featureJobPurpose(run),
  );
  return { runId: run.runId, ...started, stepName: featureJobStepName(run) };
}

/** Starts one training-set run; the caller has checked its request (training-set-request.ts). */
export async function startTrainingSetStep(
  run: TrainingSetRun,
  deps: StartStepDependencies,
): Promise<TrainingSetStepStarted> {
  const locations = trainingSetLocationsFor(deps.config);
  const started = await startEmrStep(
    deps,
    (transient) => trainingSetStep(run, locations, transient),
    trainingSetPurpose(run),
  );
  return { ...started, stepName: trainingSetStepName(run) };
}

/** What starting a run from a request needs beyond the step: the views, and clocks tests can set. */
export interface FeatureJobDependencies extends FeatureJobStepDependencies {
  readonly views: ReadonlyMap<string, FeatureView>;
  readonly now?: () => Date;
  readonly randomSuffix?: () => string;
}

/**
 * Validates a feature-job request and starts it at once, outside the run ledger (no per-view lock,
 * no retries). Submit goes through feature-runs.ts startRequestedRun instead; this is the direct
 * path the step-request tests drive (tests/unit/submit-feature-job.test.ts).
 */
export async function startFeatureJob(
  input: unknown,
  deps: FeatureJobDependencies,
): Promise<FeatureJobStarted> {
  const request = validateFeatureJobRequest(input, deps.views, deps.config.RAW_BUCKET);
  const now = deps.now?.() ?? new Date();
  const suffix = deps.randomSuffix?.() ?? randomRunIdSuffix();
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
