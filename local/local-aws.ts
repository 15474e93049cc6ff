// The AWS side of the local pipeline, on moto: the raw (versioned), offline and artifacts buckets,
// the raw bucket's ObjectCreated notification (raw/ … .csv) to an SQS queue, and a long-running
// EMR cluster whose id ingest gets as EMR_CLUSTER_ID, as with a configured cluster in AWS.
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EMRClient, RunJobFlowCommand } from "@aws-sdk/client-emr";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import {
  CreateBucketCommand,
  PutBucketNotificationConfigurationCommand,
  PutBucketVersioningCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { LOCAL_REGION, type LocalBuckets } from "./settings.js";

export interface LocalAwsClients {
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly emr: EMRClient;
  /** The run ledger's table. */
  readonly dynamodb: DynamoDBClient;
  /** The local EMR step events (local/run-events.ts). */
  readonly events: EventBridgeClient;
}

export interface LocalAws {
  readonly endpoint: string;
  readonly buckets: LocalBuckets;
  readonly queueUrl: string;
  readonly clusterId: string;
}

const DUMMY_CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" };

/**
 * Points every AWS SDK client created from now on in this process (including the handlers'
 * module-scope ones) at the emulator, with dummy credentials. Nothing can reach AWS.
 */
export function pointSdkAt(endpoint: string): void {
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: endpoint,
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_ENDPOINT_URL_SQS: endpoint,
    AWS_ENDPOINT_URL_EMR: endpoint,
    AWS_ACCESS_KEY_ID: DUMMY_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: DUMMY_CREDENTIALS.secretAccessKey,
    AWS_REGION: LOCAL_REGION,
    AWS_DEFAULT_REGION: LOCAL_REGION,
    AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: "1",
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  });
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}

export function localAwsClients(endpoint: string): LocalAwsClients {
  const common = { endpoint, region: LOCAL_REGION, credentials: DUMMY_CREDENTIALS };
  return {
    // Path-style: bucket names are not resolvable host names on 127.0.0.1.
    s3: new S3Client({ ...common, forcePathStyle: true }),
    sqs: new SQSClient(common),
    emr: new EMRClient(common),
    dynamodb: new DynamoDBClient(common),
    events: new EventBridgeClient(common),
  };
}

async function createBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(
      new CreateBucketCommand({
        Bucket: bucket,
        CreateBucketConfiguration: { LocationConstraint: LOCAL_REGION },
      }),
    );
  } catch (error) {
    if ((error as Error).name !== "BucketAlreadyOwnedByYou") throw error;
  }
}

export async function createLocalAws(
  endpoint: string,
  clients: LocalAwsClients,
  buckets: LocalBuckets,
  queueName: string,
): Promise<LocalAws> {
  for (const bucket of Object.values(buckets)) await createBucket(clients.s3, bucket);
  // Versioned like the stack's raw bucket: the event's version id is what ingest claims.
  await clients.s3.send(
    new PutBucketVersioningCommand({ Bucket: buckets.raw, VersioningConfiguration: { Status: "Enabled" } }),
  );
  const queue = await clients.sqs.send(
    new CreateQueueCommand({ QueueName: queueName, Attributes: { VisibilityTimeout: "120" } }),
  );
  const queueUrl = queue.QueueUrl ?? "";
  const attributes = await clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
  );
  const queueArn = attributes.Attributes?.QueueArn ?? "";
  // The same filter the stack puts on the raw bucket's Lambda notification (resources/storage.cjs).
  await clients.s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: buckets.raw,
      NotificationConfiguration: {
        QueueConfigurations: [
          {
            Id: "raw-csv-to-ingest",
            QueueArn: queueArn,
            Events: ["s3:ObjectCreated:*"],
            Filter: {
              Key: {
                FilterRules: [
                  { Name: "prefix", Value: "raw/" },
                  { Name: "suffix", Value: ".csv" },
                ],
              },
            },
          },
        ],
      },
    }),
  );
  const cluster = await clients.emr.send(
    new RunJobFlowCommand({
      Name: "feature-store-local",
      ReleaseLabel: "emr-7.10.0",
      Applications: [{ Name: "Spark" }],
      Instances: { MasterInstanceType: "m6g.xlarge", InstanceCount: 1, KeepJobFlowAliveWhenNoSteps: true },
      ServiceRole: "local-emr-service",
      JobFlowRole: "local-emr-instance",
    }),
  );
  const clusterId = cluster.JobFlowId;
  if (!clusterId) throw new Error("moto did not return a cluster id for RunJobFlow");
  return { endpoint, buckets, queueUrl, clusterId };
}
