// Protects the submit path: the exact EMR requests (step arguments, transient cluster) and the
// validation that keeps a backfill from reading outside raw/<view>/ of the raw bucket.
import "aws-sdk-client-mock-vitest/extend";
import { AddJobFlowStepsCommand, EMRClient, ListStepsCommand, RunJobFlowCommand } from "@aws-sdk/client-emr";
import { S3Client } from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { InvalidRequestError } from "#commons/errors.js";
import { type FeatureJobConfig, readFeatureJobConfig } from "#commons/feature-job-config.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { newRunId } from "#commons/identifiers.js";
import { s3JobLocations } from "#commons/jobs/artifacts.js";
import { sparkSubmitArgs } from "#commons/jobs/feature-job-step.js";
import { startFeatureJob } from "#commons/jobs/start-step.js";
import { TEST_JOB_ENV } from "../fixtures/run-dependencies.js";

const views = loadFeatureViews("resources/feature-views");
const emrMock = mockClient(EMRClient);
const emr = new EMRClient({ region: "eu-west-1" });
// Never called here: these runs list their inputs (tests/unit/feature-job-step-limit.test.ts has the manifest).
const s3 = new S3Client({ region: "eu-west-1" });

const baseEnv = TEST_JOB_ENV;
const clusterConfig: FeatureJobConfig = readFeatureJobConfig({
  ...baseEnv,
  EMR_CLUSTER_ID: "j-2AXXXXXXGAPLF",
});
const transientConfig: FeatureJobConfig = readFeatureJobConfig({ ...baseEnv, EMR_CLUSTER_ID: "" });

const EXPECTED_ARGS = [
  "spark-submit",
  "--deploy-mode",
  "cluster",
  "--conf",
  "spark.pyspark.python=/usr/bin/python3.11",
  "--jars",
  "s3://fs-artifacts/spark/jars/spark/*.jar,s3://fs-artifacts/spark/jars/emr/*.jar",
  "--files",
  "s3://fs-artifacts/spark/keyspaces-application.conf",
  "--py-files",
  "s3://fs-artifacts/spark/feature_store.zip",
  "--conf",
  "spark.cassandra.connection.config.profile.path=keyspaces-application.conf",
  "s3://fs-artifacts/spark/feature_job.py",
  "--view",
  "energy",
  "--input",
  "s3://fs-raw/raw/energy/2014-01.csv",
  "--input",
  "s3://fs-raw/raw/energy/2014-02.csv",
  "--mode",
  "full",
  "--feature-view",
  "s3://fs-artifacts/feature-views/energy.json",
  "--offline-uri",
  "s3://fs-offline/delta",
  "--rejects-uri",
  "s3://fs-offline/rejects/energy/run-1",
  "--summary-uri",
  "s3://fs-offline/runs/energy/run-1/summary.json",
  "--run-id",
  "run-1",
  "--keyspace",
  "feature_store",
  "--cassandra-profile",
  "keyspaces-application.conf",
];

/** `count` distinct raw inputs of `total` UTF-8 bytes together (the first one takes the remainder). */
function inputsOfBytes(count: number, total: number): string[] {
  const each = Math.floor(total / count);
  const name = (i: number, length: number) => {
    const stem = `s3://fs-raw/raw/energy/${String(i).padStart(4, "0")}-`;
    return `${stem}${"k".repeat(length - stem.length - ".csv".length)}.csv`;
  };
  return Array.from({ length: count }, (_, i) => name(i, i === 0 ? total - each * (count - 1) : each));
}

const request = {
  view: "energy",
  inputs: ["s3://fs-raw/raw/energy/2014-01.csv", "s3://fs-raw/raw/energy/2014-02.csv"],
  mode: "full",
  runId: "run-1",
};

beforeEach(() => {
  emrMock.reset();
  emrMock.on(AddJobFlowStepsCommand).resolves({ StepIds: ["s-1"] });
  emrMock.on(RunJobFlowCommand).resolves({ JobFlowId: "j-NEW" });
  emrMock.on(ListStepsCommand, { ClusterId: "j-NEW" }).resolves({ Steps: [{ Id: "s-NEW" }] });
});

describe("spark-submit arguments", () => {
  it("follow the entry-point contract: Spark options, the job script, then the job's arguments", () => {
    const at = s3JobLocations({
      artifactsBucket: "fs-artifacts",
      offlineBucket: "fs-offline",
      keyspace: "feature_store",
    });
    const run = { view: "energy", inputs: request.inputs, mode: "full" as const, runId: "run-1" };
    expect(sparkSubmitArgs(run, at)).toEqual(EXPECTED_ARGS);
  });

  it("leave out --jars when there are none, and end with --timeout-minutes when the run has one", () => {
    const at = { ...s3JobLocations({ artifactsBucket: "a", offlineBucket: "o", keyspace: "k" }), jars: [] };
    const args = sparkSubmitArgs(
      { view: "energy", inputs: ["x"], mode: "incremental", runId: "r", timeoutMinutes: 90 },
      at,
    );
    expect(args).not.toContain("--jars");
    expect(args.slice(0, 3)).toEqual(["spark-submit", "--deploy-mode", "cluster"]);
    expect(args.slice(-2)).toEqual(["--timeout-minutes", "90"]);
  });
});

describe("startFeatureJob on a configured cluster", () => {
  it("adds one command-runner step with the contract's arguments and returns its id", async () => {
    const started = await startFeatureJob(request, { emr, s3, config: clusterConfig, views });
    expect(started).toEqual({
      runId: "run-1",
      clusterId: "j-2AXXXXXXGAPLF",
      stepIds: ["s-1"],
      stepName: "feature-job energy full run-1",
      transientCluster: false,
    });
    expect(emrMock).toHaveReceivedCommandTimes(AddJobFlowStepsCommand, 1);
    expect(emrMock).toHaveReceivedCommandWith(AddJobFlowStepsCommand, {
      JobFlowId: "j-2AXXXXXXGAPLF",
      Steps: [
        {
          Name: "feature-job energy full run-1",
          ActionOnFailure: "CONTINUE",
          HadoopJarStep: { Jar: "command-runner.jar", Args: EXPECTED_ARGS },
        },
      ],
    });
    expect(emrMock).not.toHaveReceivedCommand(RunJobFlowCommand);
  });

  it("names a run by time and a random suffix when no run id is given", async () => {
    const { runId: _omit, ...withoutRunId } = request;
    const started = await startFeatureJob(withoutRunId, {
      emr,
      s3,
      config: clusterConfig,
      views,
      now: () => new Date("2026-11-26T18:45:00.123Z"),
      randomSuffix: () => "abc123",
    });
    expect(started.runId).toBe("20261126T184500Z-abc123");
    expect(newRunId(new Date("2026-01-02T03:04:05Z"), "x")).toBe("20260102T030405Z-x");
  });
});

describe("startFeatureJob without a cluster", () => {
  it("starts a transient EMR 7 cluster with Spark, Delta, the stack's roles and logs in the artifacts bucket", async () => {
    const started = await startFeatureJob(request, { emr, s3, config: transientConfig, views });
    expect(started).toMatchObject({
      clusterId: "j-NEW",
      stepIds: ["s-NEW"],
      transientCluster: true,
      runId: "run-1",
    });
    expect(emrMock).not.toHaveReceivedCommand(AddJobFlowStepsCommand);
    expect(emrMock).toHaveReceivedCommandWith(RunJobFlowCommand, {
      Name: "feature-store-dev energy run-1",
      ReleaseLabel: "emr-7.12.0",
      Applications: [{ Name: "Spark" }],
      Configurations: [{ Classification: "delta-defaults", Properties: { "delta.enabled": "true" } }],
      Instances: {
        InstanceGroups: [
          {
            Name: "primary",
            InstanceRole: "MASTER",
            Market: "ON_DEMAND",
            InstanceType: "m6g.xlarge",
            InstanceCount: 1,
          },
          {
            Name: "core",
            InstanceRole: "CORE",
            Market: "ON_DEMAND",
            InstanceType: "m6g.xlarge",
            InstanceCount: 2,
          },
        ],
        KeepJobFlowAliveWhenNoSteps: false,
        TerminationProtected: false,
      },
      Steps: [
        {
          Name: "feature-job energy full run-1",
          ActionOnFailure: "TERMINATE_CLUSTER",
          HadoopJarStep: { Jar: "command-runner.jar", Args: EXPECTED_ARGS },
        },
      ],
      BootstrapActions: [
        {
          Name: "python-libraries",
          // The libraries go to the interpreter the step names (AWS_CONTRACTS E11).
          ScriptBootstrapAction: {
            Path: "s3://fs-artifacts/spark/bootstrap-python.sh",
            Args: ["/usr/bin/python3.11"],
          },
        },
      ],
      LogUri: "s3://fs-artifacts/emr-logs/",
      AutoTerminationPolicy: { IdleTimeout: 3600 },
      ServiceRole: "feature-store-dev-emr-service",
      JobFlowRole: "feature-store-dev-emr-instance",
      VisibleToAllUsers: true,
      Tags: [
        { Key: "for-use-with-amazon-emr-managed-policies", Value: "true" },
        { Key: "feature-store:view", Value: "energy" },
        { Key: "feature-store:run-id", Value: "run-1" },
      ],
    });
  });

  it("uses the release label, instance settings and subnet from the configuration", async () => {
    const config = readFeatureJobConfig({
      ...baseEnv,
      EMR_RELEASE_LABEL: "emr-7.9.0",
      EMR_CORE_INSTANCE_TYPE: "r6g.2xlarge",
      EMR_CORE_INSTANCE_COUNT: "4",
      EMR_SUBNET_ID: "subnet-0abc",
    });
    await startFeatureJob(request, { emr, s3, config, views });
    const input = emrMock.commandCalls(RunJobFlowCommand)[0]?.args[0].input;
    expect(input?.ReleaseLabel).toBe("emr-7.9.0");
    expect(input?.Instances?.Ec2SubnetId).toBe("subnet-0abc");
    expect(input?.Instances?.InstanceGroups?.[1]).toMatchObject({
      InstanceType: "r6g.2xlarge",
      InstanceCount: 4,
    });
  });

  it("refuses to start when the stack's EMR roles are not configured", async () => {
    const config = readFeatureJobConfig({ ...baseEnv, EMR_SERVICE_ROLE: "" });
    await expect(startFeatureJob(request, { emr, s3, config, views })).rejects.toThrow(/EMR_SERVICE_ROLE/);
    expect(emrMock).not.toHaveReceivedCommand(RunJobFlowCommand);
  });
});

describe("feature job request validation", () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ["an unknown view", { ...request, view: "weather" }, /Unknown feature view "weather"/],
    ["another bucket", { ...request, inputs: ["s3://elsewhere/raw/energy/a.csv"] }, /not in the raw bucket/],
    [
      "another view's prefix",
      { ...request, inputs: ["s3://fs-raw/raw/other/a.csv"] },
      /not under raw\/energy\//,
    ],
    [
      "a path escape",
      { ...request, inputs: ["s3://fs-raw/raw/energy/../x/a.csv"] },
      /not under raw\/energy\//,
    ],
    ["a non-CSV file", { ...request, inputs: ["s3://fs-raw/raw/energy/a.parquet"] }, /not a \.csv file/],
    ["a glob character", { ...request, inputs: ["s3://fs-raw/raw/energy/2014-*.csv"] }, /glob character/],
    ["a brace", { ...request, inputs: ["s3://fs-raw/raw/energy/{a,b}.csv"] }, /glob character/],
    ["a non-S3 URI", { ...request, inputs: ["/tmp/a.csv"] }, /not an s3:\/\/ URI/],
    ["no inputs", { ...request, inputs: [] }, /inputs/],
    ["a repeated input", { ...request, inputs: [request.inputs[0], request.inputs[0]] }, /repeat/],
    ["an unknown mode", { ...request, mode: "append" }, /mode/],
    ["a bad run id", { ...request, runId: "a b" }, /runId/],
    ["an unexpected field", { ...request, cluster: "j-1" }, /cluster/],
    ["a non-object", "energy", /Invalid feature job request/],
    [
      // The run item keeps the inputs, and a DynamoDB item holds 400 KB (AWS_CONTRACTS D4).
      "inputs a run-ledger item cannot hold (300,001 bytes)",
      { ...request, inputs: inputsOfBytes(500, 300_001) },
      /The inputs total 300001 bytes; .* at most 300000/,
    ],
    // 300,000 bytes are accepted: tests/unit/feature-job-step-limit.test.ts starts such a backfill.
  ];
  it.each(cases)("rejects %s before calling EMR", async (_name, input, message) => {
    const promise = startFeatureJob(input, { emr, s3, config: clusterConfig, views });
    await expect(promise).rejects.toThrow(InvalidRequestError);
    await expect(startFeatureJob(input, { emr, s3, config: clusterConfig, views })).rejects.toThrow(message);
    expect(emrMock).not.toHaveReceivedCommand(AddJobFlowStepsCommand);
  });

  it("reads the EMR settings once through a schema that names what is wrong", () => {
    expect(() => readFeatureJobConfig({ ...baseEnv, EMR_CLUSTER_ID: "cluster-1" })).toThrow(/EMR_CLUSTER_ID/);
    expect(() => readFeatureJobConfig({ ...baseEnv, EMR_RELEASE_LABEL: "emr-6.15.0" })).toThrow(/EMR 7/);
    // emr-7.0.0 ships Python 3.9 only; the job needs 3.11 (AWS_CONTRACTS E11).
    expect(() => readFeatureJobConfig({ ...baseEnv, EMR_RELEASE_LABEL: "emr-7.0.0" })).toThrow(/7\.1\.0/);
    expect(readFeatureJobConfig({ ...baseEnv, EMR_RELEASE_LABEL: "emr-7.1.0" }).EMR_RELEASE_LABEL).toBe(
      "emr-7.1.0",
    );
    expect(() => readFeatureJobConfig({ ...baseEnv, RAW_BUCKET: undefined })).toThrow(/RAW_BUCKET/);
  });
});
