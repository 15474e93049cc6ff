// A transient EMR cluster for one job run, when the stack has no shared cluster: what it is for
// (a readable name and the tags that find it again) and the RunJobFlow request that starts it.
import type { RunJobFlowCommandInput, StepConfig } from "@aws-sdk/client-emr";
import type { FeatureJobRun } from "./feature-job-step.js";
import { EMR_PYTHON } from "./spark-submit-step.js";
import type { TrainingSetRun } from "./training-set-step.js";

/** Idle time after which EMR ends a transient cluster (AutoTerminationPolicy). */
export const TRANSIENT_IDLE_TIMEOUT_SECONDS = 3600;

export interface TransientClusterSettings {
  readonly namePrefix: string;
  readonly releaseLabel: string;
  readonly primaryInstanceType: string;
  readonly coreInstanceType: string;
  readonly coreInstanceCount: number;
  readonly serviceRole: string;
  readonly instanceProfile: string;
  readonly subnetId?: string | undefined;
  readonly logUri: string;
  /** s3:// URI of the bootstrap action that installs the job's Python libraries on every node. */
  readonly pythonBootstrapUri: string;
}

/** What a transient cluster exists for: a readable name and the tags that find it again. */
export interface ClusterPurpose {
  readonly name: string;
  readonly tags: ReadonlyArray<{ readonly Key: string; readonly Value: string }>;
}

/**
 * A feature-job cluster is named "<view> <runId>" after the stack's prefix; the run ledger's
 * take-over finds a dead starter's cluster by that name (feature-runs.ts findStartedStep).
 */
export function featureJobPurpose(run: FeatureJobRun): ClusterPurpose {
  return {
    name: `${run.view} ${run.runId}`,
    tags: [
      { Key: "feature-store:view", Value: run.view },
      { Key: "feature-store:run-id", Value: run.runId },
    ],
  };
}

export function trainingSetPurpose(run: TrainingSetRun): ClusterPurpose {
  return {
    name: `training-set ${run.name} ${run.runId}`,
    tags: [
      { Key: "feature-store:training-set", Value: run.name },
      { Key: "feature-store:run-id", Value: run.runId },
    ],
  };
}

/**
 * RunJobFlow for a cluster that runs this one step and terminates: Spark with Delta enabled
 * (delta-defaults), the job's Python libraries installed for EMR_PYTHON by a bootstrap action, logs in the artifacts bucket, and the tag AmazonEMRServicePolicy_v2 requires
 * on resources the service role manages.
 */
export function transientClusterRequest(
  purpose: ClusterPurpose,
  step: StepConfig,
  settings: TransientClusterSettings,
): RunJobFlowCommandInput {
  return {
    Name: `${settings.namePrefix} ${purpose.name}`.slice(0, 256),
    ReleaseLabel: settings.releaseLabel,
    Applications: [{ Name: "Spark" }],
    Configurations: [{ Classification: "delta-defaults", Properties: { "delta.enabled": "true" } }],
    Instances: {
      InstanceGroups: [
        {
          Name: "primary",
          InstanceRole: "MASTER",
          Market: "ON_DEMAND",
          InstanceType: settings.primaryInstanceType,
          InstanceCount: 1,
        },
        {
          Name: "core",
          InstanceRole: "CORE",
          Market: "ON_DEMAND",
          InstanceType: settings.coreInstanceType,
          InstanceCount: settings.coreInstanceCount,
        },
      ],
      KeepJobFlowAliveWhenNoSteps: false,
      TerminationProtected: false,
      ...(settings.subnetId ? { Ec2SubnetId: settings.subnetId } : {}),
    },
    Steps: [step],
    BootstrapActions: [
      {
        Name: "python-libraries",
        ScriptBootstrapAction: { Path: settings.pythonBootstrapUri, Args: [EMR_PYTHON] },
      },
    ],
    LogUri: settings.logUri,
    // A backstop: the cluster ends after its one step anyway; if it lingers (a step that never
    // started), EMR terminates it after an hour idle. Allowed range 60 s to 7 days:
    // https://docs.aws.amazon.com/emr/latest/APIReference/API_AutoTerminationPolicy.html
    AutoTerminationPolicy: { IdleTimeout: TRANSIENT_IDLE_TIMEOUT_SECONDS },
    ServiceRole: settings.serviceRole,
    JobFlowRole: settings.instanceProfile,
    VisibleToAllUsers: true,
    Tags: [
      { Key: "for-use-with-amazon-emr-managed-policies", Value: "true" },
      ...purpose.tags.map((tag) => ({ ...tag })),
    ],
  };
}
