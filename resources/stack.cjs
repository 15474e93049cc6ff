// The stack's own resources and outputs, merged from one fragment per concern: Keyspaces tables
// (keyspaces.cjs), buckets (storage.cjs), IAM (iam.cjs), the run ledger (run-ledger.cjs), alerts,
// alarms and the dashboard (monitoring.cjs). Used from serverless.yml as
// ${file(./resources/stack.cjs):resources} and ${file(./resources/stack.cjs):outputs}.
const path = require("node:path");
const tsx = require("tsx/cjs/api");
const keyspaces = require("./keyspaces.cjs");
const { storageResources } = require("./storage.cjs");
const iam = require("./iam.cjs");
const { runLedgerResources } = require("./run-ledger.cjs");
const monitoring = require("./monitoring.cjs");
const security = require("./security.cjs");
const { ids, join } = require("./names.cjs");

const { loadFeatureViews } = tsx.require("../functions/commons/feature-view-files.ts", __filename);
const { KEYSPACE_LOGICAL_ID, tableLogicalId } = tsx.require(
  "../functions/commons/online-schema.ts",
  __filename,
);

/** Merges fragments; two fragments defining the same logical id is a mistake, not an override. */
function mergeFragments(fragments) {
  const merged = {};
  for (const [name, fragment] of Object.entries(fragments)) {
    for (const [logicalId, resource] of Object.entries(fragment)) {
      if (logicalId in merged) throw new Error(`resources/${name} redefines ${logicalId}`);
      merged[logicalId] = resource;
    }
  }
  return merged;
}

function stackOutputs(views) {
  const outputs = {
    FeaturesApiUrl: {
      Description: "Base URL of the IAM-authorised features API: GET <url>/<view>/<entityId>",
      Value: join([
        "https://",
        { Ref: "HttpApi" },
        ".execute-api.",
        { Ref: "AWS::Region" },
        ".",
        { Ref: "AWS::URLSuffix" },
        "/features",
      ]),
    },
    RawBucketName: { Description: "Drop raw CSVs under raw/<view>/", Value: { Ref: ids.rawBucket } },
    OfflineBucketName: {
      Description: "Delta Lake offline store (delta/) and rejects",
      Value: { Ref: ids.offlineBucket },
    },
    ArtifactsBucketName: {
      Description: "Spark job, jars, feature views, run summaries, EMR logs",
      Value: { Ref: ids.artifactsBucket },
    },
    KeyspaceName: {
      Description: "Keyspaces keyspace of the online store",
      Value: { Ref: KEYSPACE_LOGICAL_ID },
    },
    IngestFailedEventsQueueUrl: {
      Description:
        "S3 events ingest failed on after retries (inspect, then replay with sls invoke -f ingest)",
      Value: { Ref: ids.ingestFailedEvents },
    },
    RunLedgerTableName: {
      Description: "DynamoDB run ledger: files, runs and locks per view (sls invoke -f status)",
      Value: { Ref: ids.runLedgerTable },
    },
    AlertsTopicArn: {
      Description: "SNS topic of alarms and failed runs (subscribe to it, or deploy with alertEmail)",
      Value: { Ref: ids.alertsTopic },
    },
    DashboardUrl: {
      Description: "CloudWatch dashboard of runs, staleness, serving and EMR",
      Value: join([
        "https://",
        { Ref: "AWS::Region" },
        ".console.aws.amazon.com/cloudwatch/home?region=",
        { Ref: "AWS::Region" },
        "#dashboards:name=",
        { Ref: ids.dashboard },
      ]),
    },
    EmrServiceRoleName: { Value: { Ref: ids.emrServiceRole } },
    EmrInstanceProfileName: { Value: { Ref: ids.emrInstanceProfile } },
  };
  for (const view of views.values()) {
    outputs[`${tableLogicalId(view)}Name`] = {
      Description: `Online table of the ${view.name} feature view`,
      Value: view.onlineTable,
    };
  }
  return outputs;
}

const viewsDir = path.join(__dirname, "feature-views");

module.exports = {
  mergeFragments,
  resources: async (resolver) => {
    const ctx = await security.securityContext(resolver.resolveVariable);
    return mergeFragments({
      "keyspaces.cjs": await keyspaces.resources(resolver),
      "storage.cjs": storageResources(ctx),
      "iam.cjs": await iam.resources(resolver),
      "run-ledger.cjs": runLedgerResources(ctx),
      "monitoring.cjs": await monitoring.resources(ctx, resolver.resolveVariable),
      "security.cjs": security.stackKeyResources(ctx),
    });
  },
  outputs: async () => stackOutputs(loadFeatureViews(viewsDir)),
};
