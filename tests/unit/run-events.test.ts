// Protects the run orchestration after a step starts (runEvents): a completed step closes its run
// from the job's summary and starts the next batch; a failed one is retried with the same inputs
// under a new run id up to MAX_RUN_ATTEMPTS, then its files fail with one alert; duplicate and
// out-of-order events change nothing; a crash between closing a run and settling its files is
// finished by the scheduled reconcile, which also closes runs whose events were lost, cancels runs
// past their timeout and reports staleness.
import "aws-sdk-client-mock-vitest/extend";
import {
  AddJobFlowStepsCommand,
  CancelStepsCommand,
  DescribeStepCommand,
  EMRClient,
  ListClustersCommand,
  ListStepsCommand,
  RunJobFlowCommand,
  TerminateJobFlowsCommand,
} from "@aws-sdk/client-emr";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { RUN_TIMEOUT_GRACE_MINUTES } from "#commons/close-runs.js";
import type { RunConfig } from "#commons/feature-job-config.js";
import { START_LEASE_MS } from "#commons/feature-runs.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import {
  fileSk,
  LOCK_SK,
  ledgerItem,
  listFiles,
  listRuns,
  readLock,
  readRun,
  viewPk,
} from "#commons/run-ledger.js";
import { startNextRun } from "#commons/start-runs.js";
import { handleRunEvent } from "#functions/run-events/run-events.js";
import { status } from "#functions/status/status.js";
import { testRunConfig, testRunDependencies } from "../fixtures/run-dependencies.js";

const views = loadFeatureViews("resources/feature-views");
const emrMock = mockClient(EMRClient);
const s3Mock = mockClient(S3Client);
const emr = new EMRClient({ region: "eu-west-1" });
const s3 = new S3Client({ region: "eu-west-1" });

let deps: ReturnType<typeof testRunDependencies<RunConfig>>;
const pk = viewPk("energy");

function body(text: string): never {
  return { transformToString: async () => text } as never;
}

/** Puts n queued files into the ledger, as ingest leaves them. */
async function queue(n: number, from = 0): Promise<string[]> {
  const ids: string[] = [];
  for (let i = from; i < from + n; i++) {
    const fileId = `f${String(i).padStart(3, "0")}`;
    ids.push(fileId);
    await deps.ledger.put(
      ledgerItem(pk, fileSk(fileId), {
        view: "energy",
        fileId,
        state: "queued",
        bucket: "fs-raw",
        key: `raw/energy/day-${i}.csv`,
        stagedUri: `s3://fs-raw/staging/energy/${fileId}.csv`,
        receivedAt: new Date(Date.UTC(2026, 10, 26, 18, 0, i)).toISOString(),
        updatedAt: "2026-11-26T18:00:00Z",
      }),
    );
  }
  return ids;
}

function stepEvent(runId: string, stepId: string, state: string, mode = "incremental") {
  return {
    version: "0",
    source: "aws.emr",
    "detail-type": "EMR Step Status Change",
    detail: {
      severity: state === "FAILED" ? "ERROR" : "INFO",
      actionOnFailure: "CONTINUE",
      stepId,
      name: `feature-job energy ${mode} ${runId}`,
      clusterId: "j-CLUSTER",
      state,
      message: `Step ${stepId} ${state}`,
    },
  };
}

const scheduled = { source: "aws.events", "detail-type": "Scheduled Event", detail: {} };

function stepInputs(): string[][] {
  return emrMock.commandCalls(AddJobFlowStepsCommand).map((c) => {
    const args = c.args[0].input.Steps?.[0]?.HadoopJarStep?.Args ?? [];
    return args.flatMap((a, i) => (args[i - 1] === "--input" ? [a] : []));
  });
}

const later = (ms: number) => {
  deps.effects.clock = new Date(deps.effects.clock.getTime() + ms);
};

beforeEach(() => {
  emrMock.reset();
  s3Mock.reset();
  let step = 0;
  emrMock.on(AddJobFlowStepsCommand).callsFake(() => ({ StepIds: [`s-${++step}`] }));
  s3Mock.on(GetObjectCommand).callsFake((input: { Key: string }) => ({
    Body: body(
      JSON.stringify({
        status: "succeeded",
        rejected_rows: 2,
        offline: { delta_version: 7, last_date: "2026-11-25" },
        run: input.Key,
      }),
    ),
  }));
  deps = testRunDependencies({ emr, s3, views, config: testRunConfig({ MAX_FILES_PER_RUN: "3" }) });
});

describe("a completed step", () => {
  it("closes the run from its summary, marks its files succeeded and starts the next batch of queued files", async () => {
    await queue(5);
    const first = await startNextRun("energy", deps, "ingest");
    if (first.status !== "started") throw new Error("not started");
    expect(stepInputs()).toEqual([
      ["f000", "f001", "f002"].map((id) => `s3://fs-raw/staging/energy/${id}.csv`),
    ]);
    // Files arriving meanwhile wait for the next run.
    await queue(2, 5);

    const outcome = await handleRunEvent(stepEvent(first.runId, first.stepId, "COMPLETED"), deps);
    expect(outcome).toMatchObject({ status: "succeeded", runId: first.runId, next: { status: "started" } });
    expect(s3Mock).toHaveReceivedCommandWith(GetObjectCommand, {
      Bucket: "fs-offline",
      Key: `runs/energy/${first.runId}/summary.json`,
    });
    expect(await readRun(deps.ledger, "energy", first.runId)).toMatchObject({
      state: "succeeded",
      deltaVersion: 7,
      rejectedRows: 2,
      newestFeatureDate: "2026-11-25",
    });
    const files = await listFiles(deps.ledger, "energy");
    expect(files.filter((f) => f.state === "succeeded").map((f) => f.fileId)).toEqual([
      "f000",
      "f001",
      "f002",
    ]);
    expect(files.find((f) => f.fileId === "f000")).toMatchObject({ deltaVersion: 7, runId: first.runId });
    // The next run takes the oldest queued files, up to MAX_FILES_PER_RUN.
    expect(stepInputs()[1]).toEqual(
      ["f003", "f004", "f005"].map((id) => `s3://fs-raw/staging/energy/${id}.csv`),
    );
    expect(files.filter((f) => f.state === "queued").map((f) => f.fileId)).toEqual(["f006"]);
    expect(await readLock(deps.ledger, "energy")).toMatchObject({
      state: "running",
      newestFeatureDate: "2026-11-25",
      lastSucceededRunId: first.runId,
    });
    expect(deps.effects.metrics).toEqual([{ name: "RunsSucceeded", view: "energy", value: 1 }]);
  });

  it("changes nothing when the event comes again, or a RUNNING event arrives after it", async () => {
    await queue(1);
    const run = await startNextRun("energy", deps, "ingest");
    if (run.status !== "started") throw new Error("not started");
    await handleRunEvent(stepEvent(run.runId, run.stepId, "COMPLETED"), deps);
    const before = structuredClone([...deps.ledger.items.entries()]);
    expect(await handleRunEvent(stepEvent(run.runId, run.stepId, "COMPLETED"), deps)).toMatchObject({
      status: "ignored",
    });
    expect(await handleRunEvent(stepEvent(run.runId, run.stepId, "RUNNING"), deps)).toMatchObject({
      status: "ignored",
    });
    expect(await handleRunEvent(stepEvent(run.runId, run.stepId, "FAILED"), deps)).toMatchObject({
      status: "ignored",
    });
    expect([...deps.ledger.items.entries()]).toEqual(before);
    expect(deps.effects.metrics).toHaveLength(1);
    expect(await readLock(deps.ledger, "energy")).toMatchObject({ state: "idle" });
  });

  it("ignores steps that are not feature-job runs of the ledger", async () => {
    const training = {
      ...stepEvent("x", "s-9", "COMPLETED"),
      detail: { ...stepEvent("x", "s-9", "COMPLETED").detail, name: "training-set churn r1" },
    };
    expect(await handleRunEvent(training, deps)).toMatchObject({ status: "ignored" });
    expect(await handleRunEvent(stepEvent("unknown-run", "s-9", "COMPLETED"), deps)).toMatchObject({
      status: "ignored",
      reason: expect.stringContaining("no run unknown-run"),
    });
    expect(await handleRunEvent({ hello: "world" }, deps)).toMatchObject({ status: "ignored" });
  });
});

describe("a failed step", () => {
  it("is retried with the same inputs under a new attempt id, holding the lock throughout", async () => {
    await queue(2);
    const first = await startNextRun("energy", deps, "ingest");
    if (first.status !== "started") throw new Error("not started");
    await queue(1, 2);
    const outcome = await handleRunEvent(stepEvent(first.runId, first.stepId, "FAILED"), deps);
    expect(outcome).toMatchObject({
      status: "retried",
      next: { status: "started", runId: `${first.runId}-a2` },
    });
    expect(stepInputs()).toEqual([stepInputs()[0], stepInputs()[0]]);
    expect(await readRun(deps.ledger, "energy", first.runId)).toMatchObject({
      state: "retried",
      nextRunId: `${first.runId}-a2`,
      error: "step FAILED: Step s-1 FAILED",
    });
    expect(await readRun(deps.ledger, "energy", `${first.runId}-a2`)).toMatchObject({
      state: "running",
      attempt: 2,
      baseRunId: first.runId,
      fileIds: ["f000", "f001"],
    });
    expect(await readLock(deps.ledger, "energy")).toMatchObject({
      state: "running",
      runId: `${first.runId}-a2`,
    });
    // The file that arrived meanwhile is not slipped into the retry.
    expect((await listFiles(deps.ledger, "energy")).find((f) => f.fileId === "f002")?.state).toBe("queued");
  });

  it("fails its files for good after MAX_RUN_ATTEMPTS, alerts once, counts RunsFailed and moves on", async () => {
    await queue(1);
    let run = await startNextRun("energy", deps, "ingest");
    await queue(1, 1);
    for (let attempt = 1; attempt <= 3; attempt++) {
      if (run.status !== "started") throw new Error(`attempt ${attempt} not started`);
      const outcome = await handleRunEvent(stepEvent(run.runId, run.stepId, "FAILED"), deps);
      expect(outcome.status).toBe(attempt < 3 ? "retried" : "failed");
      if (attempt === 3) {
        // A duplicate of the last failure: nothing more, in particular no second alert.
        expect(await handleRunEvent(stepEvent(run.runId, run.stepId, "FAILED"), deps)).toMatchObject({
          status: "ignored",
        });
      }
      run = "next" in outcome && outcome.next ? outcome.next : run;
    }
    expect(emrMock).toHaveReceivedCommandTimes(AddJobFlowStepsCommand, 4);
    const files = await listFiles(deps.ledger, "energy");
    expect(files.find((f) => f.fileId === "f000")).toMatchObject({
      state: "failed",
      error: expect.stringContaining("FAILED"),
    });
    // The next batch (the file queued meanwhile) started once the failed run let go of the lock.
    expect(files.find((f) => f.fileId === "f001")).toMatchObject({ state: "running" });
    expect(deps.effects.alerts).toHaveLength(1);
    expect(deps.effects.alerts[0]?.subject).toMatch(/^feature-store: run \S+ of view energy failed$/);
    expect(deps.effects.alerts[0]?.message).toContain("s3://fs-raw/staging/energy/f000.csv");
    expect(deps.effects.metrics).toEqual([{ name: "RunsFailed", view: "energy", value: 1 }]);
  });

  it("after a crash between failing the run and settling it, the reconcile fails the files and alerts", async () => {
    deps = testRunDependencies({ emr, s3, views, config: testRunConfig({ MAX_RUN_ATTEMPTS: "1" }) });
    await queue(1);
    const run = await startNextRun("energy", deps, "ingest");
    if (run.status !== "started") throw new Error("not started");
    deps.ledger.fail = (op, _pk, sk) => op === "update" && sk.startsWith("FILE#");
    await expect(handleRunEvent(stepEvent(run.runId, run.stepId, "FAILED"), deps)).rejects.toThrow(
      /injected/,
    );
    deps.ledger.fail = undefined;
    expect(deps.effects.alerts).toHaveLength(0);
    // The event's redelivery finds the run closed; the scheduled reconcile finishes the job.
    expect(await handleRunEvent(stepEvent(run.runId, run.stepId, "FAILED"), deps)).toMatchObject({
      status: "ignored",
    });
    await handleRunEvent(scheduled, deps);
    expect((await listFiles(deps.ledger, "energy"))[0]).toMatchObject({ state: "failed" });
    expect(deps.effects.alerts).toHaveLength(1);
    expect(await readLock(deps.ledger, "energy")).toMatchObject({ state: "idle" });
    await handleRunEvent(scheduled, deps);
    expect(deps.effects.alerts).toHaveLength(1);
  });

  it("a transient cluster that ended with errors before its step reported is a failed attempt", async () => {
    deps = testRunDependencies({
      emr,
      s3,
      views,
      config: testRunConfig({ EMR_CLUSTER_ID: "", EMR_SERVICE_ROLE: "svc", EMR_INSTANCE_PROFILE: "inst" }),
    });
    emrMock.on(RunJobFlowCommand).resolves({ JobFlowId: "j-T1" });
    emrMock.on(ListStepsCommand).resolves({ Steps: [{ Id: "s-T1" }] });
    await queue(1);
    const run = await startNextRun("energy", deps, "ingest");
    if (run.status !== "started") throw new Error("not started");
    expect(run.clusterId).toBe("j-T1");
    const event = {
      source: "aws.emr",
      "detail-type": "EMR Cluster State Change",
      detail: {
        name: `feature-store energy ${run.runId}`,
        clusterId: "j-T1",
        state: "TERMINATED_WITH_ERRORS",
        message: "bootstrap action failed",
      },
    };
    expect(await handleRunEvent(event, deps)).toMatchObject({ status: "retried" });
    expect(emrMock).toHaveReceivedCommandTimes(RunJobFlowCommand, 2);
    expect(await readRun(deps.ledger, "energy", run.runId)).toMatchObject({
      error: "cluster terminated with errors: bootstrap action failed",
    });
    expect(
      await handleRunEvent({ ...event, detail: { ...event.detail, clusterId: "j-OTHER" } }, deps),
    ).toMatchObject({
      status: "ignored",
    });
  });
});

describe("the scheduled reconcile", () => {
  it("closes a run whose step ended without its event reaching runEvents", async () => {
    await queue(1);
    const run = await startNextRun("energy", deps, "ingest");
    if (run.status !== "started") throw new Error("not started");
    emrMock.on(DescribeStepCommand).resolves({ Step: { Status: { State: "COMPLETED" } } });
    const outcome = await handleRunEvent(scheduled, deps);
    expect(outcome).toMatchObject({ status: "reconciled", views: { energy: { status: "succeeded" } } });
    expect(emrMock).toHaveReceivedCommandWith(DescribeStepCommand, {
      ClusterId: "j-CLUSTER",
      StepId: run.stepId,
    });
  });

  it("cancels a step past RUN_TIMEOUT_MINUTES and counts it as a failed attempt", async () => {
    await queue(1);
    const run = await startNextRun("energy", deps, "ingest");
    if (run.status !== "started") throw new Error("not started");
    emrMock.on(DescribeStepCommand).resolves({ Step: { Status: { State: "RUNNING" } } });
    later(60 * 60_000);
    expect((await handleRunEvent(scheduled, deps)) as unknown).toMatchObject({
      views: { energy: { status: "waiting" } },
    });
    expect(emrMock).not.toHaveReceivedCommand(CancelStepsCommand);
    later((120 + RUN_TIMEOUT_GRACE_MINUTES) * 60_000);
    expect((await handleRunEvent(scheduled, deps)) as unknown).toMatchObject({
      views: { energy: { status: "retried" } },
    });
    expect(emrMock).toHaveReceivedCommandWith(CancelStepsCommand, {
      ClusterId: "j-CLUSTER",
      StepIds: [run.stepId],
    });
    expect(emrMock).not.toHaveReceivedCommand(TerminateJobFlowsCommand);
    // The CANCELLED event the cancel causes arrives late and changes nothing.
    expect(await handleRunEvent(stepEvent(run.runId, run.stepId, "CANCELLED"), deps)).toMatchObject({
      status: "ignored",
    });
  });

  it("takes over a transient run whose starter died, finding its cluster by name instead of starting another", async () => {
    deps = testRunDependencies({
      emr,
      s3,
      views,
      config: testRunConfig({ EMR_CLUSTER_ID: "", EMR_SERVICE_ROLE: "svc", EMR_INSTANCE_PROFILE: "inst" }),
    });
    emrMock.on(RunJobFlowCommand).resolves({ JobFlowId: "j-T1" });
    await queue(1);
    deps.ledger.fail = (op, _pk, sk, changes) =>
      op === "update" && sk.startsWith("RUN#") && changes.state === "running";
    await expect(startNextRun("energy", deps, "ingest")).rejects.toThrow(/injected/);
    deps.ledger.fail = undefined;
    const lock = await readLock(deps.ledger, "energy");
    emrMock.on(ListClustersCommand).resolves({
      Clusters: [
        { Id: "j-OLD", Name: "feature-store energy 20261126T180000Z-other" },
        { Id: "j-T1", Name: `feature-store energy ${lock?.runId}` },
      ],
    });
    emrMock.on(ListStepsCommand, { ClusterId: "j-T1" }).resolves({
      Steps: [{ Id: "s-T1", Name: `feature-job energy incremental ${lock?.runId}` }],
    });
    later(START_LEASE_MS + 1);
    expect((await handleRunEvent(scheduled, deps)) as unknown).toMatchObject({
      views: { energy: { status: "started", clusterId: "j-T1", stepId: "s-T1" } },
    });
    expect(emrMock).toHaveReceivedCommandTimes(RunJobFlowCommand, 1);
    expect(await readRun(deps.ledger, "energy", lock?.runId ?? "")).toMatchObject({
      state: "running",
      transientCluster: true,
    });
  });

  it("reports the age of the view's newest features", async () => {
    await deps.ledger.put({
      pk,
      sk: LOCK_SK,
      view: "energy",
      state: "idle",
      newestFeatureDate: "2026-11-25",
    });
    await handleRunEvent(scheduled, deps);
    expect(deps.effects.metrics).toEqual([{ name: "FeatureDataAgeHours", view: "energy", value: 43 }]);
  });
});

describe("status", () => {
  it("shows the lock, runs newest first (bounded), queued and failed files of a view", async () => {
    await queue(4);
    const first = await startNextRun("energy", deps, "ingest");
    if (first.status !== "started") throw new Error("not started");
    later(1000);
    await handleRunEvent(stepEvent(first.runId, first.stepId, "COMPLETED"), deps);
    const shown = await status({ view: "energy", runs: 1 }, deps);
    const [energy] = shown.views;
    expect(energy?.lock).toMatchObject({ state: "running" });
    expect(energy?.runs).toHaveLength(1);
    expect(energy?.runs[0]?.runId).not.toBe(first.runId);
    expect(energy?.running.map((f) => f.fileId)).toEqual(["f003"]);
    expect(energy?.succeededFiles).toBe(3);
    expect((await listRuns(deps.ledger, "energy", 10)).map((r) => r.runId)[1]).toBe(first.runId);
    await expect(status({ view: "nope" }, deps)).rejects.toThrow(/Unknown feature view "nope"/);
    expect((await status(undefined, deps)).views.map((v) => v.view)).toEqual([...views.keys()]);
  });
});
