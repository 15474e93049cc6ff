// The raw bucket's own event notifications, end to end on moto: an upload to the versioned raw
// bucket reaches the real ingest handler through the local S3 → SQS → poller path (local/s3-events.ts),
// and the file's run-ledger item is the one its uploader finds from the PutObject response
// (bucket, key, version id, ETag), as `npm run local:upload` follows it. S3 sends a versioned bucket's
// events with the object's `versionId` (AWS_CONTRACTS S4); an event without it made ingest file the
// upload under another id, so local:upload waited its whole timeout for a run that had long ended.

import { randomBytes } from "node:crypto";
import { Logger } from "@aws-lambda-powertools/logger";
import { PutObjectCommand, type PutObjectCommandOutput } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConfigSchema } from "#commons/feature-job-config.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { runDependencies } from "#commons/run-adapters.js";
import { fileIdOf, listFiles, readFile } from "#commons/run-ledger.js";
import type { RunLedgerStore } from "#commons/run-ledger-store.js";
import { createIngestHandler } from "#functions/ingest/ingest-handler.js";
import type { IngestOutcome } from "#functions/ingest/ingest-raw-files.js";
import { createLocalAws, type LocalAws, type LocalAwsClients, localAwsClients } from "#local/local-aws.js";
import { type IngestHandler, S3EventPoller, type S3EventReport } from "#local/s3-events.js";
import { createRunLedgerTable, ensureMoto, MOTO_URL, pointSdkAtMoto } from "./aws-moto-env.js";

const energy = loadFeatureViews("resources/feature-views").get("energy");
const HEADER = energy?.rawHeader.join(",") ?? "";
const GOOD_CSV = `${HEADER}\nMAC000002,2012-10-12,0.1385,0.154,0.886,46,0.196,7.098,0.0\n`;

let stopMoto = () => {};
let clients: LocalAwsClients;
let aws: LocalAws;
let ledger: RunLedgerStore;
let poller: S3EventPoller;
const reports: S3EventReport[] = [];

beforeAll(async () => {
  stopMoto = ensureMoto();
  pointSdkAtMoto();
  clients = localAwsClients(MOTO_URL);
  const suffix = randomBytes(4).toString("hex");
  aws = await createLocalAws(
    MOTO_URL,
    clients,
    {
      raw: `it-events-raw-${suffix}`,
      offline: `it-events-offline-${suffix}`,
      artifacts: `it-events-art-${suffix}`,
    },
    `it-events-${suffix}`,
  );
  const config = {
    ...runConfigSchema.parse({
      RAW_BUCKET: aws.buckets.raw,
      OFFLINE_BUCKET: aws.buckets.offline,
      ARTIFACTS_BUCKET: aws.buckets.artifacts,
      KEYSPACE: "feature_store",
      EMR_CLUSTER_ID: aws.clusterId,
      FEATURE_VIEWS_DIR: "resources/feature-views",
      RUN_LEDGER_TABLE: await createRunLedgerTable("events"),
    }),
    RAW_MAX_BYTES: 1_000_000,
  };
  const deps = { ...runDependencies(config), config };
  ledger = deps.ledger;
  const handler = createIngestHandler(deps, new Logger({ logLevel: "WARN" })) as unknown as IngestHandler;
  poller = new S3EventPoller(clients.sqs, aws.queueUrl, handler, (report) => reports.push(report));
});

afterAll(async () => {
  await poller?.stop();
  stopMoto();
});

/** Uploads as local:upload does, then lets the poller deliver S3's notification to ingest. */
async function uploadAndDeliver(key: string, body: string): Promise<PutObjectCommandOutput> {
  const put = await clients.s3.send(
    new PutObjectCommand({ Bucket: aws.buckets.raw, Key: key, Body: body, ContentType: "text/csv" }),
  );
  const seen = reports.length;
  for (let i = 0; i < 10 && !reports.slice(seen).some((r) => r.kind === "outcomes"); i++) {
    await poller.pollOnce(1);
  }
  const delivered = reports.slice(seen).flatMap((r) => (r.kind === "outcomes" ? r.outcomes : []));
  expect(delivered.map((o: IngestOutcome) => [o.outcome, o.key])).toEqual([["queued", key]]);
  return put;
}

/** The id local:upload follows: computed from the PutObject response alone. */
function uploadedFileId(key: string, put: PutObjectCommandOutput): string {
  return fileIdOf({ bucket: aws.buckets.raw, key, versionId: put.VersionId, eTag: put.ETag });
}

describe("S3 event notifications of the raw bucket on moto", () => {
  it("file the upload under the id its PutObject response gives, with the version S3 created", async () => {
    // A key S3 URL-encodes in the event (space → "+", "+" → "%2B"): ingest decodes it (S3).
    const key = "raw/energy/2014-03 day+1 upload.csv";
    const put = await uploadAndDeliver(key, GOOD_CSV);
    expect(put.VersionId).toBeTruthy();
    const item = await readFile(ledger, "energy", uploadedFileId(key, put));
    expect(item).toMatchObject({ key, versionId: put.VersionId });
  });

  it("keep two uploads of the same bytes to the same key apart, each found by its own response", async () => {
    const key = "raw/energy/same-bytes-twice.csv";
    const first = await uploadAndDeliver(key, GOOD_CSV);
    const second = await uploadAndDeliver(key, GOOD_CSV);
    expect(second.VersionId).not.toBe(first.VersionId);
    expect(second.ETag).toBe(first.ETag);
    const items = (await listFiles(ledger, "energy")).filter((f) => f.key === key);
    expect(items.map((f) => f.versionId).sort()).toEqual([first.VersionId, second.VersionId].sort());
    expect(await readFile(ledger, "energy", uploadedFileId(key, first))).toMatchObject({
      versionId: first.VersionId,
    });
    expect(await readFile(ledger, "energy", uploadedFileId(key, second))).toMatchObject({
      versionId: second.VersionId,
    });
  });
});
