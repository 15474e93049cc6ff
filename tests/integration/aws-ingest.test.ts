// ingest against the AWS wire emulator (moto): the real S3 event shape reaches the handler, the
// checked version is staged and the step reads the staged copy with the contract's arguments, the
// DynamoDB run ledger (conditional writes enforced by moto) lets redelivered and concurrent events
// start one step per view and batch the rest, and a bad file ends in quarantine beside its report.

import { Logger } from "@aws-lambda-powertools/logger";
import { DescribeStepCommand, EMRClient, ListStepsCommand, RunJobFlowCommand } from "@aws-sdk/client-emr";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type { S3Event } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runConfigSchema } from "#commons/feature-job-config.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { runDependencies } from "#commons/run-adapters.js";
import { type FileItem, fileIdOf, listFiles, readLock } from "#commons/run-ledger.js";
import type { RunLedgerStore } from "#commons/run-ledger-store.js";
import { createIngestHandler } from "#functions/ingest/ingest-handler.js";
import type { IngestOutcome } from "#functions/ingest/ingest-raw-files.js";
import {
  createRunLedgerTable,
  createTestBuckets,
  ensureMoto,
  lambdaContext,
  pointSdkAtMoto,
  s3PutEvent,
  type TestBuckets,
} from "./aws-moto-env.js";

const energy = loadFeatureViews("resources/feature-views").get("energy");
const HEADER = energy?.rawHeader.join(",") ?? "";
const GOOD_CSV = `${HEADER}\nMAC000002,2012-10-12,0.1385,0.154,0.886,46,0.196,7.098,0.0\n`;

let stopMoto = () => {};
let s3: S3Client;
let emr: EMRClient;
let buckets: TestBuckets;
let clusterId: string;
let handler: (event: S3Event, context: ReturnType<typeof lambdaContext>) => Promise<IngestOutcome[]>;
let ledger: RunLedgerStore;

async function putRaw(key: string, body: string) {
  const put = await s3.send(new PutObjectCommand({ Bucket: buckets.raw, Key: key, Body: body }));
  return { key, size: Buffer.byteLength(body), eTag: put.ETag, versionId: put.VersionId };
}

async function ingest(objects: Awaited<ReturnType<typeof putRaw>>[]): Promise<IngestOutcome[]> {
  return handler(s3PutEvent(buckets.raw, objects) as S3Event, lambdaContext("feature-store-it-ingest"));
}

async function steps() {
  const response = await emr.send(new ListStepsCommand({ ClusterId: clusterId }));
  return response.Steps ?? [];
}

async function text(bucket: string, key: string): Promise<string> {
  const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await response.Body?.transformToString()) ?? "";
}

beforeAll(async () => {
  stopMoto = ensureMoto();
  pointSdkAtMoto();
  s3 = new S3Client({});
  emr = new EMRClient({});
  buckets = await createTestBuckets(s3, "ingest");
  const cluster = await emr.send(
    new RunJobFlowCommand({
      Name: "it-feature-cluster",
      ReleaseLabel: "emr-7.10.0",
      Applications: [{ Name: "Spark" }],
      Instances: { MasterInstanceType: "m6g.xlarge", InstanceCount: 1, KeepJobFlowAliveWhenNoSteps: true },
      ServiceRole: "it-emr-service",
      JobFlowRole: "it-emr-instance",
    }),
  );
  clusterId = cluster.JobFlowId ?? "";
});

// Each test gets its own ledger table: a fresh view lock and no queued files from another test.
beforeEach(async () => {
  const config = {
    ...runConfigSchema.parse({
      RAW_BUCKET: buckets.raw,
      OFFLINE_BUCKET: buckets.offline,
      ARTIFACTS_BUCKET: buckets.artifacts,
      KEYSPACE: "feature_store",
      EMR_CLUSTER_ID: clusterId,
      FEATURE_VIEWS_DIR: "resources/feature-views",
      RUN_LEDGER_TABLE: await createRunLedgerTable("ingest"),
    }),
    RAW_MAX_BYTES: 1_000_000,
  };
  const deps = { ...runDependencies(config), config };
  ledger = deps.ledger;
  handler = createIngestHandler(deps, new Logger({ logLevel: "WARN" }));
});

afterAll(() => stopMoto());

describe("ingest on moto", () => {
  it("stages the checked version and adds one EMR step reading the staged copy, with the contract's arguments", async () => {
    const file = await putRaw("raw/energy/2014 02+week 1.csv", GOOD_CSV);
    // A later upload to the same key must not change what the run reads.
    await putRaw("raw/energy/2014 02+week 1.csv", `${HEADER}\n`);
    const [outcome] = await ingest([file]);
    expect(outcome).toMatchObject({
      outcome: "queued",
      key: file.key,
      run: { status: "started", clusterId },
    });
    const run = (outcome as Extract<IngestOutcome, { outcome: "queued" }>).run;
    if (run.status !== "started") throw new Error("not started");

    const step = await emr.send(new DescribeStepCommand({ ClusterId: clusterId, StepId: run.stepId }));
    expect(step.Step?.Name).toBe(`feature-job energy incremental ${run.runId}`);
    expect(step.Step?.Config?.Jar).toBe("command-runner.jar");
    expect(step.Step?.ActionOnFailure).toBe("CONTINUE");
    const a = buckets.artifacts;
    const o = buckets.offline;
    const fileId = fileIdOf({ bucket: buckets.raw, key: file.key, versionId: file.versionId });
    const stagedKey = `staging/energy/${fileId}.csv`;
    expect(step.Step?.Config?.Args).toEqual([
      "spark-submit",
      "--deploy-mode",
      "cluster",
      "--conf",
      "spark.pyspark.python=/usr/bin/python3.11",
      "--jars",
      `s3://${a}/spark/jars/spark/*.jar,s3://${a}/spark/jars/emr/*.jar`,
      "--files",
      `s3://${a}/spark/keyspaces-application.conf`,
      "--py-files",
      `s3://${a}/spark/feature_store.zip`,
      "--conf",
      "spark.cassandra.connection.config.profile.path=keyspaces-application.conf",
      `s3://${a}/spark/feature_job.py`,
      "--view",
      "energy",
      "--input",
      `s3://${buckets.raw}/${stagedKey}`,
      "--mode",
      "incremental",
      "--feature-view",
      `s3://${a}/feature-views/energy.json`,
      "--offline-uri",
      `s3://${o}/delta`,
      "--rejects-uri",
      `s3://${o}/rejects/energy/${run.runId}`,
      "--summary-uri",
      `s3://${o}/runs/energy/${run.runId}/summary.json`,
      "--run-id",
      run.runId,
      "--keyspace",
      "feature_store",
      "--cassandra-profile",
      "keyspaces-application.conf",
      "--timeout-minutes",
      "120",
    ]);
    expect(await text(buckets.raw, stagedKey)).toBe(GOOD_CSV);
    const [item] = await listFiles(ledger, "energy");
    expect(item).toMatchObject({
      state: "running",
      runId: run.runId,
      versionId: file.versionId,
      key: file.key,
    });
    expect(await readLock(ledger, "energy")).toMatchObject({
      state: "running",
      runId: run.runId,
      stepId: run.stepId,
    });
  });

  it("starts nothing more when the same event is delivered again, also twice at once", async () => {
    const file = await putRaw("raw/energy/redelivered.csv", GOOD_CSV);
    const before = (await steps()).length;
    const [first] = await ingest([file]);
    const [second] = await ingest([file]);
    const third = await ingest([file, file]);
    expect(first?.outcome).toBe("queued");
    expect(second).toMatchObject({ outcome: "already-recorded", state: "running" });
    expect(third.map((x) => x.outcome)).toEqual(["already-recorded", "already-recorded"]);
    expect((await steps()).length).toBe(before + 1);
    expect(await listFiles(ledger, "energy")).toHaveLength(1);
  });

  it("8 concurrent ingests start exactly one step; the other files wait queued for the next run", async () => {
    const files = await Promise.all(
      Array.from({ length: 8 }, (_, i) => putRaw(`raw/energy/burst-${i}.csv`, GOOD_CSV)),
    );
    const before = (await steps()).length;
    // Eight invocations at once, as Lambda runs eight notifications concurrently.
    const outcomes = (await Promise.all(files.map((f) => ingest([f])))).flat();
    expect(outcomes.every((o) => o.outcome === "queued")).toBe(true);
    const started = outcomes.filter((o) => o.outcome === "queued" && o.run.status === "started");
    expect(started).toHaveLength(1);
    expect((await steps()).length).toBe(before + 1);
    const items = await listFiles(ledger, "energy");
    const byState = (state: FileItem["state"]) => items.filter((f) => f.state === state).length;
    expect(items).toHaveLength(8);
    expect(byState("running") + byState("queued")).toBe(8);
    expect(byState("running")).toBeGreaterThanOrEqual(1);
    const [latest] = await steps();
    const inputs = (latest?.Config?.Args ?? []).filter((_, i, args) => args[i - 1] === "--input");
    expect(inputs.sort()).toEqual(
      items
        .filter((f) => f.state === "running")
        .map((f) => f.stagedUri)
        .sort(),
    );
  });

  it("records a new version of the same key as a new file", async () => {
    const v1 = await putRaw("raw/energy/rewritten.csv", GOOD_CSV);
    const v2 = await putRaw("raw/energy/rewritten.csv", `${GOOD_CSV}MAC000003,2012-10-12,1,1,1,1,1,1,1\n`);
    expect(v1.versionId).not.toBe(v2.versionId);
    const outcomes = [...(await ingest([v1])), ...(await ingest([v2]))];
    expect(outcomes.map((x) => x.outcome)).toEqual(["queued", "queued"]);
    const items = await listFiles(ledger, "energy");
    expect(items.map((f) => f.versionId).sort()).toEqual([v1.versionId, v2.versionId].sort());
  });

  it("copies a bad file to quarantine/ with a report beside it, leaves the original, starts nothing", async () => {
    const badCsv = `${HEADER.replace(",energy_min", "")},tariff\nMAC000002,2012-10-12,1,1,1,1,1,1,Std\n`;
    const file = await putRaw("raw/energy/bad é+1.csv", badCsv);
    const before = (await steps()).length;
    const [outcome] = await ingest([file]);
    expect(outcome).toMatchObject({
      outcome: "quarantined",
      quarantineKey: "quarantine/energy/bad é+1.csv",
      reportKey: "quarantine/energy/bad é+1.csv.report.json",
    });
    expect(await text(buckets.raw, "quarantine/energy/bad é+1.csv")).toBe(badCsv);
    expect(await text(buckets.raw, file.key)).toBe(badCsv);
    const report = JSON.parse(await text(buckets.raw, "quarantine/energy/bad é+1.csv.report.json"));
    expect(report.problems.map((p: { code: string }) => p.code)).toEqual([
      "missing_columns",
      "extra_columns",
    ]);
    expect(report.problems[0].columns).toEqual(["energy_min"]);
    expect(report.problems[1].columns).toEqual(["tariff"]);
    expect(report.expectedHeader).toEqual(energy?.rawHeader);
    expect(report.versionId).toBe(file.versionId);
    expect((await steps()).length).toBe(before);
    expect(await listFiles(ledger, "energy")).toEqual([
      expect.objectContaining({
        state: "quarantined",
        key: file.key,
        reportKey: outcome && "reportKey" in outcome ? outcome.reportKey : "",
      }),
    ]);
  });

  it("quarantines an empty file and a file of an unknown view", async () => {
    const empty = await putRaw("raw/energy/empty.csv", "");
    const unknown = await putRaw("raw/weather/2014.csv", GOOD_CSV);
    const outcomes = await ingest([empty, unknown]);
    expect(outcomes.map((x) => (x.outcome === "quarantined" ? x.problems[0]?.code : x.outcome))).toEqual([
      "empty",
      "unknown_view",
    ]);
    expect(await text(buckets.raw, "quarantine/weather/2014.csv")).toBe(GOOD_CSV);
    const report = JSON.parse(await text(buckets.raw, "quarantine/energy/empty.csv.report.json"));
    expect(report.problems[0].code).toBe("empty");
  });
});
