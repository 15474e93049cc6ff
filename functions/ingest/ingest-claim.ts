// Duplicate suppression for S3 events (delivery is at-least-once): before starting a job for an
// object version, ingest creates a claim object with a conditional write (If-None-Match: *).
// S3 lets exactly one writer create a key, so a redelivered event, even concurrent with the
// first, finds the claim and starts nothing. Different files get different claims.
import { createHash } from "node:crypto";
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { isPreconditionFailure, type S3Location } from "../commons/s3-object.js";

export const CLAIMS_PREFIX = "ingest-claims/";

/**
 * A claim left "starting" longer than this belongs to an invocation that died mid-way (Lambda
 * stops ingest after its 60 s timeout), so a retried event may take it over. Lambda retries a
 * failed asynchronous event after about 1 and 3 minutes, so the second retry can always do so.
 */
export const STALE_CLAIM_MS = 120 * 1000;

export interface ClaimedFile {
  readonly bucket: string;
  readonly key: string;
  readonly versionId?: string | undefined;
  readonly eTag?: string | undefined;
}

export interface ClaimRecord {
  readonly state: "starting" | "started";
  readonly claimedAt: string;
  readonly file: ClaimedFile;
  readonly runId: string;
  readonly clusterId?: string;
  readonly stepIds?: readonly string[];
}

export type ClaimOutcome =
  | { readonly status: "claimed"; readonly takenOver: boolean }
  | { readonly status: "duplicate"; readonly existing: ClaimRecord | undefined };

/**
 * The identity of one object version: bucket, key and version id (the raw bucket is versioned);
 * the ETag stands in when there is no version id. Same version → same claim key.
 */
export function claimLocation(claimsBucket: string, view: string, file: ClaimedFile): S3Location {
  const identity = [
    file.bucket,
    file.key,
    file.versionId ?? "",
    file.versionId ? "" : (file.eTag ?? ""),
  ].join("\n");
  const digest = createHash("sha256").update(identity).digest("hex");
  return { bucket: claimsBucket, key: `${CLAIMS_PREFIX}${view}/${digest}.json` };
}

/** A run id derived from the claim, so a redelivered event would name the same run. */
export function claimRunId(claim: S3Location, eventTime: Date): string {
  const stamp = eventTime
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
  const digest = /([0-9a-f]{64})\.json$/.exec(claim.key)?.[1] ?? "";
  return `${stamp}-${digest.slice(0, 12)}`;
}

function body(record: ClaimRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}

async function readClaim(
  s3: S3Client,
  at: S3Location,
): Promise<{ record: ClaimRecord | undefined; eTag: string | undefined }> {
  const response = await s3.send(new GetObjectCommand({ Bucket: at.bucket, Key: at.key }));
  const text = (await response.Body?.transformToString("utf-8")) ?? "";
  try {
    return { record: JSON.parse(text) as ClaimRecord, eTag: response.ETag };
  } catch {
    return { record: undefined, eTag: response.ETag };
  }
}

/** Writes the claim; with a condition, only if it holds (no object yet, or the stale one we read). */
async function putClaim(
  s3: S3Client,
  at: S3Location,
  record: ClaimRecord,
  condition: { IfNoneMatch: "*" } | { IfMatch: string } | Record<string, never> = {},
): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: at.bucket,
      Key: at.key,
      Body: body(record),
      ContentType: "application/json",
      ...condition,
    }),
  );
}

/** Creates the claim, or reports the existing one. Takes over a claim stuck in "starting". */
export async function claimFile(
  s3: S3Client,
  at: S3Location,
  record: ClaimRecord,
  now: Date,
  staleAfterMs = STALE_CLAIM_MS,
): Promise<ClaimOutcome> {
  try {
    await putClaim(s3, at, record, { IfNoneMatch: "*" });
    return { status: "claimed", takenOver: false };
  } catch (error) {
    if (!isPreconditionFailure(error)) throw error;
  }
  const existing = await readClaim(s3, at);
  const claimedAt = Date.parse(existing.record?.claimedAt ?? "");
  const stale =
    existing.record?.state === "starting" &&
    Number.isFinite(claimedAt) &&
    now.getTime() - claimedAt > staleAfterMs;
  if (!stale || existing.eTag === undefined) return { status: "duplicate", existing: existing.record };
  try {
    // If-Match: only one of several concurrent take-overs replaces the stale claim.
    await putClaim(s3, at, record, { IfMatch: existing.eTag });
    return { status: "claimed", takenOver: true };
  } catch (error) {
    if (isPreconditionFailure(error)) return { status: "duplicate", existing: existing.record };
    throw error;
  }
}

/** Records what the claim started (for people tracing a file to its EMR step). */
export async function completeClaim(s3: S3Client, at: S3Location, record: ClaimRecord): Promise<void> {
  await putClaim(s3, at, record);
}

/** Gives the claim back when starting the job failed, so the retried event can start it. */
export async function releaseClaim(s3: S3Client, at: S3Location): Promise<void> {
  await s3.send(new DeleteObjectCommand({ Bucket: at.bucket, Key: at.key }));
}
