// Protects ingest: event keys decoded as S3 encodes them, header and size checks with every
// rejection path ending in quarantine + report, one job per object version however often the
// event is delivered, and one job per file when several arrive in one event.
import "aws-sdk-client-mock-vitest/extend";
import { AddJobFlowStepsCommand, EMRClient, ListStepsCommand } from "@aws-sdk/client-emr";
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
import { readFeatureJobConfig } from "../../functions/commons/feature-job-config.js";
import { loadFeatureViews } from "../../functions/commons/feature-view.js";
import {
  checkFileHead,
  decodeS3EventKey,
  parseHeaderLine,
  routeRawKey,
} from "../../functions/ingest/check-raw-file.js";
import { claimFile, claimLocation, claimRunId } from "../../functions/ingest/ingest-claim.js";
import {
  IngestFailedError,
  ingestS3Event,
  quarantineKeyFor,
} from "../../functions/ingest/ingest-raw-files.js";

const views = loadFeatureViews("resources/feature-views");
const energy = views.get("energy");
if (!energy) throw new Error("energy view missing");
const HEADER = energy.rawHeader.join(",");
const GOOD_CSV = `${HEADER}\nMAC000002,2012-10-12,0.1385,0.154,0.886,46,0.196,7.098,0.0\n`;

const s3Mock = mockClient(S3Client);
const emrMock = mockClient(EMRClient);
const s3 = new S3Client({ region: "eu-west-1" });
const emr = new EMRClient({ region: "eu-west-1" });
const config = {
  ...readFeatureJobConfig({
    RAW_BUCKET: "fs-raw",
    OFFLINE_BUCKET: "fs-offline",
    ARTIFACTS_BUCKET: "fs-artifacts",
    KEYSPACE: "feature_store",
    EMR_CLUSTER_ID: "j-CLUSTER",
  }),
  RAW_MAX_BYTES: 1_000_000,
};
const deps = { s3, emr, config, views, now: () => new Date("2026-11-26T19:00:00Z") };

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

/** Serves object contents by key for ranged GETs and tracks claim objects like S3 would. */
function serveObjects(objects: Record<string, string>) {
  const claims = new Map<string, string>();
  s3Mock.on(GetObjectCommand).callsFake((input: { Key: string }) => {
    if (claims.has(input.Key)) return { Body: body(claims.get(input.Key) ?? ""), ETag: '"c1"' };
    const text = objects[input.Key];
    if (text === undefined) throw s3Error(404, "NoSuchKey");
    const slice = Buffer.from(text).subarray(0, 65536);
    return {
      Body: body(slice.toString()),
      ContentRange: `bytes 0-${slice.length - 1}/${Buffer.byteLength(text)}`,
    };
  });
  s3Mock.on(PutObjectCommand).callsFake((input: { Key: string; Body: string; IfNoneMatch?: string }) => {
    if (input.Key.startsWith("ingest-claims/")) {
      if (input.IfNoneMatch === "*" && claims.has(input.Key)) throw s3Error(412, "PreconditionFailed");
      claims.set(input.Key, input.Body);
    }
    return {};
  });
  s3Mock.on(DeleteObjectCommand).callsFake((input: { Key: string }) => {
    claims.delete(input.Key);
    return {};
  });
  return claims;
}

beforeEach(() => {
  s3Mock.reset();
  emrMock.reset();
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

describe("ingestS3Event", () => {
  it("starts one incremental step for a good file, on the decoded key, and records the claim", async () => {
    const claims = serveObjects({ "raw/energy/my file+1.csv": GOOD_CSV });
    const outcomes = await ingestS3Event(event(record("raw/energy/my+file%2B1.csv", GOOD_CSV.length)), deps);
    expect(outcomes).toEqual([
      expect.objectContaining({ outcome: "started", key: "raw/energy/my file+1.csv", stepIds: ["s-1"] }),
    ]);
    expect(s3Mock).toHaveReceivedCommandWith(GetObjectCommand, {
      Bucket: "fs-raw",
      Key: "raw/energy/my file+1.csv",
      VersionId: "v1",
      Range: "bytes=0-65535",
    });
    const args =
      emrMock.commandCalls(AddJobFlowStepsCommand)[0]?.args[0].input.Steps?.[0]?.HadoopJarStep?.Args;
    expect(args).toEqual(expect.arrayContaining(["--input", "s3://fs-raw/raw/energy/my file+1.csv"]));
    expect(args).toEqual(expect.arrayContaining(["--mode", "incremental"]));
    const [claim] = [...claims.values()].map((v) => JSON.parse(v));
    expect(claim).toMatchObject({ state: "started", clusterId: "j-CLUSTER", stepIds: ["s-1"] });
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: "fs-artifacts", IfNoneMatch: "*" });
  });

  it("starts nothing for a redelivered event of the same object version", async () => {
    serveObjects({ "raw/energy/a.csv": GOOD_CSV });
    const first = await ingestS3Event(event(record("raw/energy/a.csv", GOOD_CSV.length)), deps);
    const again = await ingestS3Event(event(record("raw/energy/a.csv", GOOD_CSV.length)), deps);
    expect(first[0]?.outcome).toBe("started");
    expect(again).toEqual([
      { outcome: "duplicate", key: "raw/energy/a.csv", runId: (first[0] as { runId: string }).runId },
    ]);
    expect(emrMock).toHaveReceivedCommandTimes(AddJobFlowStepsCommand, 1);
  });

  it("starts one step per file when two files arrive in one event, and again for a new version", async () => {
    serveObjects({ "raw/energy/a.csv": GOOD_CSV, "raw/energy/b.csv": GOOD_CSV });
    const outcomes = await ingestS3Event(
      event(record("raw/energy/a.csv", GOOD_CSV.length), record("raw/energy/b.csv", GOOD_CSV.length)),
      deps,
    );
    expect(outcomes.map((o) => o.outcome)).toEqual(["started", "started"]);
    await ingestS3Event(event(record("raw/energy/a.csv", GOOD_CSV.length, "v2")), deps);
    expect(emrMock).toHaveReceivedCommandTimes(AddJobFlowStepsCommand, 3);
    const inputs = emrMock
      .commandCalls(AddJobFlowStepsCommand)
      .map((c) =>
        c.args[0].input.Steps?.[0]?.HadoopJarStep?.Args?.filter((a) => a.startsWith("s3://fs-raw/")),
      );
    expect(inputs).toEqual([
      ["s3://fs-raw/raw/energy/a.csv"],
      ["s3://fs-raw/raw/energy/b.csv"],
      ["s3://fs-raw/raw/energy/a.csv"],
    ]);
  });

  it("releases the claim and fails the event when EMR refuses, so the retry can start the job", async () => {
    const claims = serveObjects({ "raw/energy/a.csv": GOOD_CSV, "raw/energy/b.csv": GOOD_CSV });
    emrMock
      .on(AddJobFlowStepsCommand)
      .rejectsOnce(new Error("ThrottlingException"))
      .resolves({ StepIds: ["s-9"] });
    const failing = ingestS3Event(
      event(record("raw/energy/a.csv", GOOD_CSV.length), record("raw/energy/b.csv", GOOD_CSV.length)),
      deps,
    );
    await expect(failing).rejects.toBeInstanceOf(IngestFailedError);
    expect(claims.size).toBe(1);
    expect(s3Mock).toHaveReceivedCommand(DeleteObjectCommand);
    const retried = await ingestS3Event(
      event(record("raw/energy/a.csv", GOOD_CSV.length), record("raw/energy/b.csv", GOOD_CSV.length)),
      deps,
    );
    expect(retried.map((o) => o.outcome).sort()).toEqual(["duplicate", "started"]);
  });

  describe("after an invocation died holding a claim", () => {
    const key = "raw/energy/a.csv";
    const file = { bucket: "fs-raw", key, versionId: "v1", eTag: "etag-1" };
    const claim = claimLocation("fs-artifacts", "energy", file);
    const runId = claimRunId(claim, new Date("2026-11-26T18:59:00.000Z"));
    const stuck = { state: "starting", claimedAt: "2026-11-26T18:50:00Z", file, runId };

    it("does not add the step again when the cluster already has it", async () => {
      const claims = serveObjects({ [key]: GOOD_CSV });
      claims.set(claim.key, JSON.stringify(stuck));
      emrMock.on(ListStepsCommand).resolves({
        Steps: [
          { Id: "s-OTHER", Name: "feature-job energy incremental other" },
          { Id: "s-DONE", Name: `feature-job energy incremental ${runId}` },
        ],
      });
      const [outcome] = await ingestS3Event(event(record(key, GOOD_CSV.length)), deps);
      expect(outcome).toEqual({ outcome: "duplicate", key, runId });
      expect(emrMock).not.toHaveReceivedCommand(AddJobFlowStepsCommand);
      expect(emrMock).toHaveReceivedCommandWith(ListStepsCommand, { ClusterId: "j-CLUSTER" });
      expect(JSON.parse(claims.get(claim.key) ?? "{}")).toMatchObject({
        state: "started",
        stepIds: ["s-DONE"],
      });
    });

    it("adds the step when the cluster does not have it", async () => {
      const claims = serveObjects({ [key]: GOOD_CSV });
      claims.set(claim.key, JSON.stringify(stuck));
      emrMock.on(ListStepsCommand).resolves({ Steps: [] });
      const [outcome] = await ingestS3Event(event(record(key, GOOD_CSV.length)), deps);
      expect(outcome).toMatchObject({ outcome: "started", runId, stepIds: ["s-1"] });
      expect(emrMock).toHaveReceivedCommandTimes(AddJobFlowStepsCommand, 1);
    });

    it("leaves a fresh claim alone: its holder may still be running", async () => {
      const claims = serveObjects({ [key]: GOOD_CSV });
      claims.set(claim.key, JSON.stringify({ ...stuck, claimedAt: "2026-11-26T18:59:30Z" }));
      const [outcome] = await ingestS3Event(event(record(key, GOOD_CSV.length)), deps);
      expect(outcome).toEqual({ outcome: "duplicate", key, runId });
      expect(emrMock).not.toHaveReceivedCommand(ListStepsCommand);
      expect(emrMock).not.toHaveReceivedCommand(AddJobFlowStepsCommand);
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
    },
  );

  it("refuses a file over the size limit from the event alone, without reading it", async () => {
    serveObjects({});
    const [outcome] = await ingestS3Event(event(record("raw/energy/big.csv", 5_000_000)), deps);
    expect(outcome).toMatchObject({ outcome: "quarantined", problems: [{ code: "too_large" }] });
    expect(s3Mock).not.toHaveReceivedCommand(GetObjectCommand);
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

describe("claims", () => {
  const file = { bucket: "fs-raw", key: "raw/energy/a.csv", versionId: "v1", eTag: "e" };

  it("identify an object version: same version same claim, other version or key another", () => {
    const a = claimLocation("art", "energy", file);
    expect(claimLocation("art", "energy", { ...file })).toEqual(a);
    expect(claimLocation("art", "energy", { ...file, versionId: "v2" })).not.toEqual(a);
    expect(claimLocation("art", "energy", { ...file, key: "raw/energy/b.csv" })).not.toEqual(a);
    expect(claimLocation("art", "energy", { ...file, versionId: undefined })).not.toEqual(
      claimLocation("art", "energy", { ...file, versionId: undefined, eTag: "f" }),
    );
    expect(a.key).toMatch(/^ingest-claims\/energy\/[0-9a-f]{64}\.json$/);
  });

  it("take over a claim stuck in 'starting' past the stale limit, with If-Match on its ETag", async () => {
    const stuck = { state: "starting", claimedAt: "2026-11-26T18:00:00Z", file, runId: "old" };
    s3Mock.on(PutObjectCommand, { IfNoneMatch: "*" }).rejects(s3Error(412, "PreconditionFailed"));
    s3Mock.on(GetObjectCommand).resolves({ Body: body(JSON.stringify(stuck)), ETag: '"e1"' });
    s3Mock.on(PutObjectCommand, { IfMatch: '"e1"' }).resolves({});
    const at = { bucket: "art", key: "ingest-claims/energy/x.json" };
    const record = { state: "starting" as const, claimedAt: "2026-11-26T19:00:00Z", file, runId: "new" };
    expect(await claimFile(s3, at, record, new Date("2026-11-26T19:00:00Z"))).toEqual({
      status: "claimed",
      takenOver: true,
    });
    expect(await claimFile(s3, at, record, new Date("2026-11-26T18:01:00Z"))).toMatchObject({
      status: "duplicate",
      existing: { runId: "old" },
    });
  });

  it("treat a concurrent conditional write (409) as someone else's claim", async () => {
    s3Mock.on(PutObjectCommand).rejects(s3Error(409, "ConditionalRequestConflict"));
    s3Mock.on(GetObjectCommand).resolves({ Body: body("{}"), ETag: '"e"' });
    const at = { bucket: "art", key: "ingest-claims/energy/y.json" };
    const record = { state: "starting" as const, claimedAt: "2026-11-26T19:00:00Z", file, runId: "r" };
    expect(await claimFile(s3, at, record, new Date())).toMatchObject({ status: "duplicate" });
  });
});
