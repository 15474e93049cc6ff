// EMR refuses a step whose HadoopJarStep strings total more than 10,240 characters (AddJobFlowSteps,
// docs/AWS_CONTRACTS.md E10). A backfill listed file by file, a batch of 100 staged files or a repair
// of many entities passes that easily; such a run must still start. Up to the limit the step lists its
// inputs (or entities) as before; past it the lists go to an arguments manifest in the offline bucket,
// written before the step is added, and the step passes only its URI (docs/SPARK_JOB.md).
import "aws-sdk-client-mock-vitest/extend";
import {
  AddJobFlowStepsCommand,
  EMRClient,
  ListStepsCommand,
  RunJobFlowCommand,
  type StepConfig,
} from "@aws-sdk/client-emr";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { type FeatureJobConfig, readFeatureJobConfig } from "#commons/feature-job-config.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { s3JobLocations } from "#commons/jobs/artifacts.js";
import { type FeatureJobRun, sparkSubmitArgs } from "#commons/jobs/feature-job-step.js";
import { startFeatureJob, startFeatureJobStep } from "#commons/jobs/start-step.js";
import { TEST_JOB_ENV } from "../fixtures/run-dependencies.js";

const views = loadFeatureViews("resources/feature-views");
const emrMock = mockClient(EMRClient);
const s3Mock = mockClient(S3Client);
const emr = new EMRClient({ region: "eu-west-1" });
const s3 = new S3Client({ region: "eu-west-1" });

const env = TEST_JOB_ENV;
const clusterConfig: FeatureJobConfig = readFeatureJobConfig({ ...env, EMR_CLUSTER_ID: "j-2AXXXXXXGAPLF" });
const transientConfig: FeatureJobConfig = readFeatureJobConfig({ ...env, EMR_CLUSTER_ID: "" });
const at = s3JobLocations({
  artifactsBucket: "fs-artifacts",
  offlineBucket: "fs-offline",
  keyspace: "feature_store",
});

const EMR_STEP_LIMIT = 10_240;
/** What AddJobFlowSteps counts: every string of the HadoopJarStep (here the jar and the arguments). */
const stepCharacters = (step: StepConfig | undefined): number =>
  [
    step?.HadoopJarStep?.Jar ?? "",
    step?.HadoopJarStep?.MainClass ?? "",
    ...(step?.HadoopJarStep?.Args ?? []),
  ].join("").length;
const listedCharacters = (run: FeatureJobRun): number =>
  "command-runner.jar".length + sparkSubmitArgs(run, at).join("").length;

/** `count` raw inputs whose listed step totals exactly `total` characters (the last name is padded). */
function inputsTotalling(total: number, count: number, runId: string): string[] {
  const inputs = Array.from(
    { length: count },
    (_, i) => `s3://fs-raw/raw/energy/day-${String(i).padStart(4, "0")}.csv`,
  );
  const run = { view: "energy", inputs, mode: "full" as const, runId, timeoutMinutes: 120 };
  const missing = total - listedCharacters(run);
  if (missing < 0) throw new Error(`${count} inputs already take ${listedCharacters(run)} characters`);
  inputs[count - 1] = `s3://fs-raw/raw/energy/day-last${"x".repeat(missing - "last".length + 4)}.csv`;
  expect(listedCharacters({ ...run, inputs })).toBe(total);
  return inputs;
}

const sentStep = (): StepConfig | undefined =>
  emrMock.commandCalls(AddJobFlowStepsCommand)[0]?.args[0].input.Steps?.[0];
const sentArgs = (): string[] => sentStep()?.HadoopJarStep?.Args ?? [];
const argAfter = (args: readonly string[], flag: string): string | undefined => args[args.indexOf(flag) + 1];

/** The order the calls reached the two services in. */
let calls: string[] = [];

beforeEach(() => {
  emrMock.reset();
  s3Mock.reset();
  calls = [];
  emrMock.on(AddJobFlowStepsCommand).callsFake(() => {
    calls.push("AddJobFlowSteps");
    return { StepIds: ["s-1"] };
  });
  emrMock.on(RunJobFlowCommand).callsFake(() => {
    calls.push("RunJobFlow");
    return { JobFlowId: "j-NEW" };
  });
  emrMock.on(ListStepsCommand, { ClusterId: "j-NEW" }).resolves({ Steps: [{ Id: "s-NEW" }] });
  s3Mock.on(PutObjectCommand).callsFake(() => {
    calls.push("PutObject");
    return {};
  });
});

describe("a feature-job step at EMR's 10,240-character limit", () => {
  it("lists its inputs when they total exactly the limit, and writes no manifest", async () => {
    const inputs = inputsTotalling(EMR_STEP_LIMIT, 60, "run-at-limit");
    const run = { view: "energy", inputs, mode: "full" as const, runId: "run-at-limit", timeoutMinutes: 120 };
    await startFeatureJobStep(run, { emr, s3, config: clusterConfig });
    expect(sentArgs()).toEqual(sparkSubmitArgs(run, at));
    expect(stepCharacters(sentStep())).toBe(EMR_STEP_LIMIT);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  it("one character more: writes the inputs to an arguments manifest first and passes only its URI", async () => {
    const inputs = inputsTotalling(EMR_STEP_LIMIT + 1, 60, "run-past-limit");
    const run = {
      view: "energy",
      inputs,
      mode: "full" as const,
      runId: "run-past-limit",
      timeoutMinutes: 120,
    };
    await startFeatureJobStep(run, { emr, s3, config: clusterConfig });
    const args = sentArgs();
    const manifest = "s3://fs-offline/runs/energy/run-past-limit/arguments.json";
    expect(argAfter(args, "--arguments-manifest")).toBe(manifest);
    expect(args).not.toContain("--input");
    expect(stepCharacters(sentStep())).toBeLessThanOrEqual(EMR_STEP_LIMIT);
    // Everything else is the listed step's, in the same order.
    const listed = sparkSubmitArgs(run, at);
    const withoutInputs = listed.filter((a, i) => a !== "--input" && listed[i - 1] !== "--input");
    const withoutManifest = args.filter(
      (a, i) => a !== "--arguments-manifest" && args[i - 1] !== "--arguments-manifest",
    );
    expect(withoutManifest).toEqual(withoutInputs);
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, {
      Bucket: "fs-offline",
      Key: "runs/energy/run-past-limit/arguments.json",
      ContentType: "application/json",
    });
    const body = s3Mock.commandCalls(PutObjectCommand)[0]?.args[0].input.Body as string;
    expect(JSON.parse(body)).toEqual({ inputs });
    // The manifest exists before EMR can run the step.
    expect(calls).toEqual(["PutObject", "AddJobFlowSteps"]);
  });

  it("starts a 500-file backfill of the most input bytes submit accepts, on a transient cluster too", async () => {
    // 600 bytes each: 300,000 in all, the most a request may carry (a run-ledger item holds 400 KB).
    const inputs = Array.from(
      { length: 500 },
      (_, i) => `s3://fs-raw/raw/energy/${String(i).padStart(4, "0")}-${"k".repeat(568)}.csv`,
    );
    expect(inputs.join("")).toHaveLength(300_000);
    const request = { view: "energy", inputs, mode: "full", runId: "run-500" };
    await startFeatureJob(request, { emr, s3, config: clusterConfig, views });
    expect(stepCharacters(sentStep())).toBeLessThanOrEqual(EMR_STEP_LIMIT);
    expect(JSON.parse(s3Mock.commandCalls(PutObjectCommand)[0]?.args[0].input.Body as string)).toEqual({
      inputs,
    });

    await startFeatureJob({ ...request, runId: "run-500-t" }, { emr, s3, config: transientConfig, views });
    expect(calls.slice(-2)).toEqual(["PutObject", "RunJobFlow"]);
    const step = emrMock.commandCalls(RunJobFlowCommand)[0]?.args[0].input.Steps?.[0];
    expect(argAfter(step?.HadoopJarStep?.Args ?? [], "--arguments-manifest")).toBe(
      "s3://fs-offline/runs/energy/run-500-t/arguments.json",
    );
    expect(stepCharacters(step)).toBeLessThanOrEqual(EMR_STEP_LIMIT);
  });

  it("passes a repair's many entities through the manifest, keeping its date range on the command line", async () => {
    const entities = Array.from({ length: 1000 }, (_, i) => `MAC${String(i).padStart(6, "0")}`);
    const run = {
      view: "energy",
      inputs: [],
      mode: "repair" as const,
      runId: "repair-1000",
      repair: { entities, from: "2013-01-01", to: "2013-01-31" },
    };
    expect(listedCharacters(run)).toBeGreaterThan(EMR_STEP_LIMIT);
    await startFeatureJobStep(run, { emr, s3, config: clusterConfig });
    const args = sentArgs();
    expect(args).not.toContain("--repair-entity");
    expect(argAfter(args, "--repair-from")).toBe("2013-01-01");
    expect(argAfter(args, "--arguments-manifest")).toBe(
      "s3://fs-offline/runs/energy/repair-1000/arguments.json",
    );
    expect(JSON.parse(s3Mock.commandCalls(PutObjectCommand)[0]?.args[0].input.Body as string)).toEqual({
      repair_entities: entities,
    });
  });
});
