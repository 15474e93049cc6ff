// submit against the AWS wire emulator (moto) with no cluster configured: a backfill request
// starts a transient EMR 7 cluster whose one step runs the feature job, a training-set request one
// whose step runs the training-set job; bad requests start none.

import { Logger } from "@aws-lambda-powertools/logger";
import {
  AddJobFlowStepsCommand,
  DescribeClusterCommand,
  EMRClient,
  ListClustersCommand,
  ListStepsCommand,
  RunJobFlowCommand,
} from "@aws-sdk/client-emr";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConfigSchema } from "#commons/feature-job-config.js";
import { runDependencies } from "#commons/run-adapters.js";
import { readRun } from "#commons/run-ledger.js";
import type { RunLedgerStore } from "#commons/run-ledger-store.js";
import { createSubmitHandler } from "#functions/submit/submit-handler.js";
import type { JobStarted, TrainingSetStarted } from "#functions/submit/submit-job.js";
import {
  createRunLedgerTable,
  createTestBuckets,
  ensureMoto,
  lambdaContext,
  pointSdkAtMoto,
  type TestBuckets,
} from "./aws-moto-env.js";

let stopMoto = () => {};
let emr: EMRClient;
let buckets: TestBuckets;
let handler: (event: unknown, context: ReturnType<typeof lambdaContext>) => Promise<JobStarted>;
let ledger: RunLedgerStore;
let configFor: (table: string) => ReturnType<typeof runConfigSchema.parse>;

async function clusterIds(): Promise<string[]> {
  const response = await emr.send(new ListClustersCommand({}));
  return (response.Clusters ?? []).map((c) => c.Id ?? "");
}

beforeAll(async () => {
  stopMoto = ensureMoto();
  pointSdkAtMoto();
  emr = new EMRClient({});
  buckets = await createTestBuckets(new S3Client({}), "submit");
  configFor = (table) =>
    runConfigSchema.parse({
      RAW_BUCKET: buckets.raw,
      OFFLINE_BUCKET: buckets.offline,
      ARTIFACTS_BUCKET: buckets.artifacts,
      KEYSPACE: "feature_store",
      EMR_CLUSTER_ID: "",
      EMR_RELEASE_LABEL: "emr-7.10.0",
      EMR_SERVICE_ROLE: "it-emr-service",
      EMR_INSTANCE_PROFILE: "it-emr-instance",
      STACK_NAME: "feature-store-it",
      FEATURE_VIEWS_DIR: "resources/feature-views",
      RUN_LEDGER_TABLE: table,
    });
  const config = configFor(await createRunLedgerTable("submit"));
  const deps = runDependencies(config);
  ledger = deps.ledger;
  handler = createSubmitHandler(deps, new Logger({ logLevel: "WARN" }));
});

afterAll(() => stopMoto());

describe("submit on moto without a configured cluster", () => {
  it("starts a transient cluster running one feature-job step for a backfill", async () => {
    const inputs = [`s3://${buckets.raw}/raw/energy/2013.csv`, `s3://${buckets.raw}/raw/energy/2014.csv`];
    const started = await handler(
      { view: "energy", inputs, mode: "full", runId: "backfill-2013" },
      lambdaContext("feature-store-it-submit"),
    );
    expect(started).toMatchObject({ runId: "backfill-2013" });
    expect(await readRun(ledger, "energy", "backfill-2013")).toMatchObject({
      state: "running",
      mode: "full",
      transientCluster: true,
      clusterId: started.clusterId,
      inputs,
    });

    const cluster = await emr.send(new DescribeClusterCommand({ ClusterId: started.clusterId }));
    expect(cluster.Cluster).toMatchObject({
      Name: "feature-store-it energy backfill-2013",
      ReleaseLabel: "emr-7.10.0",
      ServiceRole: "it-emr-service",
      AutoTerminate: true,
      LogUri: `s3://${buckets.artifacts}/emr-logs/`,
    });
    expect(cluster.Cluster?.Applications?.map((a) => a.Name)).toContain("Spark");
    expect(cluster.Cluster?.Ec2InstanceAttributes?.IamInstanceProfile).toBe("it-emr-instance");

    const { Steps } = await emr.send(new ListStepsCommand({ ClusterId: started.clusterId }));
    expect(Steps).toHaveLength(1);
    expect(started.stepIds).toEqual([Steps?.[0]?.Id]);
    const args = Steps?.[0]?.Config?.Args ?? [];
    expect(Steps?.[0]?.Name).toBe("feature-job energy full backfill-2013");
    expect(args.slice(0, 3)).toEqual(["spark-submit", "--deploy-mode", "cluster"]);
    expect(args.filter((_, i) => args[i - 1] === "--input")).toEqual(inputs);
    expect(args[args.indexOf("--mode") + 1]).toBe("full");
  });

  it("starts a transient cluster running one training-set step with the job's arguments", async () => {
    const started = (await handler(
      {
        jobType: "training-set",
        name: "churn-v1",
        events: `s3://${buckets.raw}/labels/churn/2014-03.csv`,
        eventsFormat: "csv",
        entityColumn: "household_id",
        eventTimeColumn: "label_time",
        views: ["energy"],
        maxAgeDays: { energy: 30 },
        runId: "it-1",
      },
      lambdaContext("feature-store-it-submit"),
    )) as TrainingSetStarted;
    const runPrefix = `s3://${buckets.offline}/training-sets/churn-v1/it-1`;
    expect(started).toMatchObject({
      jobType: "training-set",
      runId: "it-1",
      transientCluster: true,
      outputUri: `${runPrefix}/data`,
      manifestUri: `${runPrefix}/manifest.json`,
    });
    const cluster = await emr.send(new DescribeClusterCommand({ ClusterId: started.clusterId }));
    expect(cluster.Cluster?.Name).toBe("feature-store-it training-set churn-v1 it-1");

    const { Steps } = await emr.send(new ListStepsCommand({ ClusterId: started.clusterId }));
    expect(Steps).toHaveLength(1);
    expect(started.stepIds).toEqual([Steps?.[0]?.Id]);
    expect(Steps?.[0]?.Name).toBe("training-set churn-v1 it-1");
    expect(Steps?.[0]?.Config?.Args).toEqual([
      "spark-submit",
      "--deploy-mode",
      "cluster",
      "--conf",
      "spark.pyspark.python=/usr/bin/python3.11",
      "--jars",
      `s3://${buckets.artifacts}/spark/jars/spark/*.jar`,
      "--py-files",
      `s3://${buckets.artifacts}/spark/feature_store.zip`,
      `s3://${buckets.artifacts}/spark/training_set_job.py`,
      "--events",
      `s3://${buckets.raw}/labels/churn/2014-03.csv`,
      "--events-format",
      "csv",
      "--entity-column",
      "household_id",
      "--event-time-column",
      "label_time",
      "--view",
      "energy",
      "--feature-view",
      `s3://${buckets.artifacts}/feature-views/energy.json`,
      "--offline-uri",
      `s3://${buckets.offline}/delta`,
      "--output",
      `${runPrefix}/data`,
      "--output-format",
      "parquet",
      "--manifest-uri",
      `${runPrefix}/manifest.json`,
      "--max-age-days",
      "energy=30",
    ]);
  });

  it("refuses a second backfill of the view while the first runs, without starting a cluster", async () => {
    const before = await clusterIds();
    await expect(
      handler(
        {
          view: "energy",
          inputs: [`s3://${buckets.raw}/raw/energy/2015.csv`],
          mode: "full",
          runId: "backfill-2015",
        },
        lambdaContext("feature-store-it-submit"),
      ),
    ).rejects.toThrow(/View energy has a run going \(backfill-2013/);
    expect(await clusterIds()).toEqual(before);
  });

  it("rejects an input outside raw/<view>/ of the raw bucket without starting a cluster", async () => {
    const before = await clusterIds();
    await expect(
      handler(
        { view: "energy", inputs: [`s3://${buckets.offline}/delta/energy/x.csv`], mode: "full" },
        lambdaContext("feature-store-it-submit"),
      ),
    ).rejects.toThrow(/not in the raw bucket/);
    expect(await clusterIds()).toEqual(before);
  });
});

// EMR refuses a step whose HadoopJarStep strings total more than 10,240 characters (AWS_CONTRACTS E10);
// the local moto does too (scripts/moto_server.py), so a step that would be refused on AWS is refused here.
describe("EMR's 10,240-character step limit on moto", () => {
  const stepOf = (characters: number) => ({
    Name: "limit",
    ActionOnFailure: "CONTINUE" as const,
    HadoopJarStep: {
      Jar: "command-runner.jar",
      Args: ["x".repeat(characters - "command-runner.jar".length)],
    },
  });

  it("is enforced by the local emulator, as by EMR: 10,240 characters pass, 10,241 are refused", async () => {
    const cluster = await emr.send(
      new RunJobFlowCommand({
        Name: "it-limit",
        ReleaseLabel: "emr-7.10.0",
        Instances: { MasterInstanceType: "m6g.xlarge", InstanceCount: 1, KeepJobFlowAliveWhenNoSteps: true },
        ServiceRole: "it-emr-service",
        JobFlowRole: "it-emr-instance",
      }),
    );
    const JobFlowId = cluster.JobFlowId ?? "";
    const added = await emr.send(new AddJobFlowStepsCommand({ JobFlowId, Steps: [stepOf(10_240)] }));
    expect(added.StepIds).toHaveLength(1);
    await expect(
      emr.send(new AddJobFlowStepsCommand({ JobFlowId, Steps: [stepOf(10_241)] })),
    ).rejects.toThrow(/cannot exceed a total of 10240 characters/);
  });

  it("starts a 500-file backfill: its step names an arguments manifest that lists every input", async () => {
    const deps = runDependencies(configFor(await createRunLedgerTable("submit-wide")));
    const wide = createSubmitHandler(deps, new Logger({ logLevel: "WARN" }));
    const inputs = Array.from(
      { length: 500 },
      (_, i) => `s3://${buckets.raw}/raw/energy/${String(i).padStart(4, "0")}-${"k".repeat(500)}.csv`,
    );
    const started = await wide(
      { view: "energy", inputs, mode: "full", runId: "backfill-500" },
      lambdaContext("feature-store-it-submit"),
    );
    const { Steps } = await emr.send(new ListStepsCommand({ ClusterId: started.clusterId }));
    const args = Steps?.[0]?.Config?.Args ?? [];
    const manifestUri = `s3://${buckets.offline}/runs/energy/backfill-500/arguments.json`;
    expect(args[args.indexOf("--arguments-manifest") + 1]).toBe(manifestUri);
    expect(args).not.toContain("--input");
    const manifest = await new S3Client({}).send(
      new GetObjectCommand({ Bucket: buckets.offline, Key: "runs/energy/backfill-500/arguments.json" }),
    );
    expect(JSON.parse((await manifest.Body?.transformToString()) ?? "{}")).toEqual({ inputs });
    // The ledger keeps the inputs themselves, so a retry writes its own manifest from them.
    expect(await readRun(deps.ledger, "energy", "backfill-500")).toMatchObject({ state: "running", inputs });
  });
});
