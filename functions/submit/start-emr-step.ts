// Runs one EMR step for either Spark job: added to the configured cluster, or as the only step of
// a transient cluster when none is configured. The one place that calls AddJobFlowSteps/RunJobFlow.
import {
  AddJobFlowStepsCommand,
  type EMRClient,
  ListStepsCommand,
  RunJobFlowCommand,
  type StepConfig,
} from "@aws-sdk/client-emr";
import { ARTIFACT_KEYS, type ClusterPurpose, transientClusterRequest } from "../commons/emr-step.js";
import type { FeatureJobConfig } from "../commons/feature-job-config.js";

export interface StepStarted {
  readonly clusterId: string;
  readonly stepIds: readonly string[];
  /** True when a transient cluster was started for this step. */
  readonly transientCluster: boolean;
}

/**
 * Starts the step built by `stepFor` (which gets whether the cluster is transient, as the
 * step's ActionOnFailure depends on it). `purpose` names and tags a transient cluster.
 */
export async function startEmrStep(
  emr: EMRClient,
  config: FeatureJobConfig,
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
  const clusterId = response.JobFlowId ?? "";
  const steps = clusterId ? await emr.send(new ListStepsCommand({ ClusterId: clusterId })) : undefined;
  return {
    clusterId,
    stepIds: (steps?.Steps ?? []).map((s) => s.Id ?? "").filter((id) => id !== ""),
    transientCluster: true,
  };
}
