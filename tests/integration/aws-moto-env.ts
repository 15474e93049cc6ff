// Shared set-up of the AWS-emulator suites: makes sure moto runs on 127.0.0.1 (starting it with
// scripts/moto.sh when it does not, and stopping only what was started here), points the SDK at
// it through the standard AWS_ENDPOINT_URL_* variables and creates uniquely named buckets.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, PutBucketVersioningCommand, type S3Client } from "@aws-sdk/client-s3";
import type { Context } from "aws-lambda";
import { runLedgerTableDefinition } from "#commons/run-ledger-table.js";
import { lambdaContext as localLambdaContext } from "#local/lambda-context.js";

export const MOTO_URL = `http://127.0.0.1:${process.env.MOTO_PORT ?? "5055"}`;
const MOTO_SCRIPT = "scripts/moto.sh";

function motoRunning(): boolean {
  try {
    execFileSync("bash", [MOTO_SCRIPT, "status"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * The running server's command line names scripts/moto_server.py (S3 events with versionId, EMR's
 * step limit): a moto started by an older scripts/moto.sh would fail these suites in confusing ways.
 */
function motoIsOurs(): boolean {
  const localDir = process.env.FEATURE_STORE_LOCAL_DIR ?? ".local";
  try {
    const pid = readFileSync(`${localDir}/moto/moto.pid`, "utf8").trim();
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("moto_server.py");
  } catch {
    return false;
  }
}

/** Starts moto if needed; returns a function that stops it again only if this call started it. */
export function ensureMoto(): () => void {
  if (motoRunning()) {
    if (!motoIsOurs()) {
      throw new Error(
        `the moto at ${MOTO_URL} was not started through scripts/moto_server.py; restart it: scripts/moto.sh restart`,
      );
    }
    return () => {};
  }
  execFileSync("bash", [MOTO_SCRIPT, "start"], { stdio: "inherit", timeout: 120_000 });
  return () => execFileSync("bash", [MOTO_SCRIPT, "stop"], { stdio: "inherit" });
}

/** SDK clients created after this (including the handlers' module-scope ones) talk to moto. */
export function pointSdkAtMoto(): void {
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_S3: MOTO_URL,
    AWS_ENDPOINT_URL_EMR: MOTO_URL,
    AWS_ENDPOINT_URL_DYNAMODB: MOTO_URL,
    AWS_ENDPOINT_URL_SNS: MOTO_URL,
    AWS_ENDPOINT_URL_SQS: MOTO_URL,
    AWS_ENDPOINT_URL_EVENTBRIDGE: MOTO_URL,
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
    AWS_REGION: "eu-west-1",
    AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: "1",
    POWERTOOLS_LOG_LEVEL: "WARN",
  });
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}

export interface TestBuckets {
  readonly raw: string;
  readonly offline: string;
  readonly artifacts: string;
}

/** Three fresh buckets named for this run; raw is versioned, as in the stack. */
export async function createTestBuckets(s3: S3Client, label: string): Promise<TestBuckets> {
  const suffix = randomBytes(4).toString("hex");
  const buckets = {
    raw: `it-${label}-raw-${suffix}`,
    offline: `it-${label}-offline-${suffix}`,
    artifacts: `it-${label}-artifacts-${suffix}`,
  };
  for (const bucket of Object.values(buckets)) {
    await s3.send(
      new CreateBucketCommand({
        Bucket: bucket,
        CreateBucketConfiguration: { LocationConstraint: "eu-west-1" },
      }),
    );
  }
  await s3.send(
    new PutBucketVersioningCommand({ Bucket: buckets.raw, VersioningConfiguration: { Status: "Enabled" } }),
  );
  return buckets;
}

/** A fresh run-ledger table (the stack's definition) named for this test; after pointSdkAtMoto. */
export async function createRunLedgerTable(label: string): Promise<string> {
  const name = `it-${label}-runs-${randomBytes(4).toString("hex")}`;
  const dynamodb = new DynamoDBClient({});
  try {
    await dynamodb.send(new CreateTableCommand(runLedgerTableDefinition(name)));
  } finally {
    dynamodb.destroy();
  }
  return name;
}

/** A Lambda context for a handler invoked by a test, with a fresh request id. */
export function lambdaContext(functionName: string): Context {
  return localLambdaContext(functionName, randomBytes(8).toString("hex"));
}

/** An S3 ObjectCreated notification as S3 sends it: the key URL-encoded, spaces as "+". */
export function s3PutEvent(
  bucket: string,
  objects: ReadonlyArray<{ key: string; size: number; eTag?: string; versionId?: string }>,
) {
  const encode = (key: string) => encodeURIComponent(key).replace(/%2F/g, "/").replace(/%20/g, "+");
  return {
    Records: objects.map((o) => ({
      eventVersion: "2.1",
      eventSource: "aws:s3",
      awsRegion: "eu-west-1",
      eventTime: new Date().toISOString(),
      eventName: "ObjectCreated:Put",
      userIdentity: { principalId: "AWS:AIDAEXAMPLE" },
      requestParameters: { sourceIPAddress: "127.0.0.1" },
      responseElements: { "x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8" },
      s3: {
        s3SchemaVersion: "1.0",
        configurationId: "raw-csv",
        bucket: {
          name: bucket,
          ownerIdentity: { principalId: "A3NL1KOZZKExample" },
          arn: `arn:aws:s3:::${bucket}`,
        },
        object: {
          key: encode(o.key),
          size: o.size,
          eTag: (o.eTag ?? "").replaceAll('"', ""),
          ...(o.versionId ? { versionId: o.versionId } : {}),
          sequencer: "0055AED6DCD90281E5",
        },
      },
    })),
  };
}
