// EventBridge patterns of the EMR events runEvents follows, per EMR mode. Content filtering keeps
// unrelated steps and clusters of the account from invoking it at all
// (https://docs.aws.amazon.com/eventbridge/latest/userguide/content-filtering-with-event-patterns.html;
// event shapes: https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-service-limits-cloudwatch-events.html).
// Used from serverless.yml as ${file(./resources/run-events.cjs):stepEventPattern} and :clusterEventPattern.
const names = require("./names.cjs");

/** Feature-job steps are named `feature-job <view> <mode> <runId>` (functions/commons/jobs/feature-job-step.ts). */
const STEP_NAME_PREFIX = "feature-job ";

/** Transient clusters are named `<service>-<stage> <view> <runId>` (STACK_NAME + featureJobPurpose). */
function transientClusterNamePrefix({ service, stage }) {
  return `${service}-${stage} `;
}

function stepPattern(ctx) {
  return {
    source: ["aws.emr"],
    "detail-type": ["EMR Step Status Change"],
    detail: {
      name: [{ prefix: STEP_NAME_PREFIX }],
      // On a configured cluster, only that cluster's steps (another stack may share the prefix).
      ...(ctx.emrClusterId ? { clusterId: [ctx.emrClusterId] } : {}),
    },
  };
}

function clusterPattern(ctx) {
  return {
    source: ["aws.emr"],
    "detail-type": ["EMR Cluster State Change"],
    detail: ctx.emrClusterId
      ? { clusterId: [ctx.emrClusterId] }
      : { name: [{ prefix: transientClusterNamePrefix(ctx) }] },
  };
}

module.exports = {
  STEP_NAME_PREFIX,
  stepPattern,
  clusterPattern,
  // Serverless variable sources.
  stepEventPattern: async ({ resolveVariable }) => stepPattern(await names.stackContext(resolveVariable)),
  clusterEventPattern: async ({ resolveVariable }) =>
    clusterPattern(await names.stackContext(resolveVariable)),
};
