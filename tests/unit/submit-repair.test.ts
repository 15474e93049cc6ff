// Protects the repair path of submit: a request names entities and/or a closed date range of one
// view, is validated against the view (ids the view could hold, real days, from <= to), and starts
// the feature job in mode "repair" through the run ledger's per-view lock, with exactly the step
// arguments docs/SPARK_JOB.md names (no --input, no --rejects-uri); a failed repair is retried with
// the same selection.
import "aws-sdk-client-mock-vitest/extend";
import { AddJobFlowStepsCommand, EMRClient } from "@aws-sdk/client-emr";
import { S3Client } from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { InvalidRequestError } from "#commons/errors.js";
import type { RunConfig } from "#commons/feature-job-config.js";
import { RunInProgressError } from "#commons/feature-runs.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { validateRepairRequest } from "#commons/jobs/repair-request.js";
import { readRun } from "#commons/run-ledger.js";
import { handleRunEvent } from "#functions/run-events/run-events.js";
import { submitJob } from "#functions/submit/submit-job.js";
import { testRunConfig, testRunDependencies } from "../fixtures/run-dependencies.js";

const views = loadFeatureViews("resources/feature-views");
const emrMock = mockClient(EMRClient);
const emr = new EMRClient({ region: "eu-west-1" });
const s3 = new S3Client({ region: "eu-west-1" });
let deps: ReturnType<typeof testRunDependencies<RunConfig>>;

function jobArgs(call = 0): string[] {
  const args =
    emrMock.commandCalls(AddJobFlowStepsCommand)[call]?.args[0].input.Steps?.[0]?.HadoopJarStep?.Args;
  const all = args ?? [];
  return all.slice(all.indexOf("s3://fs-artifacts/spark/feature_job.py") + 1);
}

beforeEach(() => {
  emrMock.reset();
  let step = 0;
  emrMock.on(AddJobFlowStepsCommand).callsFake(() => ({ StepIds: [`s-${++step}`] }));
  deps = testRunDependencies({ emr, s3, views, config: testRunConfig({ RUN_TIMEOUT_MINUTES: "60" }) });
});

describe("a repair request", () => {
  it("starts the feature job in mode repair with the selection, no inputs and no rejects", async () => {
    const started = await submitJob(
      {
        jobType: "repair",
        view: "energy",
        entities: ["MAC000002", "MAC000003"],
        from: "2013-03-01",
        to: "2013-03-31",
      },
      deps,
    );
    expect(started.stepName).toBe(`feature-job energy repair ${started.runId}`);
    expect(jobArgs()).toEqual([
      "--view",
      "energy",
      "--mode",
      "repair",
      "--repair-entity",
      "MAC000002",
      "--repair-entity",
      "MAC000003",
      "--repair-from",
      "2013-03-01",
      "--repair-to",
      "2013-03-31",
      "--feature-view",
      "s3://fs-artifacts/feature-views/energy.json",
      "--offline-uri",
      "s3://fs-offline/delta",
      "--summary-uri",
      `s3://fs-offline/runs/energy/${started.runId}/summary.json`,
      "--run-id",
      started.runId,
      "--keyspace",
      "feature_store",
      "--cassandra-profile",
      "keyspaces-application.conf",
      "--timeout-minutes",
      "60",
    ]);
    const run = await readRun(deps.ledger, "energy", started.runId);
    expect(run).toMatchObject({ mode: "repair", state: "running", inputs: [] });
  });

  it("is refused while a run of the view is going, like a backfill", async () => {
    await submitJob({ jobType: "repair", view: "energy", entities: ["MAC000002"] }, deps);
    await expect(
      submitJob({ jobType: "repair", view: "energy", entities: ["MAC000003"] }, deps),
    ).rejects.toThrow(RunInProgressError);
    expect(emrMock.commandCalls(AddJobFlowStepsCommand)).toHaveLength(1);
  });

  it("is retried with the same selection when its step fails", async () => {
    const started = await submitJob(
      { jobType: "repair", view: "energy", from: "2013-01-01", to: "2013-01-02" },
      deps,
    );
    await handleRunEvent(
      {
        source: "aws.emr",
        "detail-type": "EMR Step Status Change",
        detail: {
          stepId: "s-1",
          name: `feature-job energy repair ${started.runId}`,
          clusterId: "j-CLUSTER",
          state: "FAILED",
          message: "failed",
        },
      },
      deps,
    );
    const retried = jobArgs(1);
    expect(retried.slice(0, 8)).toEqual([
      "--view",
      "energy",
      "--mode",
      "repair",
      "--repair-from",
      "2013-01-01",
      "--repair-to",
      "2013-01-02",
    ]);
    expect(retried).not.toContain("--input");
  });

  it.each([
    [{ view: "energy" }, /needs entities and\/or from with to/],
    [{ view: "energy", from: "2013-03-01" }, /from and to go together/],
    [{ view: "energy", from: "2013-03-31", to: "2013-03-01" }, /from is after to/],
    [{ view: "energy", from: "2013-02-29", to: "2013-03-01" }, /not a calendar day/],
    [{ view: "energy", entities: ["has space"] }, /Entity ids that energy cannot hold: has space/],
    [{ view: "nope", entities: ["MAC000002"] }, /Unknown feature view "nope"/],
    [{ view: "energy", entities: ["MAC000002"], inputs: ["s3://x/y.csv"] }, /Unrecognized key/],
  ])("refuses %j with a clear message", (request, message) => {
    expect(() => validateRepairRequest({ jobType: "repair", ...request }, views)).toThrow(
      InvalidRequestError,
    );
    expect(() => validateRepairRequest({ jobType: "repair", ...request }, views)).toThrow(message);
  });
});
