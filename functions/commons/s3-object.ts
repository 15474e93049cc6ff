// Small S3 operations the ingest and submit functions share: s3:// URIs, reading only the head of
// an object, listing a prefix, copying one object version and conditional JSON writes.
import {
  CopyObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  type S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";

export interface S3Location {
  readonly bucket: string;
  readonly key: string;
}

/** Parses `s3://bucket/key`; undefined when it is not one. */
export function parseS3Uri(uri: string): S3Location | undefined {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+)$/.exec(uri);
  if (!match) return undefined;
  return { bucket: match[1] as string, key: match[2] as string };
}

export function s3Uri(location: S3Location): string {
  return `s3://${location.bucket}/${location.key}`;
}

export interface ObjectHead {
  /** The first bytes of the object (at most the requested number). */
  readonly bytes: Uint8Array;
  /** The object's full size, from Content-Range (or Content-Length when the object is smaller). */
  readonly size: number;
}

/**
 * Reads only the first `length` bytes with a ranged GET, so a multi-GB file costs one small read.
 * An empty object answers a range with 416 InvalidRange: that is reported as size 0.
 */
export async function readObjectHead(
  s3: S3Client,
  at: S3Location & { versionId?: string | undefined },
  length: number,
): Promise<ObjectHead> {
  try {
    const response = await s3.send(
      new GetObjectCommand({
        Bucket: at.bucket,
        Key: at.key,
        VersionId: at.versionId,
        Range: `bytes=0-${length - 1}`,
      }),
    );
    const bytes = (await response.Body?.transformToByteArray()) ?? new Uint8Array();
    const total = /\/(\d+)$/.exec(response.ContentRange ?? "")?.[1];
    return { bytes, size: total !== undefined ? Number(total) : (response.ContentLength ?? bytes.length) };
  } catch (error) {
    if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 416) {
      return { bytes: new Uint8Array(), size: 0 };
    }
    throw error;
  }
}

/** Server-side copy of one object version (CopyObject handles objects up to 5 GB). */
/**
 * CopyObject copies at most 5 GB in one operation; larger objects need a multipart copy
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/CopyingObjctsMPUapi.html, AWS_CONTRACTS S7).
 */
export const COPY_OBJECT_MAX_BYTES = 5 * 1024 ** 3;

export async function copyObjectVersion(
  s3: S3Client,
  from: S3Location & { versionId?: string | undefined },
  to: S3Location,
): Promise<void> {
  // CopySource is "bucket/key[?versionId=...]" with the key URL-encoded (slashes kept).
  const encodedKey = from.key.split("/").map(encodeURIComponent).join("/");
  const source = `${from.bucket}/${encodedKey}${from.versionId ? `?versionId=${encodeURIComponent(from.versionId)}` : ""}`;
  // Tags are not copied (REPLACE with none), so no s3:GetObjectTagging on the source is needed.
  await s3.send(
    new CopyObjectCommand({
      Bucket: to.bucket,
      Key: to.key,
      CopySource: source,
      TaggingDirective: "REPLACE",
    }),
  );
}

export async function putJsonObject(s3: S3Client, at: S3Location, body: unknown): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: at.bucket,
      Key: at.key,
      Body: `${JSON.stringify(body, null, 2)}\n`,
      ContentType: "application/json",
    }),
  );
}

/** True when S3 refused a conditional write because the condition did not hold. */
export function isPreconditionFailure(error: unknown): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  const status = error.$metadata.httpStatusCode;
  // 412: the object exists (If-None-Match) or changed (If-Match); 409: a concurrent conditional
  // write to the same key is in flight, and the other writer wins.
  return status === 412 || status === 409 || error.name === "PreconditionFailed";
}
