// ingest's domain: for each new raw file in an S3 event, either start the feature job for it
// (once per object version) or copy it to quarantine/ with a report of what is wrong.
import type { EMRClient } from "@aws-sdk/client-emr";
import type { S3Client } from "@aws-sdk/client-s3";
import type { S3Event } from "aws-lambda";
import { featureJobStepName } from "../commons/emr-step.js";
import type { FeatureJobConfig } from "../commons/feature-job-config.js";
import type { FeatureView } from "../commons/feature-view.js";
import { copyObjectVersion, putJsonObject, s3Uri } from "../commons/s3-object.js";
import { findRecentStep, startFeatureJob } from "../submit/start-feature-job.js";
import { checkRawFile, decodeS3EventKey, type RawFileProblem, type RawFileRef } from "./check-raw-file.js";
import { claimFile, claimLocation, claimRunId, completeClaim, releaseClaim } from "./ingest-claim.js";

/** CopyObject copies at most 5 GB; a larger bad file gets its report but stays only in raw/. */
const MAX_COPY_BYTES = 5 * 1024 ** 3;

export interface IngestDependencies {
  readonly s3: S3Client;
  readonly emr: EMRClient;
  readonly config: FeatureJobConfig & { readonly RAW_MAX_BYTES: number };
  readonly views: ReadonlyMap<string, FeatureView>;
  readonly now?: () => Date;
}

export interface NewRawFile extends RawFileRef {
  readonly eventName: string;
  readonly eventTime: Date;
}

export type IngestOutcome =
  | {
      readonly outcome: "started";
      readonly key: string;
      readonly runId: string;
      readonly clusterId: string;
      readonly stepIds: readonly string[];
    }
  | { readonly outcome: "duplicate"; readonly key: string; readonly runId: string | undefined }
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
  // Only raw/ is readable by this function, and CopyObject stops at 5 GB.
  const copyable = file.key.startsWith("raw/") && (size === undefined || size <= MAX_COPY_BYTES);
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
  return {
    outcome: "quarantined",
    key: file.key,
    quarantineKey: copyable ? target : undefined,
    reportKey,
    problems: verdict.problems,
  };
}

/** Checks one new file and starts its job or quarantines it. */
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

  const claim = claimLocation(deps.config.ARTIFACTS_BUCKET, verdict.view.name, file);
  const runId = claimRunId(claim, file.eventTime);
  const claimedAt = (deps.now?.() ?? new Date()).toISOString();
  const identity = { bucket: file.bucket, key: file.key, versionId: file.versionId, eTag: file.eTag };
  const outcome = await claimFile(
    deps.s3,
    claim,
    { state: "starting", claimedAt, file: identity, runId },
    new Date(claimedAt),
  );
  if (outcome.status === "duplicate") {
    return { outcome: "duplicate", key: file.key, runId: outcome.existing?.runId };
  }
  const clusterId = deps.config.EMR_CLUSTER_ID;
  if (outcome.takenOver && clusterId) {
    // The previous holder died after claiming; it may have added the step before dying.
    const name = featureJobStepName({ view: verdict.view.name, inputs: [], mode: "incremental", runId });
    const stepId = await findRecentStep(deps.emr, clusterId, name);
    if (stepId) {
      await completeClaim(deps.s3, claim, {
        state: "started",
        claimedAt,
        file: identity,
        runId,
        clusterId,
        stepIds: [stepId],
      });
      return { outcome: "duplicate", key: file.key, runId };
    }
  }
  try {
    const started = await startFeatureJob(
      { view: verdict.view.name, inputs: [s3Uri(file)], mode: "incremental", runId },
      deps,
    );
    await completeClaim(deps.s3, claim, {
      state: "started",
      claimedAt,
      file: identity,
      runId,
      clusterId: started.clusterId,
      stepIds: started.stepIds,
    });
    return {
      outcome: "started",
      key: file.key,
      runId,
      clusterId: started.clusterId,
      stepIds: started.stepIds,
    };
  } catch (error) {
    await releaseClaim(deps.s3, claim);
    throw error;
  }
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
 * Handles every record of the event independently: two files in one event are two jobs. If any
 * record fails the whole event is retried; the claims make the retry start only what is missing.
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
