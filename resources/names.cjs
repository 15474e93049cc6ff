// Names and ARNs the stack's fragments share. Bucket names are deterministic
// (<service>-<stage>-<purpose>-<account>-<region>) and built with Fn::Join rather than Ref, so
// the raw bucket's notification, the ingest function and its role can all name the bucket
// without a dependency cycle (bucket -> permission -> function -> bucket).

const BUCKET_PURPOSES = ["raw", "offline", "artifacts"];

/** CloudFormation logical ids of the resources other fragments refer to. */
const ids = {
  rawBucket: "RawBucket",
  offlineBucket: "OfflineBucket",
  artifactsBucket: "ArtifactsBucket",
  ingestInvokePermission: "IngestRawBucketInvokePermission",
  ingestFunction: "IngestLambdaFunction",
  ingestFailedEvents: "IngestFailedEventsQueue",
  runLedgerTable: "RunLedgerTable",
  runEventsFunction: "RunEventsLambdaFunction",
  alertsTopic: "AlertsTopic",
  alertsKey: "AlertsKey",
  dashboard: "OperationsDashboard",
  emrServiceRole: "EmrServiceRole",
  emrInstanceRole: "EmrInstanceRole",
  emrInstanceProfile: "EmrInstanceProfile",
  roles: {
    ingest: "IngestRole",
    submit: "SubmitRole",
    getFeatures: "GetFeaturesRole",
    runEvents: "RunEventsRole",
    status: "StatusRole",
  },
};

const partition = { Ref: "AWS::Partition" };
const region = { Ref: "AWS::Region" };
const account = { Ref: "AWS::AccountId" };

/** Joins strings and intrinsics; plain concatenation when every part is a string. */
function join(parts) {
  return parts.every((p) => typeof p === "string") ? parts.join("") : { "Fn::Join": ["", parts] };
}

function bucketName(service, stage, purpose) {
  if (!BUCKET_PURPOSES.includes(purpose)) throw new Error(`Unknown bucket purpose ${purpose}`);
  return join([`${service}-${stage}-${purpose}-`, account, "-", region]);
}

function bucketArn(service, stage, purpose, suffix = "") {
  return join(["arn:", partition, ":s3:::", bucketName(service, stage, purpose), suffix]);
}

/** Keyspaces ARNs: a table, or every system keyspace the driver reads at connect time. */
function keyspacesTableArn(keyspace, table) {
  return join([
    "arn:",
    partition,
    ":cassandra:",
    region,
    ":",
    account,
    `:/keyspace/${keyspace}/table/${table}`,
  ]);
}
function keyspacesSystemArn() {
  return join(["arn:", partition, ":cassandra:", region, ":", account, ":/keyspace/system*"]);
}

function logGroupArn(functionName) {
  return join([
    "arn:",
    partition,
    ":logs:",
    region,
    ":",
    account,
    `:log-group:/aws/lambda/${functionName}:*`,
  ]);
}

function emrClusterArn(clusterId) {
  return join(["arn:", partition, ":elasticmapreduce:", region, ":", account, `:cluster/${clusterId}`]);
}

/**
 * The `service` dimension Powertools Metrics puts on every metric (POWERTOOLS_SERVICE_NAME in
 * serverless.yml): per stage, so two stages in one account never share an alarm's data.
 */
function metricsServiceName(service, stage) {
  return `${service}-${stage}`;
}

/** Reads what every fragment needs from the serverless variable resolver. */
async function stackContext(resolveVariable) {
  const [service, stage, keyspace, emrClusterId] = await Promise.all([
    resolveVariable("self:service"),
    resolveVariable("sls:stage"),
    resolveVariable("self:custom.keyspace"),
    resolveVariable("param:emrClusterId"),
  ]);
  return { service, stage, keyspace, emrClusterId: String(emrClusterId ?? "").trim() };
}

module.exports = {
  ids,
  join,
  bucketName,
  bucketArn,
  keyspacesTableArn,
  keyspacesSystemArn,
  logGroupArn,
  emrClusterArn,
  metricsServiceName,
  stackContext,
  // Serverless variable sources for function environments: ${file(./resources/names.cjs):rawBucket}
  rawBucket: async ({ resolveVariable }) => {
    const c = await stackContext(resolveVariable);
    return bucketName(c.service, c.stage, "raw");
  },
  offlineBucket: async ({ resolveVariable }) => {
    const c = await stackContext(resolveVariable);
    return bucketName(c.service, c.stage, "offline");
  },
  artifactsBucket: async ({ resolveVariable }) => {
    const c = await stackContext(resolveVariable);
    return bucketName(c.service, c.stage, "artifacts");
  },
};
