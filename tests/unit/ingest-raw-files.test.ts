// Protects ingest: event keys decoded as S3 encodes them, header and size checks with every
// rejection path ending in quarantine + report, the checked version staged and queued in the run
// ledger once however often the event is delivered, at most one run per view (files arriving
// together are batched), and no file lost when ingest dies at any point.
import "aws-sdk-client-mock-vitest/extend";
import {
  AddJobFlowStepsCommand,
  DescribeStepCommand,
  EMRClient,
  ListStepsCommand,
} from "@aws-sdk/client-emr";
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import type { S3Event } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { reconcileView } from "#commons/close-runs.js";
import { START_LEASE_MS } from "#commons/feature-runs.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { fileIdOf, LOCK_SK, listFiles, readLock, viewPk } from "#commons/run-ledger.js";
import {
  checkFileHead,
  decodeS3EventKey,
  parseHeaderLine,
  routeRawKey,
} from "#functions/ingest/check-raw-file.js";
import { ingestConfigSchema } from "#functions/ingest/ingest-config.js";
import { IngestFailedError, ingestS3Event, quarantineKeyFor } from "#functions/ingest/ingest-raw-files.js";
import { testRunConfig, testRunDependencies } from "../fixtures/run-dependencies.js";

const views = loadFeatureViews("resources/feature-views");
const energy = views.get("energy");
if (!energy) throw new Error("energy view missing");
const HEADER = energy.rawHeader.join(",");
const GOOD_CSV = `${HEADER}\nMAC000002,2012-10-12,0.1385,0.154,0.886,46,0.196,7.098,0.0\n`;

const s3Mock = mockClient(S3Client);
const emrMock = mockClient(EMRClient);
const s3 = new S3Client({ region: "eu-west-1" });
const emr = new EMRClient({ region: "eu-west-1" });
const config = { ...testRunConfig(), RAW_MAX_BYTES: 1_000_000 };
let deps = testRunDependencies({ emr, s3, views, config });

/** The two GetObject body readers the code uses, without a real stream. */
function body(text: string): never {
  const bytes = new Uint8Array(Buffer.from(text));
  return { transformToByteArray: async () => bytes, transformToString: async () => text } as never;
}

function s3Error(status: number, name: string): S3ServiceException {
  return new S3ServiceException({
    name,
    $fault: "client",
    $metadata: { httpStatusCode: status },
    message: name,
  });
}

function record(key: string, size: number, versionId = "v1") {
  return {
    eventVersion: "2.1",
    eventSource: "aws:s3",
    awsRegion: "eu-west-1",
    eventTime: "2026-11-26T18:59:00.000Z",
    eventName: "ObjectCreated:Put",
    userIdentity: { principalId: "AWS:X" },
    requestParameters: { sourceIPAddress: "127.0.0.1" },
    responseElements: { "x-amz-request-id": "r", "x-amz-id-2": "i" },
    s3: {
      s3SchemaVersion: "1.0",
      configurationId: "raw-csv",
      bucket: { name: "fs-raw", ownerIdentity: { principalId: "X" }, arn: "arn:aws:s3:::fs-raw" },
      object: { key, size, eTag: "etag-1", versionId, sequencer: "0055AED6DCD90281E5" },
    },
  };
}
function event(...records: ReturnType<typeof record>[]): S3Event {
  return { Records: records } as S3Event;
}

/** Serves object contents by key for ranged GETs. */
function serveObjects(objects: Record<string, string>) {
  s3Mock.on(GetObjectCommand).callsFake((input: { Key: string }) => {
    const text = objects[input.Key];
    if (text === undefined) throw s3Error(404, "NoSuchKey");
    const slice = Buffer.from(text).subarray(0, 65536);
    return {
      Body: body(slice.toString()),
      ContentRange: `bytes 0-${slice.length - 1}/${Buffer.byteLength(text)}`,
    };
  });
  s3Mock.on(PutObjectCommand).resolves({});
}

beforeEach(() => {
  s3Mock.reset();
  emrMock.reset();
  deps = testRunDependencies({ emr, s3, views, config });
  let step = 0;
  emrMock.on(AddJobFlowStepsCommand).callsFake(() => ({ StepIds: [`s-${++step}`] }));
  s3Mock.on(CopyObjectCommand).resolves({});
});

describe("S3 event keys", () => {
  it.each([
    ["raw/energy/my+file.csv", "raw/energy/my file.csv"],
    ["raw/energy/a%2Bb.csv", "raw/energy/a+b.csv"],
    ["raw/energy/%C3%A9nergie+%E2%9C%93.csv", "raw/energy/énergie ✓.csv"],
    ["raw/energy/2014%2F02/x.csv", "raw/energy/2014/02/x.csv"],
    ["raw/energy/plain.csv", "raw/energy/plain.csv"],
  ])("decodes %s to %s", (encoded, decoded) => {
    expect(decodeS3EventKey(encoded)).toBe(decoded);
  });

  it("routes raw/<view>/ keys to their view and names what is wrong with others", () => {
    expect(routeRawKey("raw/energy/a.csv", views)).toEqual({ view: energy });
    expect(routeRawKey("raw/energy/2014/a.csv", views)).toEqual({ view: energy });
    expect(routeRawKey("raw/weather/a.csv", views)).toMatchObject({
      viewName: "weather",
      problem: { code: "unknown_view" },
    });
    for (const key of ["raw/a.csv", "incoming/energy/a.csv", "raw/energy/a.txt", "raw//a.csv"]) {
      expect(routeRawKey(key, views)).toMatchObject({ problem: { code: "wrong_prefix" } });
    }
  });

  it("puts quarantined copies under quarantine/<view>/ keeping the rest of the path", () => {
    expect(quarantineKeyFor("raw/energy/2014/a b.csv", "energy")).toBe("quarantine/energy/2014/a b.csv");
    expect(quarantineKeyFor("raw/weather/a.csv", "weather")).toBe("quarantine/weather/a.csv");
    expect(quarantineKeyFor("raw/a.csv", undefined)).toBe("quarantine/_unrouted/raw/a.csv");
  });
});

describe("header and size checks", () => {
  const check = (text: string, size = Buffer.byteLength(text)) =>
    checkFileHead(Buffer.from(text), size, energy, 1_000_000).problems.map((p) => p.code);

  it("accepts the view's header, with CRLF, a BOM or quoted names", () => {
    expect(check(GOOD_CSV)).toEqual([]);
    expect(check(GOOD_CSV.replaceAll("\n", "\r\n"))).toEqual([]);
    expect(check(`\uFEFF${GOOD_CSV}`)).toEqual([]);
    expect(parseHeaderLine(' "household_id" , day')).toEqual(["household_id", "day"]);
  });

  it("names missing and extra columns", () => {
    const result = checkFileHead(
      Buffer.from(`${HEADER.replace(",energy_min", "")},tariff\nx\n`),
      100,
      energy,
      1_000_000,
    );
    expect(result.problems).toEqual([
      { code: "missing_columns", message: "Missing columns: energy_min", columns: ["energy_min"] },
      { code: "extra_columns", message: "Unexpected columns: tariff", columns: ["tariff"] },
    ]);
  });

  it("refuses columns out of order, empty files, oversized files, headers without rows", () => {
    const swapped = ["day", "household_id", ...energy.rawHeader.slice(2)].join(",");
    expect(check(`${swapped}\nx\n`)).toEqual(["column_order"]);
    expect(check("", 0)).toEqual(["empty"]);
    expect(check(GOOD_CSV, 2_000_000)).toEqual(["too_large"]);
    expect(check(`${HEADER}\n`)).toEqual(["no_rows"]);
    expect(check(`\n${GOOD_CSV}`)).toEqual(["no_header"]);
    expect(check("x".repeat(100), 1_000)).toEqual(["header_too_long"]);
  });
});

/** The --input arguments of every step added, in order. */
function stepInputs(): string[][] {
  return emrMock.commandCalls(AddJobFlowStepsCommand).map((c) => {
    const args = c.args[0].input.Steps?.[0]?.HadoopJarStep?.Args ?? [];
    return args.flatMap((a, i) => (args[i - 1] === "--input" ? [a] : []));
  });
}

const staged = (key: string, versionId = "v1") =>
  `s3://fs-raw/staging/energy/${fileIdOf({ bucket: "fs-raw", key, versionId, eTag: "etag-1" })}.csv`;

describe("ingestS3Event", () => {
  it("stages the checked version, queues it and starts one incremental run reading the staged copy", async () => {
    serveObjects({ "raw/energy/my file+1.csv": GOOD_CSV });
    const outcomes = await ingestS3Event(event(record("raw/energy/my+file%2B1.csv", GOOD_CSV.length)), deps);
    expect(outcomes).toEqual([
      expect.objectContaining({
        outcome: "queued",
        key: "raw/energy/my file+1.csv",
        run: expect.objectContaining({ status: "started", stepId: "s-1" }),
      }),
    ]);
    expect(s3Mock).toHaveReceivedCommandWith(GetObjectCommand, {
      Bucket: "fs-raw",
      Key: "raw/energy/my file+1.csv",
      VersionId: "v1",
      Range: "bytes=0-65535",
    });
    const fileId = fileIdOf({ bucket: "fs-raw", key: "raw/energy/my file+1.csv", versionId: "v1" });
    expect(s3Mock).toHaveReceivedCommandWith(CopyObjectCommand, {
      Bucket: "fs-raw",
      Key: `staging/energy/${fileId}.csv`,
      CopySource: "fs-raw/raw/energy/my%20file%2B1.csv?versionId=v1",
    });
    expect(stepInputs()).toEqual([[`s3://fs-raw/staging/energy/${fileId}.csv`]]);
    const args =
      emrMock.commandCalls(AddJobFlowStepsCommand)[0]?.args[0].input.Steps?.[0]?.HadoopJarStep?.Args;
    expect(args).toEqual(expect.arrayContaining(["--mode", "incremental", "--timeout-minutes", "120"]));
    const [file] = await listFiles(deps.ledger, "energy");
    expect(file).toMatchObject({
      state: "running",
      versionId: "v1",
      stagedUri: `s3://fs-raw/staging/energy/${fileId}.csv`,
    });
    expect(await readLock(deps.ledger, "energy")).toMatchObject({ state: "running", stepId: "s-1" });
  });

  it("records a redelivered event's version once and starts nothing more", async () => {
    serveObjects({ "raw/energy/a.csv": GOOD_CSV });
    const first = await ingestS3Event(event(record("raw/energy/a.csv", GOOD_CSV.length)), deps);
    const again = await ingestS3Event(event(record("raw/energy/a.csv", GOOD_CSV.length)), deps);
    expect(first[0]?.outcome).toBe("queued");
    expect(again).toEqual([
      expect.objectContaining({
        outcome: "already-recorded",
        state: "running",
        run: expect.objectContaining({ status: "busy" }),
      }),
    ]);
    expect(emrMock).toHaveReceivedCommandTimes(AddJobFlowStepsCommand, 1);
    expect(await listFiles(deps.ledger, "energy")).toHaveLength(1);
  });

  it("starts one run for files arriving together and keeps the others queued for the next", async () => {
    serveObjects({ "raw/energy/a.csv": GOOD_CSV, "raw/energy/b.csv": GOOD_CSV });
    await ingestS3Event(
      event(record("raw/energy/a.csv", GOOD_CSV.length), record("raw/energy/b.csv", GOOD_CSV.length)),
      deps,
    );
    await ingestS3Event(event(record("raw/energy/a.csv", GOOD_CSV.length, "v2")), deps);
    expect(emrMock).toHaveReceivedCommandTimes(AddJobFlowStepsCommand, 1);
    const files = await listFiles(deps.ledger, "energy");
    expect(files).toHaveLength(3);
    const running = files.filter((f) => f.state === "running");
    expect(running.length).toBeGreaterThanOrEqual(1);
    expect(files.filter((f) => f.state !== "running").every((f) => f.state === "queued")).toBe(true);
    expect(stepInputs()[0]?.sort()).toEqual(running.map((f) => f.stagedUri).sort());
  });

  it("fails the event when EMR refuses, keeps the file queued, and a later reconcile starts it", async () => {
    serveObjects({ "raw/energy/a.csv": GOOD_CSV });
    emrMock
      .on(AddJobFlowStepsCommand)
      .rejectsOnce(new Error("ThrottlingException"))
      .resolves({ StepIds: ["s-9"] });
    emrMock.on(ListStepsCommand).resolves({ Steps: [] });
    await expect(
      ingestS3Event(event(record("raw/energy/a.csv", GOOD_CSV.length)), deps),
    ).rejects.toBeInstanceOf(IngestFailedError);
    // Lambda's retry a minute later: the file is in the ledger, the lock is the dead starter's.
    deps.effects.clock = new Date(deps.effects.clock.getTime() + 60_000);
    const [retried] = await ingestS3Event(event(record("raw/energy/a.csv", GOOD_CSV.length)), deps);
    expect(retried).toMatchObject({ outcome: "already-recorded", state: "queued", run: { status: "busy" } });
    deps.effects.clock = new Date(deps.effects.clock.getTime() + START_LEASE_MS);
    expect(await reconcileView("energy", deps)).toMatchObject({ status: "started", stepId: "s-9" });
    expect(emrMock).toHaveReceivedCommandWith(ListStepsCommand, { ClusterId: "j-CLUSTER" });
    expect(stepInputs()).toEqual([[staged("raw/energy/a.csv")], [staged("raw/energy/a.csv")]]);
    expect((await listFiles(deps.ledger, "energy"))[0]).toMatchObject({ state: "running" });
  });

  describe("when ingest dies part-way (no file is ever reported a duplicate and forgotten)", () => {
    const key = "raw/energy/a.csv";
    const ingestOnce = () => ingestS3Event(event(record(key, GOOD_CSV.length)), deps);
    const later = (ms: number) => {
      deps.effects.clock = new Date(deps.effects.clock.getTime() + ms);
    };

    it("after writing the file item: the retried event stages, queues and starts it", async () => {
      serveObjects({ [key]: GOOD_CSV });
      s3Mock.on(CopyObjectCommand).rejectsOnce(new Error("socket hang up")).resolves({});
      await expect(ingestOnce()).rejects.toBeInstanceOf(IngestFailedError);
      expect((await listFiles(deps.ledger, "energy"))[0]).toMatchObject({ state: "received" });
      later(60_000);
      const [outcome] = await ingestOnce();
      expect(outcome).toMatchObject({ outcome: "queued", run: { status: "started" } });
      expect(stepInputs()).toEqual([[staged(key)]]);
    });

    it("after taking the lock: the retry finds it held, the reconcile frees it and starts the file", async () => {
      serveObjects({ [key]: GOOD_CSV });
      deps.ledger.fail = (op, _pk, sk) => op === "put" && sk.startsWith("RUN#");
      await expect(ingestOnce()).rejects.toBeInstanceOf(IngestFailedError);
      deps.ledger.fail = undefined;
      expect(await readLock(deps.ledger, "energy")).toMatchObject({ state: "starting" });
      later(60_000);
      expect((await ingestOnce())[0]).toMatchObject({ outcome: "already-recorded", run: { status: "busy" } });
      expect(emrMock).not.toHaveReceivedCommand(AddJobFlowStepsCommand);
      later(START_LEASE_MS);
      expect(await reconcileView("energy", deps)).toMatchObject({ status: "started" });
      expect(stepInputs()).toEqual([[staged(key)]]);
      expect((await listFiles(deps.ledger, "energy"))[0]).toMatchObject({ state: "running" });
    });

    it("after the step started: the take-over finds the step by name and adds no second one", async () => {
      serveObjects({ [key]: GOOD_CSV });
      deps.ledger.fail = (op, _pk, sk, changes) =>
        op === "update" && sk.startsWith("RUN#") && changes.state === "running";
      await expect(ingestOnce()).rejects.toBeInstanceOf(IngestFailedError);
      deps.ledger.fail = undefined;
      const lock = await readLock(deps.ledger, "energy");
      emrMock.on(ListStepsCommand).resolves({
        Steps: [
          { Id: "s-OTHER", Name: "feature-job energy incremental other" },
          { Id: "s-1", Name: `feature-job energy incremental ${lock?.runId}` },
        ],
      });
      later(START_LEASE_MS + 1);
      expect(await reconcileView("energy", deps)).toMatchObject({ status: "started", stepId: "s-1" });
      expect(emrMock).toHaveReceivedCommandTimes(AddJobFlowStepsCommand, 1);
      expect(await readLock(deps.ledger, "energy")).toMatchObject({ state: "running", stepId: "s-1" });
      expect((await listFiles(deps.ledger, "energy"))[0]).toMatchObject({
        state: "running",
        runId: lock?.runId,
      });
    });

    // ListSteps answers at most 50 steps a page, newest first (AWS_CONTRACTS E12): on a busy shared
    // cluster the dead starter's step can be on a later page by the time the take-over looks.
    const otherSteps = (count: number, from: Date, stepMs: number) =>
      Array.from({ length: count }, (_, i) => ({
        Id: `s-OTHER-${i}`,
        Name: `other team's step ${i}`,
        Status: {
          State: "PENDING" as const,
          Timeline: { CreationDateTime: new Date(from.getTime() - i * stepMs) },
        },
      }));

    it("after the step started, 50 newer steps on the cluster: the take-over pages on and finds it", async () => {
      serveObjects({ [key]: GOOD_CSV });
      const createdAt = deps.effects.clock;
      deps.ledger.fail = (op, _pk, sk, changes) =>
        op === "update" && sk.startsWith("RUN#") && changes.state === "running";
      await expect(ingestOnce()).rejects.toBeInstanceOf(IngestFailedError);
      deps.ledger.fail = undefined;
      const lock = await readLock(deps.ledger, "energy");
      later(START_LEASE_MS + 1);
      emrMock.on(ListStepsCommand).resolves({
        Steps: otherSteps(50, deps.effects.clock, 1000),
        Marker: "page-2",
      });
      emrMock.on(ListStepsCommand, { Marker: "page-2" }).resolves({
        Steps: [
          {
            Id: "s-1",
            Name: `feature-job energy incremental ${lock?.runId}`,
            Status: { State: "RUNNING", Timeline: { CreationDateTime: createdAt } },
          },
        ],
      });
      expect(await reconcileView("energy", deps)).toMatchObject({ status: "started", stepId: "s-1" });
      expect(emrMock).toHaveReceivedCommandTimes(AddJobFlowStepsCommand, 1);
      expect(await readLock(deps.ledger, "energy")).toMatchObject({ state: "running", stepId: "s-1" });
    });

    it("after the step was refused: the take-over stops paging at steps older than the run, and adds it", async () => {
      serveObjects({ [key]: GOOD_CSV });
      emrMock
        .on(AddJobFlowStepsCommand)
        .rejectsOnce(new Error("ThrottlingException"))
        .resolves({ StepIds: ["s-2"] });
      await expect(ingestOnce()).rejects.toBeInstanceOf(IngestFailedError);
      const before = new Date(deps.effects.clock.getTime() - 61_000);
      later(START_LEASE_MS + 1);
      emrMock.on(ListStepsCommand).resolves({ Steps: otherSteps(50, before, 60_000), Marker: "page-2" });
      emrMock
        .on(ListStepsCommand, { Marker: "page-2" })
        .rejects(new Error("page 2 is older still: not read"));
      expect(await reconcileView("energy", deps)).toMatchObject({ status: "started", stepId: "s-2" });
      expect(emrMock).toHaveReceivedCommandTimes(ListStepsCommand, 1);
      expect(emrMock).toHaveReceivedCommandTimes(AddJobFlowStepsCommand, 2);
    });

    // Found by tests/unit/orchestration-properties.test.ts (seeds 32677, 72272, 119786, 175219):
    // the run was recorded running but the lock stayed "starting", so the reconcile never asked
    // EMR about the step and, with its events lost, the view stayed locked for good.
    it("after recording the run running but not the lock: the reconcile closes the run from EMR", async () => {
      serveObjects({ [key]: GOOD_CSV });
      deps.ledger.fail = (op, _pk, sk, changes) =>
        op === "update" && sk === LOCK_SK && changes.state === "running";
      await expect(ingestOnce()).rejects.toBeInstanceOf(IngestFailedError);
      deps.ledger.fail = undefined;
      expect(await readLock(deps.ledger, "energy")).toMatchObject({ state: "starting" });
      // The step completes and its events never arrive.
      emrMock.on(DescribeStepCommand).resolves({ Step: { Id: "s-1", Status: { State: "COMPLETED" } } });
      later(START_LEASE_MS + 1);
      await reconcileView("energy", deps);
      later(5 * 60_000);
      await reconcileView("energy", deps);
      expect(emrMock).toHaveReceivedCommandTimes(AddJobFlowStepsCommand, 1);
      expect(await readLock(deps.ledger, "energy")).toMatchObject({ state: "idle" });
      expect((await listFiles(deps.ledger, "energy"))[0]).toMatchObject({ state: "succeeded" });
    });

    it("leaves a fresh 'starting' lock alone: its holder may still be running", async () => {
      serveObjects({ [key]: GOOD_CSV });
      await deps.ledger.put({
        pk: viewPk("energy"),
        sk: LOCK_SK,
        view: "energy",
        state: "starting",
        runId: "r-live",
        leaseUntil: deps.effects.clock.getTime() + 1000,
      });
      expect((await ingestOnce())[0]).toMatchObject({
        outcome: "queued",
        run: { status: "busy", runId: "r-live" },
      });
      expect(emrMock).not.toHaveReceivedCommand(ListStepsCommand);
      expect(emrMock).not.toHaveReceivedCommand(AddJobFlowStepsCommand);
      expect((await listFiles(deps.ledger, "energy"))[0]).toMatchObject({ state: "queued" });
    });
  });

  const rejections: Array<[string, string, string, string, string | undefined]> = [
    [
      "missing columns",
      "raw/energy/a.csv",
      `${HEADER.replace(",energy_min", "")}\nx\n`,
      "missing_columns",
      "quarantine/energy/a.csv",
    ],
    [
      "extra columns",
      "raw/energy/a.csv",
      `${HEADER},tariff\nx\n`,
      "extra_columns",
      "quarantine/energy/a.csv",
    ],
    ["an empty file", "raw/energy/a.csv", "", "empty", "quarantine/energy/a.csv"],
    ["an unknown view", "raw/weather/a.csv", GOOD_CSV, "unknown_view", "quarantine/weather/a.csv"],
    ["a wrong prefix", "raw/a.csv", GOOD_CSV, "wrong_prefix", "quarantine/_unrouted/raw/a.csv"],
  ];
  it.each(rejections)(
    "quarantines a file with %s and writes a report beside it",
    async (_n, key, text, code, target) => {
      serveObjects({ [key]: text });
      const [outcome] = await ingestS3Event(event(record(key, Buffer.byteLength(text))), deps);
      expect(outcome).toMatchObject({
        outcome: "quarantined",
        quarantineKey: target,
        reportKey: `${target}.report.json`,
      });
      expect(s3Mock).toHaveReceivedCommandWith(CopyObjectCommand, {
        Bucket: "fs-raw",
        Key: target,
        CopySource: `fs-raw/${key}?versionId=v1`,
      });
      const report = s3Mock
        .commandCalls(PutObjectCommand)
        .find((c) => c.args[0].input.Key === `${target}.report.json`);
      const parsed = JSON.parse(String(report?.args[0].input.Body));
      expect(parsed.problems.map((p: { code: string }) => p.code)).toEqual([code]);
      expect(parsed.file).toBe(`s3://fs-raw/${key}`);
      expect(s3Mock).not.toHaveReceivedCommand(DeleteObjectCommand);
      expect(emrMock).not.toHaveReceivedCommand(AddJobFlowStepsCommand);
      if (code !== "wrong_prefix" && code !== "unknown_view") {
        const view = key.split("/")[1] as string;
        expect((await listFiles(deps.ledger, view))[0]).toMatchObject({ state: "quarantined", key });
        expect(deps.effects.metrics).toEqual([{ name: "FilesQuarantined", view, value: 1 }]);
      }
    },
  );

  it("refuses a file over the size limit from the event alone, without reading it", async () => {
    serveObjects({});
    const [outcome] = await ingestS3Event(event(record("raw/energy/big.csv", 5_000_000)), deps);
    expect(outcome).toMatchObject({ outcome: "quarantined", problems: [{ code: "too_large" }] });
    expect(s3Mock).not.toHaveReceivedCommand(GetObjectCommand);
  });

  // CopyObject copies at most 5 GB (AWS_CONTRACTS S7): a bigger file gets its report but no copy.
  it.each([
    [5 * 1024 ** 3, true],
    [5 * 1024 ** 3 + 1, false],
  ])(
    "quarantines a file of %i bytes, copying it only within CopyObject's limit (%s)",
    async (size, copied) => {
      serveObjects({});
      const big = { ...deps, config: { ...deps.config, RAW_MAX_BYTES: 5 * 1024 ** 3 - 1 } };
      const [outcome] = await ingestS3Event(event(record("raw/energy/big.csv", size)), big);
      expect(outcome).toMatchObject({ outcome: "quarantined", problems: [{ code: "too_large" }] });
      expect(s3Mock.commandCalls(CopyObjectCommand).length).toBe(copied ? 1 : 0);
      const report = s3Mock
        .commandCalls(PutObjectCommand)
        .find((c) => c.args[0].input.Key === "quarantine/energy/big.csv.report.json");
      expect(JSON.parse(String(report?.args[0].input.Body)).copiedTo).toBe(
        copied ? "s3://fs-raw/quarantine/energy/big.csv" : null,
      );
    },
  );

  it("refuses a size limit past CopyObject's, since a good file is staged with one copy", () => {
    const limit = ingestConfigSchema.shape.RAW_MAX_BYTES;
    expect(limit.parse(undefined)).toBe(5 * 1024 ** 3);
    expect(limit.parse(String(5 * 1024 ** 3))).toBe(5 * 1024 ** 3);
    expect(limit.safeParse(String(5 * 1024 ** 3 + 1)).error?.issues[0]?.message).toMatch(/at most 5 GiB/);
  });

  it("URL-encodes the copy source of keys with spaces, plus signs and unicode", async () => {
    serveObjects({ "raw/energy/a b+é.csv": "" });
    await ingestS3Event(event(record("raw/energy/a+b%2B%C3%A9.csv", 0)), deps);
    expect(s3Mock).toHaveReceivedCommandWith(CopyObjectCommand, {
      Key: "quarantine/energy/a b+é.csv",
      CopySource: "fs-raw/raw/energy/a%20b%2B%C3%A9.csv?versionId=v1",
    });
  });

  it("ignores other buckets and other event types", async () => {
    const other = record("raw/energy/a.csv", 10);
    other.s3.bucket.name = "someone-else";
    const removed = { ...record("raw/energy/a.csv", 10), eventName: "ObjectRemoved:Delete" };
    const outcomes = await ingestS3Event(event(other, removed), deps);
    expect(outcomes.map((o) => o.outcome)).toEqual(["ignored", "ignored"]);
    expect(s3Mock).not.toHaveReceivedCommand(GetObjectCommand);
  });
});

describe("file identity", () => {
  const file = { bucket: "fs-raw", key: "raw/energy/a.csv", versionId: "v1", eTag: "e" };

  it("is one per object version: same version same id, another version or key another", () => {
    const a = fileIdOf(file);
    expect(fileIdOf({ ...file })).toBe(a);
    expect(fileIdOf({ ...file, versionId: "v2" })).not.toBe(a);
    expect(fileIdOf({ ...file, key: "raw/energy/b.csv" })).not.toBe(a);
    expect(fileIdOf({ ...file, versionId: undefined })).not.toBe(
      fileIdOf({ ...file, versionId: undefined, eTag: "f" }),
    );
    expect(a).toMatch(/^[0-9a-f]{64}$/);
  });

  it("is the same from a PutObject response (quoted ETag) and from S3's event (bare eTag)", () => {
    const unversioned = { bucket: "fs-raw", key: "raw/energy/a.csv" };
    expect(fileIdOf({ ...unversioned, eTag: '"9dd4e461268c8034f5c8564e155c67a6"' })).toBe(
      fileIdOf({ ...unversioned, eTag: "9dd4e461268c8034f5c8564e155c67a6" }),
    );
  });
});
