// The orchestration property test (tests/unit/orchestration-properties.test.ts) over the AWS wire
// emulator: the same seeded interleavings, but the run ledger is the DynamoDB adapter on moto
// (conditional writes enforced by the emulator, concurrent invocations really concurrent over
// HTTP) and the raw bucket is a versioned moto bucket, so staging copies the exact version
// through CopyObject ?versionId=. EMR stays simulated (tests/fixtures/orchestration-simulation.ts):
// moto's steps do not run, fail or lose events on demand.
// Replay one seed: ORCHESTRATION_SEED=<seed> npx vitest run tests/integration/aws-orchestration-properties.test.ts
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConfigSchema } from "#commons/feature-job-config.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { DynamoDbRunLedgerStore } from "#commons/run-ledger-store.js";
import { parseS3Uri } from "#commons/s3-object.js";
import {
  checkOrchestration,
  type SimulatedRawBucket,
  type SimulationSetup,
  simulateOrchestration,
} from "../fixtures/orchestration-simulation.js";
import {
  createRunLedgerTable,
  createTestBuckets,
  ensureMoto,
  pointSdkAtMoto,
  type TestBuckets,
} from "./aws-moto-env.js";

const views = loadFeatureViews("resources/feature-views");
let stopMoto = () => {};
let s3: S3Client;
let dynamodb: DynamoDBClient;
let buckets: TestBuckets;

beforeAll(async () => {
  stopMoto = ensureMoto();
  pointSdkAtMoto();
  s3 = new S3Client({});
  dynamodb = new DynamoDBClient({});
  buckets = await createTestBuckets(s3, "props");
});

afterAll(() => {
  s3?.destroy();
  dynamodb?.destroy();
  stopMoto();
});

function motoBucket(): SimulatedRawBucket {
  return {
    s3,
    put: async (key, body) => {
      const put = await s3.send(new PutObjectCommand({ Bucket: buckets.raw, Key: key, Body: body }));
      return {
        ...(put.VersionId ? { versionId: put.VersionId } : {}),
        ...(put.ETag ? { eTag: put.ETag } : {}),
        size: Buffer.byteLength(body),
      };
    },
    read: async (uri) => {
      const at = parseS3Uri(uri);
      if (!at) return "";
      const got = await s3.send(new GetObjectCommand({ Bucket: at.bucket, Key: at.key }));
      return (await got.Body?.transformToString("utf-8")) ?? "";
    },
  };
}

async function setupFor(seed: number): Promise<SimulationSetup> {
  const config = {
    ...runConfigSchema.parse({
      RAW_BUCKET: buckets.raw,
      OFFLINE_BUCKET: buckets.offline,
      ARTIFACTS_BUCKET: buckets.artifacts,
      KEYSPACE: "feature_store",
      EMR_CLUSTER_ID: "j-SIMULATED",
      RUN_LEDGER_TABLE: await createRunLedgerTable("props"),
      RUN_TIMEOUT_MINUTES: "30",
      MAX_FILES_PER_RUN: String([3, 5, 100][seed % 3]),
    }),
    RAW_MAX_BYTES: 1_000_000,
  };
  return {
    seed,
    ledger: new DynamoDbRunLedgerStore(config.RUN_LEDGER_TABLE, dynamodb),
    bucket: motoBucket(),
    config,
    views,
    view: "energy",
  };
}

const replay = process.env.ORCHESTRATION_SEED;
// Two unit seeds that found the take-over defect (over HTTP the interleaving differs; on the old
// code one of them still failed here) and one with a run failed for good, which under CPU load
// also caught moto taking two conditional writes on one absent item (docs/AWS_CONTRACTS.md G10).
const SEEDS = replay ? [Number(replay)] : [32677, 175219, 8920];

describe("run orchestration under random interleavings, DynamoDB ledger and S3 on moto", () => {
  it.each(SEEDS)("seed %i: every file ends visibly, one run at a time, inputs exact", async (seed) => {
    const setup = await setupFor(seed);
    const result = await simulateOrchestration(setup);
    const violations = await checkOrchestration(result, setup);
    expect(
      violations,
      `replay: ORCHESTRATION_SEED=${seed} npx vitest run tests/integration/aws-orchestration-properties.test.ts\n` +
        result.log.slice(-15).join("\n"),
    ).toEqual([]);
    expect(result.steps.length).toBeGreaterThan(0);
  });
});
