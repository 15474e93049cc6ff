// Least-privilege IAM: one role per function plus the two EMR roles. Every statement names its
// resources; "*" appears only for actions without resource-level permissions (X-Ray writes,
// elasticmapreduce:RunJobFlow and ListClusters, cloudwatch:PutMetricData, which is held to one
// namespace by a condition instead). Keyspaces table ARNs come from the feature views.
// Actions, resources and condition keys per service:
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticmapreduce.html
const path = require("node:path");
const tsx = require("tsx/cjs/api");
const names = require("./names.cjs");

const { loadFeatureViews } = tsx.require("../functions/commons/feature-view-files.ts", __filename);

const { ids, bucketArn, keyspacesTableArn, keyspacesSystemArn, logGroupArn, emrClusterArn, join } = names;

/** Actions AWS offers no resource-level permission for; their statements must use "*". */
const RESOURCELESS_ACTIONS = [
  "xray:PutTraceSegments",
  "xray:PutTelemetryRecords",
  "elasticmapreduce:RunJobFlow",
  "elasticmapreduce:ListClusters",
  "cloudwatch:PutMetricData",
];

/** The run ledger's item operations (no Scan: every reader queries one view's partition). */
const LEDGER_READ_ACTIONS = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"];
const LEDGER_WRITE_ACTIONS = [
  ...LEDGER_READ_ACTIONS,
  "dynamodb:PutItem",
  "dynamodb:UpdateItem",
  "dynamodb:DeleteItem",
  "dynamodb:BatchWriteItem",
  // Transactions are authorised per item action, plus this one for their condition checks.
  "dynamodb:ConditionCheckItem",
];

/** Transient clusters carry this tag (functions/commons/jobs/cluster.ts featureJobPurpose). */
const VIEW_TAG = "feature-store:view";

function allow(sid, actions, resources, condition) {
  return {
    Sid: sid,
    Effect: "Allow",
    Action: actions,
    Resource: resources,
    ...(condition ? { Condition: condition } : {}),
  };
}

function role(trustedService, statements, extra = {}) {
  return {
    Type: "AWS::IAM::Role",
    Properties: {
      AssumeRolePolicyDocument: {
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Principal: { Service: trustedService },
            Action: "sts:AssumeRole",
            ...(extra.trustCondition ? { Condition: extra.trustCondition } : {}),
          },
        ],
      },
      ...(extra.managedPolicyArns ? { ManagedPolicyArns: extra.managedPolicyArns } : {}),
      Policies: [
        { PolicyName: "least-privilege", PolicyDocument: { Version: "2012-10-17", Statement: statements } },
      ],
    },
  };
}

/** Logs to the function's own log group (created by the framework) and traces to X-Ray. */
function lambdaBasics(functionName) {
  return [
    allow("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [logGroupArn(functionName)]),
    allow("WriteTraces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]),
  ];
}

const ledgerArn = () => ({ "Fn::GetAtt": [ids.runLedgerTable, "Arn"] });

function ledgerStatements(access) {
  return [
    allow(
      access === "read" ? "ReadRunLedger" : "ReadWriteRunLedger",
      access === "read" ? LEDGER_READ_ACTIONS : LEDGER_WRITE_ACTIONS,
      [ledgerArn()],
    ),
  ];
}

/**
 * EMR: starting the feature job (ingest, submit, runEvents) and, for runEvents (`watch`), following
 * a run to its end: describe steps, cancel a step past its timeout, end a transient cluster.
 */
function emrStatements(ctx, views, { watch = false } = {}) {
  if (ctx.emrClusterId) {
    // A configured cluster is the user's: steps may be added and cancelled, the cluster itself
    // is never terminated by the stack.
    const cluster = [emrClusterArn(ctx.emrClusterId)];
    if (!watch) {
      return [
        // ListSteps: a retried ingest event checks whether a dead invocation added its step.
        allow(
          "AddStepsToFeatureCluster",
          ["elasticmapreduce:AddJobFlowSteps", "elasticmapreduce:ListSteps"],
          cluster,
        ),
      ];
    }
    return [
      allow(
        "RunStepsOnFeatureCluster",
        [
          "elasticmapreduce:AddJobFlowSteps",
          "elasticmapreduce:ListSteps",
          "elasticmapreduce:DescribeStep",
          "elasticmapreduce:CancelSteps",
          "elasticmapreduce:DescribeCluster",
        ],
        cluster,
      ),
    ];
  }
  const anyCluster = [emrClusterArn("*")];
  const statements = [
    allow("StartTransientCluster", ["elasticmapreduce:RunJobFlow"], ["*"]),
    // Finding the cluster a crashed starter did launch: ListClusters has no resource-level
    // permission; the cluster's tags (DescribeCluster) tell whose run it is.
    allow("ListTransientClusters", ["elasticmapreduce:ListClusters"], ["*"]),
    // Cluster ids are only known once RunJobFlow answers. RunJobFlow tags the cluster and sets
    // its auto-termination (idle timeout) through these two actions.
    allow(
      "TagTransientCluster",
      ["elasticmapreduce:AddTags", "elasticmapreduce:PutAutoTerminationPolicy"],
      anyCluster,
    ),
    allow(
      "DescribeTransientClusters",
      watch
        ? ["elasticmapreduce:ListSteps", "elasticmapreduce:DescribeStep", "elasticmapreduce:DescribeCluster"]
        : ["elasticmapreduce:ListSteps", "elasticmapreduce:DescribeCluster"],
      anyCluster,
    ),
    allow(
      "PassEmrRoles",
      ["iam:PassRole"],
      [{ "Fn::GetAtt": [ids.emrServiceRole, "Arn"] }, { "Fn::GetAtt": [ids.emrInstanceRole, "Arn"] }],
      { StringEquals: { "iam:PassedToService": ["elasticmapreduce.amazonaws.com", "ec2.amazonaws.com"] } },
    ),
  ];
  if (watch) {
    // Changing a cluster is held to this project's clusters: those tagged with one of its views.
    statements.push(
      allow(
        "StopFeatureJobClusters",
        [
          "elasticmapreduce:AddJobFlowSteps",
          "elasticmapreduce:CancelSteps",
          "elasticmapreduce:TerminateJobFlows",
        ],
        anyCluster,
        { StringEquals: { [`elasticmapreduce:ResourceTag/${VIEW_TAG}`]: [...views.keys()].sort() } },
      ),
    );
  }
  return statements;
}

function iamResources(ctx, views) {
  const fn = (key) => `${ctx.service}-${ctx.stage}-${key}`;
  const b = (purpose, suffix) => bucketArn(ctx.service, ctx.stage, purpose, suffix);
  // Whoever starts a feature-job step writes its arguments manifest first when the step's inputs
  // or repair entities would pass EMR's 10,240 characters (functions/commons/jobs/feature-job-step.ts):
  // runs/<view>/<runId>/arguments.json in the offline bucket, beside the run's summary. Nothing else.
  const writeArgumentsManifests = allow(
    "WriteArgumentsManifests",
    ["s3:PutObject"],
    [b("offline", "/runs/*/arguments.json")],
  );
  const tableArns = [...views.values()].map((v) => keyspacesTableArn(ctx.keyspace, v.onlineTable));

  return {
    [ids.roles.ingest]: role("lambda.amazonaws.com", [
      ...lambdaBasics(fn("ingest")),
      allow("ReadRawFiles", ["s3:GetObject", "s3:GetObjectVersion"], [b("raw", "/raw/*")]),
      allow("WriteQuarantine", ["s3:PutObject"], [b("raw", "/quarantine/*")]),
      // The exact checked version is copied to staging/ (CopyObject: GetObjectVersion on the
      // source above, PutObject here); the job reads only staged copies.
      allow("StageCheckedFiles", ["s3:PutObject"], [b("raw", "/staging/*")]),
      allow("RecordFailedEvents", ["sqs:SendMessage"], [{ "Fn::GetAtt": [ids.ingestFailedEvents, "Arn"] }]),
      ...ledgerStatements("write"),
      ...emrStatements(ctx, views),
      writeArgumentsManifests,
    ]),
    [ids.roles.submit]: role("lambda.amazonaws.com", [
      ...lambdaBasics(fn("submit")),
      ...ledgerStatements("write"),
      ...emrStatements(ctx, views),
      writeArgumentsManifests,
    ]),
    // Closes runs from EMR events, retries, starts the next batch, alerts and reports staleness.
    [ids.roles.runEvents]: role("lambda.amazonaws.com", [
      ...lambdaBasics(fn("runEvents")),
      ...ledgerStatements("write"),
      ...emrStatements(ctx, views, { watch: true }),
      writeArgumentsManifests,
      // Run summaries (reject counts, Delta version) written by the job.
      allow("ReadRunSummaries", ["s3:GetObject"], [b("offline", "/runs/*")]),
      allow("PublishAlerts", ["sns:Publish"], [{ Ref: ids.alertsTopic }]),
      // Publishing to a KMS-encrypted topic encrypts with the topic's key on the caller's behalf.
      allow(
        "EncryptAlerts",
        ["kms:GenerateDataKey*", "kms:Decrypt"],
        [{ "Fn::GetAtt": [ids.alertsKey, "Arn"] }],
      ),
      allow("PutFeatureStoreMetrics", ["cloudwatch:PutMetricData"], ["*"], {
        StringEquals: { "cloudwatch:namespace": "FeatureStore" },
      }),
    ]),
    [ids.roles.status]: role("lambda.amazonaws.com", [
      ...lambdaBasics(fn("status")),
      ...ledgerStatements("read"),
    ]),
    [ids.roles.getFeatures]: role("lambda.amazonaws.com", [
      ...lambdaBasics(fn("getFeatures")),
      allow("ReadFeatureTables", ["cassandra:Select"], tableArns),
      // The driver reads system.local, system.peers and system_schema* when it connects.
      allow("ReadKeyspacesSystemTables", ["cassandra:Select"], [keyspacesSystemArn()]),
    ]),
    [ids.emrServiceRole]: role(
      "elasticmapreduce.amazonaws.com",
      [
        allow("PassInstanceRole", ["iam:PassRole"], [{ "Fn::GetAtt": [ids.emrInstanceRole, "Arn"] }], {
          StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" },
        }),
      ],
      {
        managedPolicyArns: [
          join([
            "arn:",
            { Ref: "AWS::Partition" },
            ":iam::aws:policy/service-role/AmazonEMRServicePolicy_v2",
          ]),
        ],
        trustCondition: { StringEquals: { "aws:SourceAccount": { Ref: "AWS::AccountId" } } },
      },
    ),
    // What the Spark job itself may do, running on the cluster's instances.
    [ids.emrInstanceRole]: role("ec2.amazonaws.com", [
      allow("ListJobBuckets", ["s3:ListBucket"], [b("raw"), b("offline"), b("artifacts")]),
      allow("ReadRawFiles", ["s3:GetObject"], [b("raw", "/raw/*")]),
      // Staged copies of checked raw files: the exact versions a run reads.
      allow("ReadStagedFiles", ["s3:GetObject"], [b("raw", "/staging/*")]),
      // Training-set events (labels) uploaded to the raw bucket; outside raw/ so ingest ignores them.
      allow("ReadTrainingSetEvents", ["s3:GetObject"], [b("raw", "/labels/*")]),
      allow(
        "ReadJobArtifacts",
        ["s3:GetObject"],
        [b("artifacts", "/spark/*"), b("artifacts", "/feature-views/*")],
      ),
      allow("WriteEmrLogs", ["s3:PutObject"], [b("artifacts", "/emr-logs/*")]),
      // Delta tables, rejected rows, run summaries, and training sets with their manifests.
      allow(
        "ReadWriteOfflineStore",
        ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        [b("offline", "/*")],
      ),
      allow("WriteFeatureTables", ["cassandra:Select", "cassandra:Modify"], tableArns),
      allow("ReadKeyspacesSystemTables", ["cassandra:Select"], [keyspacesSystemArn()]),
    ]),
    [ids.emrInstanceProfile]: {
      Type: "AWS::IAM::InstanceProfile",
      Properties: { Roles: [{ Ref: ids.emrInstanceRole }] },
    },
  };
}

module.exports = {
  RESOURCELESS_ACTIONS,
  LEDGER_READ_ACTIONS,
  LEDGER_WRITE_ACTIONS,
  iamResources,
  resources: async ({ resolveVariable }) => {
    const ctx = await names.stackContext(resolveVariable);
    return iamResources(ctx, loadFeatureViews(path.join(__dirname, "feature-views")));
  },
};
