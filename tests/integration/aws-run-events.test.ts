// The run orchestration against the AWS wire emulator (moto): the DynamoDB ledger's conditional
// writes are really enforced and atomic (concurrent lock takers, one winner), runEvents closes a
// run from a step event and ignores its duplicate, a failing step is retried then failed for good
// with an alert published to SNS and delivered to an SQS subscriber, and the local EventBridge
// route (rule with the stack's pattern → SQS) delivers a step event runEvents understands.
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EMRClient, ListStepsCommand, RunJobFlowCommand } from "@aws-sdk/client-emr";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateTopicCommand, SNSClient, SubscribeCommand } from "@aws-sdk/client-sns";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import type { S3Event } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunConfig, runConfigSchema } from "#commons/feature-job-config.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { runDependencies } from "#commons/run-adapters.js";
import { listFiles, readLock, readRun } from "#commons/run-ledger.js";
import { DynamoDbRunLedgerStore } from "#commons/run-ledger-store.js";
import { createIngestHandler } from "#functions/ingest/ingest-handler.js";
import type { IngestOutcome } from "#functions/ingest/ingest-raw-files.js";
import { runEventSchema } from "#functions/run-events/run-events.js";
import { createRunEventsHandler } from "#functions/run-events/run-events-handler.js";
import { createRunEventsRoute, publishStepStatus } from "#local/run-events.js";
import {
  createRunLedgerTable,
  createTestBuckets,
  ensureMoto,
  lambdaContext,
  pointSdkAtMoto,
  s3PutEvent,
  type TestBuckets,
} from "./aws-moto-env.js";

const HEADER = loadFeatureViews("resources/feature-views").get("energy")?.rawHeader.join(",") ?? "";
const GOOD_CSV = `${HEADER}\nMAC000002,2012-10-12,0.1385,0.154,0.886,46,0.196,7.098,0.0\n`;

let stopMoto = () => {};
let s3: S3Client;
let emr: EMRClient;
let sqs: SQSClient;
let dynamodb: DynamoDBClient;
let sns: SNSClient;
let events: EventBridgeClient;
let buckets: TestBuckets;
let clusterId: string;
const quiet = () => new Logger({ logLevel: "WARN" });

beforeAll(async () => {
  stopMoto = ensureMoto();
  pointSdkAtMoto();
  s3 = new S3Client({});
  emr = new EMRClient({});
  sqs = new SQSClient({});
  dynamodb = new DynamoDBClient({});
  sns = new SNSClient({});
  events = new EventBridgeClient({});
  buckets = await createTestBuckets(s3, "runs");
  const cluster = await emr.send(
    new RunJobFlowCommand({
      Name: "it-run-events",
      ReleaseLabel: "emr-7.10.0",
      Instances: { MasterInstanceType: "m6g.xlarge", InstanceCount: 1, KeepJobFlowAliveWhenNoSteps: true },
      ServiceRole: "it-emr-service",
      JobFlowRole: "it-emr-instance",
    }),
  );
  clusterId = cluster.JobFlowId ?? "";
});

afterAll(() => stopMoto());

async function config(): Promise<RunConfig> {
  return runConfigSchema.parse({
    RAW_BUCKET: buckets.raw,
    OFFLINE_BUCKET: buckets.offline,
    ARTIFACTS_BUCKET: buckets.artifacts,
    KEYSPACE: "feature_store",
    EMR_CLUSTER_ID: clusterId,
    RUN_LEDGER_TABLE: await createRunLedgerTable("runs"),
    MAX_RUN_ATTEMPTS: "2",
  });
}

async function queueArn(name: string): Promise<{ url: string; arn: string }> {
  const queue = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  const attributes = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ["QueueArn"] }),
  );
  return { url: queue.QueueUrl ?? "", arn: attributes.Attributes?.QueueArn ?? "" };
}

async function receive(url: string, waitSeconds = 2) {
  const response = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds }),
  );
  return response.Messages ?? [];
}

function stepEvent(name: string, stepId: string, state: string) {
  return {
    source: "aws.emr",
    "detail-type": "EMR Step Status Change",
    detail: { name, stepId, clusterId, state, message: `step ${state}` },
  };
}

describe("the DynamoDB run ledger on moto", () => {
  it("enforces conditions: one of ten concurrent lock takers wins, a stale expectation loses", async () => {
    const ledger = new DynamoDbRunLedgerStore((await config()).RUN_LEDGER_TABLE, dynamodb);
    const takers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        ledger.update(
          "VIEW#energy",
          "LOCK",
          { state: "starting", runId: `r${i}` },
          { ifAbsent: true, equals: { state: "idle" } },
        ),
      ),
    );
    expect(takers.filter(Boolean)).toHaveLength(1);
    const winner = String((await ledger.get("VIEW#energy", "LOCK"))?.runId);
    expect(
      await ledger.update("VIEW#energy", "LOCK", { state: "idle" }, { equals: { runId: "nobody" } }),
    ).toBe(false);
    expect(
      await ledger.update(
        "VIEW#energy",
        "LOCK",
        { state: "idle", runId: undefined },
        { equals: { runId: winner } },
      ),
    ).toBe(true);
    expect(await ledger.get("VIEW#energy", "LOCK")).toEqual({ pk: "VIEW#energy", sk: "LOCK", state: "idle" });
    expect(
      await ledger.put(
        { pk: "VIEW#energy", sk: "FILE#a", n: 1, l: [1, "x", null], m: { b: true } },
        { ifAbsent: true },
      ),
    ).toBe(true);
    expect(await ledger.put({ pk: "VIEW#energy", sk: "FILE#a", n: 2 }, { ifAbsent: true })).toBe(false);
    expect(await ledger.query("VIEW#energy", "FILE#")).toEqual([
      { pk: "VIEW#energy", sk: "FILE#a", n: 1, l: [1, "x", null], m: { b: true } },
    ]);
  });
});

describe("the emulator's conditional writes are atomic, as DynamoDB's are (AWS_CONTRACTS D5)", () => {
  // The run-lock race seed 8920 of aws-orchestration-properties.test.ts hit under load: moto read
  // the item, checked the condition and wrote in separate steps, so two concurrent takers of an
  // absent lock could both win. A wider write (the lock carries 12 attributes here) keeps moto
  // busy between its read and its write: on moto without scripts/moto_server.py's lock about a
  // third of the rounds had two or three winners; DynamoDB gives exactly one every time.
  const ROUNDS = 30;
  const TAKERS = 8;
  const wide = (taker: number) =>
    Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`field${i}`, `taker ${taker}, field ${i}`]));
  /** Every taker at once tries the run lock's "absent or idle → starting" write; true for a winner. */
  const takeAtOnce = (ledger: DynamoDbRunLedgerStore, view: string) =>
    Promise.all(
      Array.from({ length: TAKERS }, (_, taker) =>
        ledger.update(
          view,
          "LOCK",
          { state: "starting", runId: `r${taker}`, ...wide(taker) },
          { ifAbsent: true, equals: { state: "idle" } },
        ),
      ),
    );

  it(`of ${TAKERS} concurrent takers of an absent lock, exactly one wins (${ROUNDS} rounds)`, async () => {
    const ledger = new DynamoDbRunLedgerStore((await config()).RUN_LEDGER_TABLE, dynamodb);
    const winners: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const view = `VIEW#v${round}`;
      const won = await takeAtOnce(ledger, view);
      winners.push(won.filter(Boolean).length);
      // The item is the winner's whole write, not a mix of two takers'.
      const lock = await ledger.get(view, "LOCK");
      const taker = Number(String(lock?.runId).slice(1));
      expect(lock).toEqual({ pk: view, sk: "LOCK", state: "starting", runId: `r${taker}`, ...wide(taker) });
      expect(won[taker]).toBe(true);
    }
    expect(winners).toEqual(Array.from({ length: ROUNDS }, () => 1));
  });

  it(`of ${TAKERS} concurrent takers of an idle lock, exactly one wins; of puts if absent, one (${ROUNDS} rounds)`, async () => {
    const ledger = new DynamoDbRunLedgerStore((await config()).RUN_LEDGER_TABLE, dynamodb);
    const lockWinners: number[] = [];
    const putWinners: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const view = `VIEW#v${round}`;
      await ledger.put({ pk: view, sk: "LOCK", state: "idle" });
      const [locks, puts] = await Promise.all([
        takeAtOnce(ledger, view),
        Promise.all(
          Array.from({ length: TAKERS }, (_, taker) =>
            ledger.put({ pk: view, sk: "RUN#r", runId: `r${taker}`, ...wide(taker) }, { ifAbsent: true }),
          ),
        ),
      ]);
      lockWinners.push(locks.filter(Boolean).length);
      putWinners.push(puts.filter(Boolean).length);
    }
    expect({ lockWinners, putWinners }).toEqual({
      lockWinners: Array.from({ length: ROUNDS }, () => 1),
      putWinners: Array.from({ length: ROUNDS }, () => 1),
    });
  });
});

describe("runEvents on moto", () => {
  it("closes a run from its COMPLETED step event once, and starts the file queued meanwhile", async () => {
    const settings = await config();
    const deps = { ...runDependencies(settings), config: { ...settings, RAW_MAX_BYTES: 1_000_000 } };
    const ingest = createIngestHandler(deps, quiet());
    const runEvents = createRunEventsHandler(deps, quiet());
    const put = async (key: string) => {
      const response = await s3.send(new PutObjectCommand({ Bucket: buckets.raw, Key: key, Body: GOOD_CSV }));
      const event = s3PutEvent(buckets.raw, [
        { key, size: GOOD_CSV.length, eTag: response.ETag, versionId: response.VersionId },
      ]) as S3Event;
      return (await ingest(event, lambdaContext("it-ingest")))[0] as Extract<
        IngestOutcome,
        { outcome: "queued" }
      >;
    };
    const first = await put("raw/energy/close-1.csv");
    const second = await put("raw/energy/close-2.csv");
    if (first.run.status !== "started") throw new Error("first file did not start a run");
    const firstRun = first.run;
    expect(second.run).toMatchObject({ status: "busy", runId: first.run.runId });
    await s3.send(
      new PutObjectCommand({
        Bucket: buckets.offline,
        Key: `runs/energy/${first.run.runId}/summary.json`,
        Body: JSON.stringify({
          status: "succeeded",
          rejected_rows: 0,
          offline: { delta_version: 3, last_date: "2012-10-12" },
        }),
      }),
    );
    const name = `feature-job energy incremental ${first.run.runId}`;
    const closed = await runEvents(
      stepEvent(name, first.run.stepId, "COMPLETED"),
      lambdaContext("it-run-events"),
    );
    expect(closed).toMatchObject({ status: "succeeded", next: { status: "started" } });
    expect(
      await runEvents(stepEvent(name, first.run.stepId, "COMPLETED"), lambdaContext("it-run-events")),
    ).toMatchObject({
      status: "ignored",
    });
    const files = await listFiles(deps.ledger, "energy");
    expect(files.find((f) => f.key === "raw/energy/close-1.csv")).toMatchObject({
      state: "succeeded",
      deltaVersion: 3,
    });
    expect(files.find((f) => f.key === "raw/energy/close-2.csv")).toMatchObject({ state: "running" });
    const steps = (await emr.send(new ListStepsCommand({ ClusterId: clusterId }))).Steps ?? [];
    expect(steps.filter((s) => s.Name?.includes(firstRun.runId))).toHaveLength(1);
  });

  it("retries a failing step, then fails its file and publishes one alert to the SNS topic", async () => {
    const settings = await config();
    const subscriber = await queueArn(`it-alerts-${Date.now()}`);
    const topic = await sns.send(new CreateTopicCommand({ Name: `it-alerts-${Date.now()}` }));
    const topicArn = topic.TopicArn ?? "";
    await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: "sqs", Endpoint: subscriber.arn }));
    const metrics = new Metrics({ namespace: "FeatureStore", serviceName: "it" });
    const deps = {
      ...runDependencies(settings, { alertsTopicArn: topicArn, metrics }),
      config: { ...settings, RAW_MAX_BYTES: 1_000_000 },
    };
    const ingest = createIngestHandler(deps, quiet());
    const runEvents = createRunEventsHandler(deps, quiet());
    const key = "raw/energy/doomed.csv";
    const response = await s3.send(new PutObjectCommand({ Bucket: buckets.raw, Key: key, Body: GOOD_CSV }));
    const [outcome] = await ingest(
      s3PutEvent(buckets.raw, [
        { key, size: GOOD_CSV.length, eTag: response.ETag, versionId: response.VersionId },
      ]) as S3Event,
      lambdaContext("it-ingest"),
    );
    const run = (outcome as Extract<IngestOutcome, { outcome: "queued" }>).run;
    if (run.status !== "started") throw new Error("not started");

    const fail = (runId: string, stepId: string) =>
      runEvents(
        stepEvent(`feature-job energy incremental ${runId}`, stepId, "FAILED"),
        lambdaContext("it-run-events"),
      );
    const retried = await fail(run.runId, run.stepId);
    expect(retried).toMatchObject({
      status: "retried",
      next: { status: "started", runId: `${run.runId}-a2` },
    });
    const retry = (retried as { next: { runId: string; stepId: string } }).next;
    expect(await fail(retry.runId, retry.stepId)).toMatchObject({ status: "failed" });
    expect(await fail(retry.runId, retry.stepId)).toMatchObject({ status: "ignored" });

    expect((await listFiles(deps.ledger, "energy"))[0]).toMatchObject({
      state: "failed",
      runId: retry.runId,
    });
    expect(await readRun(deps.ledger, "energy", retry.runId)).toMatchObject({
      state: "failed",
      alertedAt: expect.any(String),
    });
    expect(await readLock(deps.ledger, "energy")).toMatchObject({ state: "idle" });
    const delivered = await receive(subscriber.url);
    expect(delivered).toHaveLength(1);
    const envelope = JSON.parse(delivered[0]?.Body ?? "{}") as { Subject?: string; Message?: string };
    expect(envelope.Subject).toBe(`feature-store: run ${run.runId} of view energy failed`);
    expect(envelope.Message).toContain("failed 2 time(s)");
    expect(await receive(subscriber.url, 1)).toHaveLength(0);
  });
});

describe("the local EventBridge route", () => {
  it("delivers a published step event through the rule to SQS, in the shape runEvents parses", async () => {
    const url = await createRunEventsRoute(events, sqs, `it-run-events-${Date.now()}`);
    await publishStepStatus(events, {
      name: "feature-job energy incremental r-1",
      stepId: "s-1",
      clusterId,
      state: "COMPLETED",
    });
    const [message] = await receive(url, 5);
    const event = runEventSchema.parse(JSON.parse(message?.Body ?? "null"));
    expect(event).toMatchObject({
      "detail-type": "EMR Step Status Change",
      detail: { name: "feature-job energy incremental r-1", stepId: "s-1", clusterId, state: "COMPLETED" },
    });
  });
});
