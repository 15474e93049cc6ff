// Least-privilege IAM: one role per function plus the two EMR roles. Every statement names its
// resources; "*" appears only for actions without resource-level permissions (X-Ray writes,
// elasticmapreduce:RunJobFlow). Keyspaces table ARNs come from the feature views.
const path = require("node:path");
const tsx = require("tsx/cjs/api");
const names = require("./names.cjs");

const { loadFeatureViews } = tsx.require("../functions/commons/feature-view.ts", __filename);

const { ids, bucketArn, keyspacesTableArn, keyspacesSystemArn, logGroupArn, emrClusterArn, join } = names;

/** Actions AWS offers no resource-level permission for; their statements must use "*". */
const RESOURCELESS_ACTIONS = [
  "xray:PutTraceSegments",
  "xray:PutTelemetryRecords",
  "elasticmapreduce:RunJobFlow",
];

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

/** Starting the feature job: a step on the configured cluster, or a transient cluster. */
function startJobStatements(ctx) {
  if (ctx.emrClusterId) {
    return [
      // ListSteps: a retried ingest event checks whether a dead invocation added its step.
      allow(
        "AddStepsToFeatureCluster",
        ["elasticmapreduce:AddJobFlowSteps", "elasticmapreduce:ListSteps"],
        [emrClusterArn(ctx.emrClusterId)],
      ),
    ];
  }
  return [
    allow("StartTransientCluster", ["elasticmapreduce:RunJobFlow"], ["*"]),
    // Cluster ids are only known once RunJobFlow answers.
    allow("TagTransientCluster", ["elasticmapreduce:AddTags"], [emrClusterArn("*")]),
    allow("ListTransientClusterSteps", ["elasticmapreduce:ListSteps"], [emrClusterArn("*")]),
    allow(
      "PassEmrRoles",
      ["iam:PassRole"],
      [{ "Fn::GetAtt": [ids.emrServiceRole, "Arn"] }, { "Fn::GetAtt": [ids.emrInstanceRole, "Arn"] }],
      { StringEquals: { "iam:PassedToService": ["elasticmapreduce.amazonaws.com", "ec2.amazonaws.com"] } },
    ),
  ];
}

function iamResources(ctx, views) {
  const fn = (key) => `${ctx.service}-${ctx.stage}-${key}`;
  const b = (purpose, suffix) => bucketArn(ctx.service, ctx.stage, purpose, suffix);
  const tableArns = [...views.values()].map((v) => keyspacesTableArn(ctx.keyspace, v.onlineTable));

  return {
    [ids.roles.ingest]: role("lambda.amazonaws.com", [
      ...lambdaBasics(fn("ingest")),
      allow("ReadRawFiles", ["s3:GetObject", "s3:GetObjectVersion"], [b("raw", "/raw/*")]),
      allow("WriteQuarantine", ["s3:PutObject"], [b("raw", "/quarantine/*")]),
      allow(
        "ManageIngestClaims",
        ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        [b("artifacts", "/ingest-claims/*")],
      ),
      allow("RecordFailedEvents", ["sqs:SendMessage"], [{ "Fn::GetAtt": [ids.ingestFailedEvents, "Arn"] }]),
      ...startJobStatements(ctx),
    ]),
    [ids.roles.submit]: role("lambda.amazonaws.com", [
      ...lambdaBasics(fn("submit")),
      ...startJobStatements(ctx),
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
  iamResources,
  resources: async ({ resolveVariable }) => {
    const ctx = await names.stackContext(resolveVariable);
    return iamResources(ctx, loadFeatureViews(path.join(__dirname, "feature-views")));
  },
};
