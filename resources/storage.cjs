// The three buckets (and the queue of S3 events ingest could not handle): raw (landing zone, versioned, notifies ingest on raw/**/*.csv), offline
// (Delta tables and rejected rows) and artifacts (Spark job, jars, feature views, run summaries,
// EMR logs, ingest claims). All private, encrypted at rest and reachable over TLS only.
const { ids, bucketName, bucketArn } = require("./names.cjs");

// staging/: the checked copy a run reads; the ledger keeps a run's files for 90 days, so do the copies.
const DAY_LIMITS = { quarantine: 90, noncurrentRaw: 90, emrLogs: 30, staging: 90, rejects: 180 };

function privateEncryptedBucket(name, extra = {}) {
  return {
    BucketName: name,
    PublicAccessBlockConfiguration: {
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    },
    OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] },
    BucketEncryption: {
      ServerSideEncryptionConfiguration: [
        { ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" }, BucketKeyEnabled: true },
      ],
    },
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

function storageResources({ service, stage }) {
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
    [ids.rawBucket]: {
      Type: "AWS::S3::Bucket",
      DependsOn: [ids.ingestInvokePermission],
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
      Properties: privateEncryptedBucket(raw, {
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
    RawBucketPolicy: tlsOnlyPolicy(ids.rawBucket, service, stage, "raw"),
    [ids.offlineBucket]: {
      Type: "AWS::S3::Bucket",
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
      Properties: privateEncryptedBucket(bucketName(service, stage, "offline"), {
        LifecycleConfiguration: {
          Rules: [expirePrefix("expire-rejects", "rejects/", DAY_LIMITS.rejects), abortIncompleteUploads()],
        },
      }),
    },
    OfflineBucketPolicy: tlsOnlyPolicy(ids.offlineBucket, service, stage, "offline"),
    // Rebuilt by every deploy; the upload-artifacts plugin empties it before `sls remove`.
    [ids.artifactsBucket]: {
      Type: "AWS::S3::Bucket",
      Properties: privateEncryptedBucket(bucketName(service, stage, "artifacts"), {
        LifecycleConfiguration: {
          Rules: [expirePrefix("expire-emr-logs", "emr-logs/", DAY_LIMITS.emrLogs), abortIncompleteUploads()],
        },
      }),
    },
    ArtifactsBucketPolicy: tlsOnlyPolicy(ids.artifactsBucket, service, stage, "artifacts"),
    // S3 events ingest still failed on after its retries: kept 14 days for inspection and replay.
    [ids.ingestFailedEvents]: {
      Type: "AWS::SQS::Queue",
      Properties: { MessageRetentionPeriod: 14 * 86_400, SqsManagedSseEnabled: true },
    },
  };
}

module.exports = { storageResources, DAY_LIMITS };
