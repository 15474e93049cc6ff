// What the infrastructure scan (checkov, docs/DEPLOY.md "Security") asks of the stack and the
// stack's answers: the optional customer-managed KMS key (param customerManagedKey: off by
// default, on in prod) used by the buckets, log groups, the failed-events queue, the run ledger and
// the function environments; S3 server access logs to the account's log bucket (param
// accessLogsBucket); and, for each check that stays failing, a checkov skip in the resource's
// Metadata with the reason. Framework-generated resources (functions, their log groups, the API's
// log group, the deployment bucket) are extended through `resources.extensions` in serverless.yml:
// ${file(./resources/security.cjs):extensions}.
const { ids, join, stackContext } = require("./names.cjs");

const partition = { Ref: "AWS::Partition" };
const region = { Ref: "AWS::Region" };
const account = { Ref: "AWS::AccountId" };

/** Logical id prefixes of the functions in serverless.yml (<Prefix>LambdaFunction, <Prefix>LogGroup). */
const FUNCTIONS = ["GetFeatures", "Ingest", "Submit", "RunEvents", "Status"];

/** Functions invoked synchronously only: a dead-letter queue applies to asynchronous invocations. */
const SYNC_FUNCTIONS = ["GetFeatures", "Submit", "Status"];

const STACK_KEY = "StackKey";

/** One reason per check the stack answers with a documented choice rather than a setting. */
const REASONS = {
  vpc: "Reaches only public AWS endpoints (Keyspaces, S3, DynamoDB, EMR, SNS) over TLS with SigV4 IAM auth; no private resource to reach, so a VPC adds NAT/endpoint cost without narrowing access",
  dlqSync:
    "Invoked synchronously only (HTTP API or sls invoke): the caller sees the error; a dead-letter queue applies to asynchronous invocations",
  dlqIngest:
    "Failed S3 events go to the on-failure destination IngestFailedEventsQueue (EventInvokeConfig, alarmed), which records more than a DLQ",
  dlqRunEvents:
    "EMR events only trigger conditional ledger transitions; the 5-minute scheduled reconcile re-derives any lost one, so a DLQ would hold nothing to replay",
  noCmkLogs:
    "Encrypted by CloudWatch Logs with service-owned keys; the customer-managed key is the customerManagedKey param (on in prod)",
  noCmkEnv:
    "Environment holds names and limits, no secrets, encrypted at rest with the Lambda service key; the customer-managed key is the customerManagedKey param (on in prod)",
  noCmkTable:
    "Encrypted with the AWS managed key aws/dynamodb (SSEEnabled); the customer-managed key is the customerManagedKey param (on in prod)",
  sseSqs:
    "Encrypted with SSE-SQS (SqsManagedSseEnabled), which this check does not recognise; the customer-managed key is the customerManagedKey param (on in prod)",
  noAccessLogs:
    "S3 server access logs go to the account's log bucket, the accessLogsBucket param; none is set for this stage",
  deltaVersioning:
    "Delta Lake versions the tables in its transaction log (time travel, restore); S3 versioning would keep every vacuumed file forever",
  artifactsVersioning:
    "Rebuilt from the repository by every deploy and emptied before sls remove; nothing in it is the only copy",
};

/** A checkov skip entry: Metadata.checkov.skip[] (https://www.checkov.io/2.Basics/Suppressing%20and%20Skipping%20Policies.html). */
function skip(id, comment) {
  return { id, comment };
}

function checkovMetadata(skips) {
  return skips.length > 0 ? { checkov: { skip: skips } } : undefined;
}

/** Adds checkov skips to a resource definition, keeping Metadata it already has. */
function withSkips(resource, skips) {
  if (skips.length === 0) return resource;
  const existing = resource.Metadata?.checkov?.skip ?? [];
  return { ...resource, Metadata: { ...resource.Metadata, checkov: { skip: [...existing, ...skips] } } };
}

function truthy(value) {
  return value === true || String(value ?? "").trim() === "true";
}

/** Reads the security params next to what every fragment needs. */
async function securityContext(resolveVariable) {
  const [ctx, customerManagedKey, accessLogsBucket] = await Promise.all([
    stackContext(resolveVariable),
    resolveVariable("param:customerManagedKey"),
    resolveVariable("param:accessLogsBucket"),
  ]);
  return {
    ...ctx,
    customerManagedKey: truthy(customerManagedKey),
    accessLogsBucket: String(accessLogsBucket ?? "").trim(),
  };
}

function stackKeyArn() {
  return { "Fn::GetAtt": [STACK_KEY, "Arn"] };
}

function viaService(services) {
  return services.map((service) => join([`${service}.`, region, ".amazonaws.com"]));
}

/**
 * A KMS key policy: key administration stays with the account's IAM policies (the default key
 * policy's statement), plus the service grants a key needs.
 */
function kmsKeyPolicy(statements) {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "EnableIamPolicies",
        Effect: "Allow",
        Principal: { AWS: join(["arn:", partition, ":iam::", account, ":root"]) },
        Action: "kms:*",
        Resource: "*",
      },
      ...statements,
    ],
  };
}

/**
 * The customer-managed key. Access goes through IAM (the default key policy statement): the
 * stack's roles get one policy that lets them use the key only through the services that store
 * their data (kms:ViaService; a separate policy, because the key policy naming the roles would
 * make a cycle role -> queue -> key -> role). CloudWatch Logs may use it for this account's log
 * groups (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
 */
function stackKeyResources(ctx) {
  if (!ctx.customerManagedKey) return {};
  return {
    [STACK_KEY]: {
      Type: "AWS::KMS::Key",
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
      Properties: {
        Description: `Encrypts the buckets, logs, queue, run ledger and function environments of ${ctx.service}-${ctx.stage}`,
        EnableKeyRotation: true,
        KeyPolicy: kmsKeyPolicy([
          {
            Sid: "AllowCloudWatchLogsOfThisAccount",
            Effect: "Allow",
            Principal: { Service: join(["logs.", region, ".amazonaws.com"]) },
            Action: [
              "kms:Encrypt*",
              "kms:Decrypt*",
              "kms:ReEncrypt*",
              "kms:GenerateDataKey*",
              "kms:Describe*",
            ],
            Resource: "*",
            Condition: {
              ArnLike: {
                "kms:EncryptionContext:aws:logs:arn": join([
                  "arn:",
                  partition,
                  ":logs:",
                  region,
                  ":",
                  account,
                  ":log-group:*",
                ]),
              },
            },
          },
        ]),
      },
    },
    StackKeyUsePolicy: {
      Type: "AWS::IAM::Policy",
      Properties: {
        PolicyName: "stack-key-through-storage-services",
        Roles: [...Object.values(ids.roles), ids.emrInstanceRole].map((role) => ({ Ref: role })),
        PolicyDocument: {
          Version: "2012-10-17",
          Statement: [
            {
              Sid: "UseStackKeyThroughStorageServices",
              Effect: "Allow",
              Action: ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
              Resource: stackKeyArn(),
              Condition: {
                StringEquals: { "kms:ViaService": viaService(["s3", "sqs", "dynamodb", "lambda"]) },
              },
            },
          ],
        },
      },
    },
    StackKeyAlias: {
      Type: "AWS::KMS::Alias",
      Properties: { AliasName: `alias/${ctx.service}-${ctx.stage}`, TargetKeyId: { Ref: STACK_KEY } },
    },
  };
}

/** Default encryption of a bucket: the stack key when on (bucket keys cut KMS calls), else SSE-S3. */
function bucketEncryption(ctx) {
  const byDefault = ctx.customerManagedKey
    ? { SSEAlgorithm: "aws:kms", KMSMasterKeyID: stackKeyArn() }
    : { SSEAlgorithm: "AES256" };
  return {
    ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: byDefault, BucketKeyEnabled: true }],
  };
}

/** Server access logging of a bucket to the account's log bucket, under <bucket purpose>/. */
function bucketLogging(ctx, prefix) {
  if (!ctx.accessLogsBucket) return {};
  return {
    LoggingConfiguration: { DestinationBucketName: ctx.accessLogsBucket, LogFilePrefix: `${prefix}/` },
  };
}

function bucketSkips(ctx, versioningReason) {
  const skips = [];
  if (!ctx.accessLogsBucket) skips.push(skip("CKV_AWS_18", REASONS.noAccessLogs));
  if (versioningReason) skips.push(skip("CKV_AWS_21", versioningReason));
  return skips;
}

function queueEncryption(ctx) {
  return ctx.customerManagedKey ? { KmsMasterKeyId: stackKeyArn() } : { SqsManagedSseEnabled: true };
}

function queueSkips(ctx) {
  return ctx.customerManagedKey ? [] : [skip("CKV_AWS_27", REASONS.sseSqs)];
}

function tableEncryption(ctx) {
  return ctx.customerManagedKey
    ? { SSEEnabled: true, SSEType: "KMS", KMSMasterKeyId: stackKeyArn() }
    : { SSEEnabled: true };
}

function tableSkips(ctx) {
  return ctx.customerManagedKey ? [] : [skip("CKV_AWS_119", REASONS.noCmkTable)];
}

function functionSkips(ctx, fn) {
  const skips = [skip("CKV_AWS_117", REASONS.vpc)];
  if (SYNC_FUNCTIONS.includes(fn)) skips.push(skip("CKV_AWS_116", REASONS.dlqSync));
  if (fn === "Ingest") skips.push(skip("CKV_AWS_116", REASONS.dlqIngest));
  if (fn === "RunEvents") skips.push(skip("CKV_AWS_116", REASONS.dlqRunEvents));
  if (!ctx.customerManagedKey) skips.push(skip("CKV_AWS_173", REASONS.noCmkEnv));
  return skips;
}

function logGroupExtension(ctx) {
  return ctx.customerManagedKey
    ? { Properties: { KmsKeyId: stackKeyArn() } }
    : { Metadata: checkovMetadata([skip("CKV_AWS_158", REASONS.noCmkLogs)]) };
}

/** resources.extensions: settings and skips for what the framework generates. */
function extensionsFor(ctx) {
  const extensions = {};
  for (const fn of FUNCTIONS) {
    extensions[`${fn}LambdaFunction`] = {
      ...(ctx.customerManagedKey ? { Properties: { KmsKeyArn: stackKeyArn() } } : {}),
      Metadata: checkovMetadata(functionSkips(ctx, fn)),
    };
    extensions[`${fn}LogGroup`] = logGroupExtension(ctx);
  }
  extensions.HttpApiLogGroup = logGroupExtension(ctx);
  // Only the packaged code and templates of deploys, written by the deploying principal.
  extensions.ServerlessDeploymentBucket = ctx.accessLogsBucket
    ? { Properties: bucketLogging(ctx, "deployment") }
    : { Metadata: checkovMetadata([skip("CKV_AWS_18", REASONS.noAccessLogs)]) };
  return extensions;
}

module.exports = {
  kmsKeyPolicy,
  FUNCTIONS,
  STACK_KEY,
  REASONS,
  skip,
  withSkips,
  securityContext,
  stackKeyResources,
  bucketEncryption,
  bucketLogging,
  bucketSkips,
  queueEncryption,
  queueSkips,
  tableEncryption,
  tableSkips,
  extensionsFor,
  // Serverless variable source: resources.extensions in serverless.yml.
  extensions: async ({ resolveVariable }) => extensionsFor(await securityContext(resolveVariable)),
};
