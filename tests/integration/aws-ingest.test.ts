// ingest against the AWS wire emulator (moto): the real S3 event shape reaches the handler, the
// step is recorded on an EMR cluster with the contract's arguments, redelivery starts nothing,
// two files start two steps, and a bad file ends in quarantine beside its report.
import { DescribeStepCommand, EMRClient, ListStepsCommand, RunJobFlowCommand } from "@aws-sdk/client-emr";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type { S3Event } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFeatureViews } from "../../functions/commons/feature-view.js";
import type { IngestOutcome } from "../../functions/ingest/ingest-raw-files.js";
import {
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
  Object.assign(process.env, {
    RAW_BUCKET: buckets.raw,
    OFFLINE_BUCKET: buckets.offline,
    ARTIFACTS_BUCKET: buckets.artifacts,
    KEYSPACE: "feature_store",
    EMR_CLUSTER_ID: clusterId,
    FEATURE_VIEWS_DIR: "resources/feature-views",
    RAW_MAX_BYTES: "1000000",
  });
  // The handler reads its configuration and creates its clients when first imported.
  ({ handler } = await import("../../functions/ingest/handler.js"));
});

afterAll(() => stopMoto());

describe("ingest on moto", () => {
  it("records one EMR step with the contract's arguments for a new raw file with an encoded key", async () => {
    const file = await putRaw("raw/energy/2014 02+week 1.csv", GOOD_CSV);
    const [outcome] = await ingest([file]);
    expect(outcome).toMatchObject({ outcome: "started", key: file.key, clusterId });
    const started = outcome as Extract<IngestOutcome, { outcome: "started" }>;
    expect(started.stepIds).toHaveLength(1);

    const step = await emr.send(
      new DescribeStepCommand({ ClusterId: clusterId, StepId: started.stepIds[0] }),
    );
    expect(step.Step?.Name).toBe(`feature-job energy incremental ${started.runId}`);
    expect(step.Step?.Config?.Jar).toBe("command-runner.jar");
    expect(step.Step?.ActionOnFailure).toBe("CONTINUE");
    const a = buckets.artifacts;
    const o = buckets.offline;
    expect(step.Step?.Config?.Args).toEqual([
      "spark-submit",
      "--deploy-mode",
      "cluster",
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
      `s3://${buckets.raw}/raw/energy/2014 02+week 1.csv`,
      "--mode",
      "incremental",
      "--feature-view",
      `s3://${a}/feature-views/energy.json`,
      "--offline-uri",
      `s3://${o}/delta`,
      "--rejects-uri",
      `s3://${o}/rejects/energy/${started.runId}`,
      "--summary-uri",
      `s3://${o}/runs/energy/${started.runId}/summary.json`,
      "--run-id",
      started.runId,
      "--keyspace",
      "feature_store",
      "--cassandra-profile",
      "keyspaces-application.conf",
    ]);

    const claims = await s3.send(new ListObjectsV2Command({ Bucket: a, Prefix: "ingest-claims/energy/" }));
    expect(claims.Contents).toHaveLength(1);
    const claim = JSON.parse(await text(a, claims.Contents?.[0]?.Key ?? ""));
    expect(claim).toMatchObject({ state: "started", runId: started.runId, stepIds: started.stepIds });
  });

  it("starts nothing more when the same event is delivered again", async () => {
    const file = await putRaw("raw/energy/redelivered.csv", GOOD_CSV);
    const before = (await steps()).length;
    const [first] = await ingest([file]);
    const [second] = await ingest([file]);
    // Both deliveries in one event (at-least-once can also mean "twice, concurrently").
    const third = await ingest([file, file]);
    expect(first?.outcome).toBe("started");
    expect(second?.outcome).toBe("duplicate");
    expect(third.map((x) => x.outcome).sort()).toEqual(["duplicate", "duplicate"]);
    expect((await steps()).length).toBe(before + 1);
  });

  it("starts one step per file when two files arrive in one event", async () => {
    const a = await putRaw("raw/energy/part-a.csv", GOOD_CSV);
    const b = await putRaw("raw/energy/part-b.csv", GOOD_CSV);
    const before = (await steps()).length;
    const outcomes = await ingest([a, b]);
    expect(outcomes.map((x) => x.outcome)).toEqual(["started", "started"]);
    const all = await steps();
    expect(all.length).toBe(before + 2);
    const inputs = all
      .slice(0, 2)
      .map((s) => s.Config?.Args?.[s.Config.Args.indexOf("--input") + 1])
      .sort();
    expect(inputs).toEqual([
      `s3://${buckets.raw}/raw/energy/part-a.csv`,
      `s3://${buckets.raw}/raw/energy/part-b.csv`,
    ]);
  });

  it("starts a new step for a new version of the same key", async () => {
    const v1 = await putRaw("raw/energy/rewritten.csv", GOOD_CSV);
    const v2 = await putRaw("raw/energy/rewritten.csv", `${GOOD_CSV}MAC000003,2012-10-12,1,1,1,1,1,1,1\n`);
    expect(v1.versionId).not.toBe(v2.versionId);
    const before = (await steps()).length;
    const outcomes = [...(await ingest([v1])), ...(await ingest([v2]))];
    expect(outcomes.map((x) => x.outcome)).toEqual(["started", "started"]);
    expect((await steps()).length).toBe(before + 2);
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
