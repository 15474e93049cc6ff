// The three buckets (and the queue of S3 events ingest could not handle): raw (landing zone, versioned, notifies ingest on raw/**/*.csv), offline
// (Delta tables and rejected rows) and artifacts (Spark job, jars, feature views, run summaries,
// EMR logs, ingest claims). All private, encrypted at rest and reachable over TLS only.
const { ids, bucketName, bucketArn } = require("./names.cjs");
const security = require("./security.cjs");

// staging/: the checked copy a run reads; the ledger keeps a run's files for 90 days, so do the copies.
const DAY_LIMITS = { quarantine: 90, noncurrentRaw: 90, emrLogs: 30, staging: 90, rejects: 180 };

function privateEncryptedBucket(ctx, name, purpose, extra = {}) {
  return {
    BucketName: name,
    PublicAccessBlockConfiguration: {
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    },
    OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] },
    // SSE-S3, or the stack's customer-managed key when the customerManagedKey param is on.
    BucketEncryption: security.bucketEncryption(ctx),
    ...security.bucketLogging(ctx, purpose),
    ...extra,
  };
}

function abortIncompleteUploads() {
  return {
    Id: "abort-incomplete-uploads",
    Status: "Enabled",
    AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
  };
}

function expirePrefix(id, prefix, days) {
  return { Id: id, Status: "Enabled", Prefix: prefix, ExpirationInDays: days };
}

/** Denies every request that does not use TLS. */
function tlsOnlyPolicy(bucketLogicalId, service, stage, purpose) {
  return {
    Type: "AWS::S3::BucketPolicy",
    Properties: {
      Bucket: { Ref: bucketLogicalId },
      PolicyDocument: {
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "DenyInsecureTransport",
            Effect: "Deny",
            Principal: "*",
            Action: "s3:*",
            Resource: [bucketArn(service, stage, purpose), bucketArn(service, stage, purpose, "/*")],
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          },
        ],
      },
    },
  };
}

/** ctx: stackContext plus the security params (security.securityContext). */
function storageResources(ctx) {
  const { service, stage } = ctx;
  const raw = bucketName(service, stage, "raw");
  return {
    // S3 checks that it may invoke the function when the notification is created, so the bucket
    // waits for this permission; the permission names the bucket by its (known) name, not Ref.
    [ids.ingestInvokePermission]: {
      Type: "AWS::Lambda::Permission",
      Properties: {
        FunctionName: { "Fn::GetAtt": [ids.ingestFunction, "Arn"] },
        Action: "lambda:InvokeFunction",
        Principal: "s3.amazonaws.com",
        SourceAccount: { Ref: "AWS::AccountId" },
        SourceArn: bucketArn(service, stage, "raw"),
      },
    },
    [ids.rawBucket]: security.withSkips(
      {
        Type: "AWS::S3::Bucket",
        DependsOn: [ids.ingestInvokePermission],
        DeletionPolicy: "Retain",
        UpdateReplacePolicy: "Retain",
        Properties: privateEncryptedBucket(ctx, raw, "raw", {
          VersioningConfiguration: { Status: "Enabled" },
          LifecycleConfiguration: {
            Rules: [
              expirePrefix("expire-quarantine", "quarantine/", DAY_LIMITS.quarantine),
              expirePrefix("expire-staging", "staging/", DAY_LIMITS.staging),
              {
                Id: "expire-noncurrent-versions",
                Status: "Enabled",
                NoncurrentVersionExpiration: { NoncurrentDays: DAY_LIMITS.noncurrentRaw },
              },
              abortIncompleteUploads(),
            ],
          },
          NotificationConfiguration: {
            LambdaConfigurations: [
              {
                Event: "s3:ObjectCreated:*",
                Function: { "Fn::GetAtt": [ids.ingestFunction, "Arn"] },
                Filter: {
                  S3Key: {
                    Rules: [
                      { Name: "prefix", Value: "raw/" },
                      { Name: "suffix", Value: ".csv" },
                    ],
                  },
                },
              },
            ],
          },
        }),
      },
      security.bucketSkips(ctx),
    ),
    RawBucketPolicy: tlsOnlyPolicy(ids.rawBucket, service, stage, "raw"),
    [ids.offlineBucket]: security.withSkips(
      {
        Type: "AWS::S3::Bucket",
        DeletionPolicy: "Retain",
        UpdateReplacePolicy: "Retain",
        Properties: privateEncryptedBucket(ctx, bucketName(service, stage, "offline"), "offline", {
          LifecycleConfiguration: {
            Rules: [expirePrefix("expire-rejects", "rejects/", DAY_LIMITS.rejects), abortIncompleteUploads()],
          },
        }),
      },
      security.bucketSkips(ctx, security.REASONS.deltaVersioning),
    ),
    OfflineBucketPolicy: tlsOnlyPolicy(ids.offlineBucket, service, stage, "offline"),
    // Rebuilt by every deploy; the upload-artifacts plugin empties it before `sls remove`.
    [ids.artifactsBucket]: security.withSkips(
      {
        Type: "AWS::S3::Bucket",
        Properties: privateEncryptedBucket(ctx, bucketName(service, stage, "artifacts"), "artifacts", {
          LifecycleConfiguration: {
            Rules: [
              expirePrefix("expire-emr-logs", "emr-logs/", DAY_LIMITS.emrLogs),
              abortIncompleteUploads(),
            ],
          },
        }),
      },
      security.bucketSkips(ctx, security.REASONS.artifactsVersioning),
    ),
    ArtifactsBucketPolicy: tlsOnlyPolicy(ids.artifactsBucket, service, stage, "artifacts"),
    // S3 events ingest still failed on after its retries: kept 14 days for inspection and replay.
    [ids.ingestFailedEvents]: security.withSkips(
      {
        Type: "AWS::SQS::Queue",
        Properties: { MessageRetentionPeriod: 14 * 86_400, ...security.queueEncryption(ctx) },
      },
      security.queueSkips(ctx),
    ),
  };
}

module.exports = { storageResources, DAY_LIMITS };
