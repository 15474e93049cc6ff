// ingest's domain: for each new raw file in an S3 event, either record it in the run ledger,
// stage the exact version that was checked and queue it for its view's next run (starting that
// run when none is going), or copy it to quarantine/ with a report of what is wrong.
import type { S3Client } from "@aws-sdk/client-s3";
import type { S3Event } from "aws-lambda";
import type { RunConfig } from "#commons/feature-job-config.js";
import type { RunDependencies, StartOutcome } from "#commons/feature-runs.js";
import type { FeatureView } from "#commons/feature-view.js";
import {
  expiresAt,
  type FileState,
  fileIdOf,
  fileSk,
  ledgerItem,
  readFile,
  stagingKey,
  viewPk,
} from "#commons/run-ledger.js";
import { COPY_OBJECT_MAX_BYTES, copyObjectVersion, putJsonObject, s3Uri } from "#commons/s3-object.js";
import { startNextRun } from "#commons/start-runs.js";
import { checkRawFile, decodeS3EventKey, type RawFileProblem, type RawFileRef } from "./check-raw-file.js";

export interface IngestDependencies extends RunDependencies {
  readonly s3: S3Client;
  readonly config: RunConfig & { readonly RAW_MAX_BYTES: number };
  readonly views: ReadonlyMap<string, FeatureView>;
}

export interface NewRawFile extends RawFileRef {
  readonly eventName: string;
  readonly eventTime: Date;
}

export type IngestOutcome =
  | {
      /** Recorded, staged and queued; `run` says whether this invocation started the view's next run. */
      readonly outcome: "queued";
      readonly key: string;
      readonly fileId: string;
      readonly run: StartOutcome;
    }
  | {
      /** The ledger already has this object version (a redelivered event): it is not lost, it is there. */
      readonly outcome: "already-recorded";
      readonly key: string;
      readonly fileId: string;
      readonly state: FileState;
      readonly runId: string | undefined;
      readonly run: StartOutcome;
    }
  | {
      readonly outcome: "quarantined";
      readonly key: string;
      readonly quarantineKey: string | undefined;
      readonly reportKey: string;
      readonly problems: readonly RawFileProblem[];
    }
  | { readonly outcome: "ignored"; readonly key: string; readonly reason: string };

/** The files an S3 event notification announces, keys decoded. */
export function newRawFiles(event: S3Event): NewRawFile[] {
  return (event.Records ?? []).map((record) => ({
    eventName: record.eventName,
    eventTime: new Date(record.eventTime),
    bucket: record.s3.bucket.name,
    key: decodeS3EventKey(record.s3.object.key),
    versionId: record.s3.object.versionId || undefined,
    eTag: record.s3.object.eTag || undefined,
    size: typeof record.s3.object.size === "number" ? record.s3.object.size : undefined,
  }));
}

/** quarantine/<view>/<rest of the key> for raw/<view>/<rest>; keys off that shape keep their path. */
export function quarantineKeyFor(key: string, viewName: string | undefined): string {
  const parts = key.split("/");
  if (viewName !== undefined && parts[0] === "raw" && parts[1] === viewName) {
    return ["quarantine", viewName, ...parts.slice(2)].join("/");
  }
  return `quarantine/_unrouted/${key}`;
}

async function quarantine(
  file: NewRawFile,
  verdict: {
    viewName: string | undefined;
    problems: readonly RawFileProblem[];
    size?: number;
    header?: readonly string[];
  },
  deps: IngestDependencies,
): Promise<IngestOutcome> {
  const target = quarantineKeyFor(file.key, verdict.viewName);
  const size = verdict.size ?? file.size;
  // Only raw/ is readable by this function, and CopyObject stops at 5 GB: a larger bad file gets its
  // report but stays only in raw/.
  const copyable = file.key.startsWith("raw/") && (size === undefined || size <= COPY_OBJECT_MAX_BYTES);
  if (copyable) {
    await copyObjectVersion(deps.s3, file, { bucket: file.bucket, key: target });
  }
  const reportKey = `${target}.report.json`;
  const view = verdict.viewName ? deps.views.get(verdict.viewName) : undefined;
  await putJsonObject(
    deps.s3,
    { bucket: file.bucket, key: reportKey },
    {
      file: s3Uri(file),
      versionId: file.versionId ?? null,
      eTag: file.eTag ?? null,
      size: size ?? null,
      view: verdict.viewName ?? null,
      copiedTo: copyable ? s3Uri({ bucket: file.bucket, key: target }) : null,
      problems: verdict.problems,
      ...(verdict.header ? { header: verdict.header } : {}),
      ...(view ? { expectedHeader: view.rawHeader } : {}),
      checkedAt: (deps.now?.() ?? new Date()).toISOString(),
      note: "The original file is left in place; fix it and upload it again under raw/<view>/.",
    },
  );
  if (view) {
    const at = deps.now?.() ?? new Date();
    const fileId = fileIdOf(file);
    const recorded = await deps.ledger.put(
      ledgerItem(viewPk(view.name), fileSk(fileId), {
        view: view.name,
        fileId,
        state: "quarantined",
        bucket: file.bucket,
        key: file.key,
        versionId: file.versionId,
        eTag: file.eTag,
        receivedAt: at.toISOString(),
        updatedAt: at.toISOString(),
        reportKey,
        error: verdict.problems.map((p) => p.message).join("; "),
        expiresAt: expiresAt(at),
      }),
      { ifAbsent: true },
    );
    if (recorded) deps.metrics?.count("FilesQuarantined", view.name);
  }
  return {
    outcome: "quarantined",
    key: file.key,
    quarantineKey: copyable ? target : undefined,
    reportKey,
    problems: verdict.problems,
  };
}

/**
 * Checks one new file; a good one goes received → (staged) → queued in the ledger and the view's
 * next run is started if none is going. Each write is idempotent, so a retried event after a
 * crash at any point carries the file on from where it stopped; a file once queued is started by
 * this or a later ingest, by the end of the running run, or by the scheduled reconcile.
 */
export async function ingestRawFile(file: NewRawFile, deps: IngestDependencies): Promise<IngestOutcome> {
  if (!file.eventName.startsWith("ObjectCreated:")) {
    return { outcome: "ignored", key: file.key, reason: `event ${file.eventName}` };
  }
  if (file.bucket !== deps.config.RAW_BUCKET) {
    return { outcome: "ignored", key: file.key, reason: `bucket ${file.bucket} is not the raw bucket` };
  }
  const verdict = await checkRawFile(file, {
    s3: deps.s3,
    views: deps.views,
    maxBytes: deps.config.RAW_MAX_BYTES,
  });
  if (!verdict.ok) return quarantine(file, verdict, deps);

  const view = verdict.view.name;
  const fileId = fileIdOf(file);
  const receivedAt = (deps.now?.() ?? new Date()).toISOString();
  const created = await deps.ledger.put(
    ledgerItem(viewPk(view), fileSk(fileId), {
      view,
      fileId,
      state: "received",
      bucket: file.bucket,
      key: file.key,
      versionId: file.versionId,
      eTag: file.eTag,
      receivedAt,
      updatedAt: receivedAt,
    }),
    { ifAbsent: true },
  );
  const existing = created ? undefined : await readFile(deps.ledger, view, fileId);
  if (existing && existing.state !== "received") {
    const run = await startNextRun(view, deps, "ingest");
    return {
      outcome: "already-recorded",
      key: file.key,
      fileId,
      state: existing.state,
      runId: existing.runId,
      run,
    };
  }
  // The job reads this copy of the checked version only: a later upload to the same key cannot
  // change what runs, and the staged key has no glob characters for Spark to expand.
  const staged = { bucket: deps.config.RAW_BUCKET, key: stagingKey(view, fileId) };
  await copyObjectVersion(deps.s3, file, staged);
  await deps.ledger.update(
    viewPk(view),
    fileSk(fileId),
    { state: "queued", stagedUri: s3Uri(staged), updatedAt: (deps.now?.() ?? new Date()).toISOString() },
    { equals: { state: "received" } },
  );
  const run = await startNextRun(view, deps, "ingest");
  return { outcome: "queued", key: file.key, fileId, run };
}

export class IngestFailedError extends Error {
  override name = "IngestFailedError";
  constructor(
    readonly failures: ReadonlyArray<{ key: string; error: unknown }>,
    readonly outcomes: readonly IngestOutcome[],
  ) {
    super(
      `Ingest failed for ${failures.length} file(s): ${failures
        .map((f) => `${f.key}: ${(f.error as Error)?.message ?? String(f.error)}`)
        .join("; ")}`,
    );
  }
}

/**
 * Handles every record of the event independently. If any record fails the whole event is
 * retried; the ledger makes the retry redo only what is missing.
 */
export async function ingestS3Event(event: S3Event, deps: IngestDependencies): Promise<IngestOutcome[]> {
  const files = newRawFiles(event);
  const settled = await Promise.allSettled(files.map((file) => ingestRawFile(file, deps)));
  const outcomes: IngestOutcome[] = [];
  const failures: Array<{ key: string; error: unknown }> = [];
  settled.forEach((result, i) => {
    if (result.status === "fulfilled") outcomes.push(result.value);
    else failures.push({ key: files[i]?.key ?? "?", error: result.reason });
  });
  if (failures.length > 0) throw new IngestFailedError(failures, outcomes);
  return outcomes;
}
