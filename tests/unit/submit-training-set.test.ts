// Protects submit's training-set path: the exact EMR request (spark-submit arguments in the order
// of spark/training_set_job.py --help), the validation that keeps the job inside the raw and
// offline buckets and the known views, and that a request without jobType is still a feature job.
import "aws-sdk-client-mock-vitest/extend";
import { AddJobFlowStepsCommand, EMRClient, ListStepsCommand, RunJobFlowCommand } from "@aws-sdk/client-emr";
import { S3Client } from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { InvalidRequestError } from "#commons/errors.js";
import { type RunConfig, runConfigSchema } from "#commons/feature-job-config.js";
import { RunInProgressError } from "#commons/feature-runs.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { s3TrainingSetLocations } from "#commons/jobs/artifacts.js";
import { trainingSetSubmitArgs } from "#commons/jobs/training-set-step.js";
import { submitJob } from "#functions/submit/submit-job.js";
import { TEST_JOB_ENV, testRunDependencies } from "../fixtures/run-dependencies.js";

const views = loadFeatureViews("resources/feature-views");
const emrMock = mockClient(EMRClient);
const emr = new EMRClient({ region: "eu-west-1" });

const baseEnv = TEST_JOB_ENV;
const clusterConfig: RunConfig = runConfigSchema.parse({
  ...baseEnv,
  RUN_LEDGER_TABLE: "fs-runs",
  EMR_CLUSTER_ID: "j-2AXXXXXXGAPLF",
});
const transientConfig: RunConfig = { ...clusterConfig, EMR_CLUSTER_ID: undefined };
const s3 = new S3Client({ region: "eu-west-1" });

/** submit's dependencies with a fresh, empty run ledger. */
function submitDeps(config: RunConfig, clock?: { now: () => Date; randomSuffix: () => string }) {
  return { ...testRunDependencies({ emr, s3, views, config }), ...clock };
}

const request = {
  jobType: "training-set",
  name: "churn-v1",
  events: "s3://fs-raw/labels/churn/2014-03.parquet",
  eventsFormat: "parquet",
  entityColumn: "household_id",
  eventTimeColumn: "label_time",
  views: ["energy"],
  sameDay: true,
  maxAgeDays: { energy: 30 },
  versions: { energy: 12 },
  outputFormat: "delta",
  runId: "run-1",
};

const EXPECTED_ARGS = [
  "spark-submit",
  "--deploy-mode",
  "cluster",
  "--conf",
  "spark.pyspark.python=/usr/bin/python3.11",
  "--jars",
  "s3://fs-artifacts/spark/jars/spark/*.jar",
  "--py-files",
  "s3://fs-artifacts/spark/feature_store.zip",
  "s3://fs-artifacts/spark/training_set_job.py",
  "--events",
  "s3://fs-raw/labels/churn/2014-03.parquet",
  "--events-format",
  "parquet",
  "--entity-column",
  "household_id",
  "--event-time-column",
  "label_time",
  "--view",
  "energy",
  "--feature-view",
  "s3://fs-artifacts/feature-views/energy.json",
  "--offline-uri",
  "s3://fs-offline/delta",
  "--output",
  "s3://fs-offline/training-sets/churn-v1/run-1/data",
  "--output-format",
  "delta",
  "--manifest-uri",
  "s3://fs-offline/training-sets/churn-v1/run-1/manifest.json",
  "--same-day",
  "--max-age-days",
  "energy=30",
  "--version",
  "energy=12",
];

beforeEach(() => {
  emrMock.reset();
  emrMock.on(AddJobFlowStepsCommand).resolves({ StepIds: ["s-1"] });
  emrMock.on(RunJobFlowCommand).resolves({ JobFlowId: "j-NEW" });
  emrMock.on(ListStepsCommand, { ClusterId: "j-NEW" }).resolves({ Steps: [{ Id: "s-NEW" }] });
});

describe("training-set spark-submit arguments", () => {
  const at = s3TrainingSetLocations({ artifactsBucket: "a", offlineBucket: "o" });
  const minimal = {
    name: "n",
    runId: "r",
    events: { uri: "s3://o/e.csv", format: "csv" as const },
    entityColumn: "household_id",
    eventTimeColumn: "day",
    outputFormat: "parquet" as const,
  };

  it("repeat --view/--feature-view per view and give per-view pairs in the views' order", () => {
    const args = trainingSetSubmitArgs(
      { ...minimal, views: ["energy", "weather"], maxAgeDays: { weather: 2, energy: 7 } },
      at,
    );
    expect(args.slice(args.indexOf("--view"), args.indexOf("--offline-uri"))).toEqual([
      "--view",
      "energy",
      "--feature-view",
      "s3://a/feature-views/energy.json",
      "--view",
      "weather",
      "--feature-view",
      "s3://a/feature-views/weather.json",
    ]);
    expect(args.slice(-4)).toEqual(["--max-age-days", "energy=7", "--max-age-days", "weather=2"]);
  });

  it("run the job on EMR's Python 3.11, not the release's default 3.9 (AWS_CONTRACTS E11)", () => {
    const args = trainingSetSubmitArgs({ ...minimal, views: ["energy"] }, at);
    expect(args.slice(args.indexOf("--conf"), args.indexOf("--conf") + 2)).toEqual([
      "--conf",
      "spark.pyspark.python=/usr/bin/python3.11",
    ]);
    expect(args.indexOf("--conf")).toBeLessThan(args.indexOf("--events"));
  });

  it("leave out every optional flag that was not asked for, and pass the events version and versionsFrom", () => {
    const plain = trainingSetSubmitArgs({ ...minimal, views: ["energy"] }, at);
    for (const flag of [
      "--same-day",
      "--preserve-order",
      "--max-age-days",
      "--version",
      "--versions-from",
      "--events-version",
    ]) {
      expect(plain).not.toContain(flag);
    }
    const pinned = trainingSetSubmitArgs(
      {
        ...minimal,
        views: ["energy"],
        events: { uri: "s3://o/labels", format: "delta", version: 0 },
        preserveOrder: true,
        versionsFrom: "s3://o/training-sets/n/old/manifest.json",
      },
      at,
    );
    expect(pinned.slice(0, 3)).toEqual(["spark-submit", "--deploy-mode", "cluster"]);
    expect(pinned.slice(pinned.indexOf("--events-format"), pinned.indexOf("--entity-column"))).toEqual([
      "--events-format",
      "delta",
      "--events-version",
      "0",
    ]);
    expect(pinned.slice(-3)).toEqual([
      "--preserve-order",
      "--versions-from",
      "s3://o/training-sets/n/old/manifest.json",
    ]);
  });
});

describe("submit with jobType training-set", () => {
  it("adds one command-runner step to the configured cluster and returns where the set and manifest go", async () => {
    const started = await submitJob(request, submitDeps(clusterConfig));
    expect(started).toEqual({
      jobType: "training-set",
      name: "churn-v1",
      runId: "run-1",
      clusterId: "j-2AXXXXXXGAPLF",
      stepIds: ["s-1"],
      stepName: "training-set churn-v1 run-1",
      transientCluster: false,
      outputUri: "s3://fs-offline/training-sets/churn-v1/run-1/data",
      manifestUri: "s3://fs-offline/training-sets/churn-v1/run-1/manifest.json",
    });
    expect(emrMock).toHaveReceivedCommandTimes(AddJobFlowStepsCommand, 1);
    expect(emrMock).toHaveReceivedCommandWith(AddJobFlowStepsCommand, {
      JobFlowId: "j-2AXXXXXXGAPLF",
      Steps: [
        {
          Name: "training-set churn-v1 run-1",
          ActionOnFailure: "CONTINUE",
          HadoopJarStep: { Jar: "command-runner.jar", Args: EXPECTED_ARGS },
        },
      ],
    });
    expect(emrMock).not.toHaveReceivedCommand(RunJobFlowCommand);
  });

  it("starts a transient cluster named and tagged after the set when no cluster is configured", async () => {
    const started = await submitJob(request, submitDeps(transientConfig));
    expect(started).toMatchObject({ clusterId: "j-NEW", stepIds: ["s-NEW"], transientCluster: true });
    const input = emrMock.commandCalls(RunJobFlowCommand)[0]?.args[0].input;
    expect(input?.Name).toBe("feature-store-dev training-set churn-v1 run-1");
    expect(input?.Steps).toEqual([
      {
        Name: "training-set churn-v1 run-1",
        ActionOnFailure: "TERMINATE_CLUSTER",
        HadoopJarStep: { Jar: "command-runner.jar", Args: EXPECTED_ARGS },
      },
    ]);
    expect(input?.Configurations).toEqual([
      { Classification: "delta-defaults", Properties: { "delta.enabled": "true" } },
    ]);
    expect(input?.Tags).toEqual([
      { Key: "for-use-with-amazon-emr-managed-policies", Value: "true" },
      { Key: "feature-store:training-set", Value: "churn-v1" },
      { Key: "feature-store:run-id", Value: "run-1" },
    ]);
  });

  it("defaults to parquet output and a time-sortable run id", async () => {
    const { runId: _r, outputFormat: _o, versions: _v, ...rest } = request;
    const started = await submitJob(
      rest,
      submitDeps(clusterConfig, {
        now: () => new Date("2026-11-26T18:45:00.123Z"),
        randomSuffix: () => "abc123",
      }),
    );
    expect(started.runId).toBe("20261126T184500Z-abc123");
    const args =
      emrMock.commandCalls(AddJobFlowStepsCommand)[0]?.args[0].input.Steps?.[0]?.HadoopJarStep?.Args ?? [];
    expect(args[args.indexOf("--output-format") + 1]).toBe("parquet");
    expect(args[args.indexOf("--output") + 1]).toBe(
      "s3://fs-offline/training-sets/churn-v1/20261126T184500Z-abc123/data",
    );
  });

  it("accepts events anywhere in the offline bucket and a previous manifest for the versions", async () => {
    const { versions: _v, ...rest } = request;
    await submitJob(
      {
        ...rest,
        events: "s3://fs-offline/labels/churn",
        eventsFormat: "delta",
        eventsVersion: 3,
        versionsFrom: "s3://fs-offline/training-sets/churn-v1/run-0/manifest.json",
      },
      submitDeps(clusterConfig),
    );
    expect(emrMock).toHaveReceivedCommandTimes(AddJobFlowStepsCommand, 1);
  });
});

describe("training-set request validation", () => {
  const { versions: _v, ...noVersions } = request;
  const cases: Array<[string, unknown, RegExp]> = [
    ["an unknown view", { ...request, views: ["energy", "weather"] }, /unknown feature view\(s\) weather/],
    ["a repeated view", { ...request, views: ["energy", "energy"] }, /must not repeat/],
    ["no views", { ...request, views: [] }, /views/],
    [
      "events in another bucket",
      { ...request, events: "s3://elsewhere/labels/a.csv" },
      /not in the raw bucket/,
    ],
    [
      "events in raw/ of the raw bucket",
      { ...request, events: "s3://fs-raw/raw/energy/a.csv" },
      /not under labels\//,
    ],
    [
      "events in the artifacts bucket",
      { ...request, events: "s3://fs-artifacts/spark/x" },
      /not in the raw bucket/,
    ],
    [
      "events with a path escape",
      { ...request, events: "s3://fs-raw/labels/../raw/a.csv" },
      /must not contain \.\./,
    ],
    ["events that are not an S3 URI", { ...request, events: "/tmp/labels.csv" }, /not an s3:\/\/ URI/],
    [
      "events inside this run's output",
      { ...request, events: "s3://fs-offline/training-sets/churn-v1/run-1/data" },
      /inside this run's output/,
    ],
    ["a name with a slash", { ...request, name: "churn/v1" }, /name/],
    ["a name with dots", { ...request, name: ".." }, /name/],
    ["an empty name", { ...request, name: "" }, /name/],
    [
      "both versions and versionsFrom",
      { ...request, versionsFrom: "s3://fs-offline/training-sets/churn-v1/run-0/manifest.json" },
      /versions or versionsFrom, not both/,
    ],
    [
      "versionsFrom outside the offline bucket",
      { ...noVersions, versionsFrom: "s3://fs-raw/labels/manifest.json" },
      /not in the offline bucket/,
    ],
    [
      "versionsFrom that is not a manifest",
      { ...noVersions, versionsFrom: "s3://fs-offline/delta/energy/_delta_log/0.json" },
      /not a manifest under training-sets\//,
    ],
    [
      "versions for a view not requested",
      { ...request, versions: { weather: 1 } },
      /versions names view\(s\) not in views: weather/,
    ],
    ["a negative version", { ...request, versions: { energy: -1 } }, /versions/],
    [
      "maxAgeDays 0 without sameDay",
      { ...request, sameDay: false, maxAgeDays: { energy: 0 } },
      /only meaningful with sameDay/,
    ],
    ["an events version on CSV", { ...request, eventsFormat: "csv", eventsVersion: 2 }, /delta only/],
    ["an unknown events format", { ...request, eventsFormat: "json" }, /eventsFormat/],
    ["an unknown output format", { ...request, outputFormat: "csv" }, /outputFormat/],
    ["a column that looks like a flag", { ...request, entityColumn: "--same-day" }, /entityColumn/],
    ["a bad run id", { ...request, runId: "a b" }, /runId/],
    ["an unexpected field", { ...request, cluster: "j-1" }, /cluster/],
    ["an unknown jobType", { ...request, jobType: "backfill" }, /jobType must be one of/],
  ];
  it.each(cases)("rejects %s before calling EMR", async (_name, input, message) => {
    const promise = submitJob(input, submitDeps(clusterConfig));
    await expect(promise).rejects.toThrow(InvalidRequestError);
    await expect(submitJob(input, submitDeps(clusterConfig))).rejects.toThrow(message);
    expect(emrMock).not.toHaveReceivedCommand(AddJobFlowStepsCommand);
    expect(emrMock).not.toHaveReceivedCommand(RunJobFlowCommand);
  });
});

describe("submit with the feature job's request", () => {
  const features = {
    view: "energy",
    inputs: ["s3://fs-raw/raw/energy/2014-01.csv"],
    mode: "full",
    runId: "run-1",
  };

  it("still starts the feature job without a jobType, and the same step with jobType features", async () => {
    const plain = await submitJob(features, submitDeps(clusterConfig));
    const explicit = await submitJob({ jobType: "features", ...features }, submitDeps(clusterConfig));
    expect(plain).toEqual({
      runId: "run-1",
      clusterId: "j-2AXXXXXXGAPLF",
      stepIds: ["s-1"],
      stepName: "feature-job energy full run-1",
    });
    expect(explicit).toEqual(plain);
    const [first, second] = emrMock.commandCalls(AddJobFlowStepsCommand).map((c) => c.args[0].input);
    expect(second).toEqual(first);
    expect(first?.Steps?.[0]?.HadoopJarStep?.Args).toContain("s3://fs-artifacts/spark/feature_job.py");
  });

  it("goes through the view's run lock: a second feature job while one runs is refused, a training set is not", async () => {
    const deps = submitDeps(clusterConfig);
    await submitJob(features, deps);
    await expect(submitJob({ ...features, runId: "run-2" }, deps)).rejects.toThrow(RunInProgressError);
    await expect(submitJob({ ...features, runId: "run-2" }, deps)).rejects.toThrow(/has a run going \(run-1/);
    await submitJob(request, deps);
    expect(emrMock).toHaveReceivedCommandTimes(AddJobFlowStepsCommand, 2);
  });

  it("still reports a non-object request as an invalid feature job request", async () => {
    await expect(submitJob("energy", submitDeps(clusterConfig))).rejects.toThrow(
      /Invalid feature job request/,
    );
  });
});
