// The run ledger's items and their keys: one LOCK item per view (who may run the feature job now),
// one RUN item per attempt of a run, one FILE item per raw object version. Typed readers and the
// identities (file id, staging key) live here; the state machine that moves them is feature-runs.ts.
import { createHash } from "node:crypto";
import type { RepairSelection, RunMode } from "./jobs/feature-job-step.js";
import type { LedgerItem, LedgerValue, RunLedgerStore } from "./run-ledger-store.js";

export const FILE_STATES = ["received", "queued", "running", "succeeded", "failed", "quarantined"] as const;
export type FileState = (typeof FILE_STATES)[number];

/** "retried": this attempt failed and the next attempt (nextRunId) carries its inputs on. */
export const RUN_STATES = ["starting", "running", "succeeded", "failed", "retried"] as const;
export type RunState = (typeof RUN_STATES)[number];
export const ACTIVE_RUN_STATES: readonly RunState[] = ["starting", "running"];

export type LockState = "idle" | "starting" | "running";

export interface LockItem {
  readonly view: string;
  readonly state: LockState;
  readonly runId?: string;
  /** Epoch ms until which a "starting" holder may finish starting; after that it can be taken over. */
  readonly leaseUntil?: number;
  readonly since?: string;
  readonly clusterId?: string;
  readonly stepId?: string;
  /** The newest feature date a succeeded run wrote (staleness metric). */
  readonly newestFeatureDate?: string;
  readonly lastSucceededRunId?: string;
}

export interface RunItem {
  readonly view: string;
  readonly runId: string;
  /** The first attempt's run id: every retry of the same inputs shares it. */
  readonly baseRunId: string;
  readonly attempt: number;
  readonly state: RunState;
  readonly mode: RunMode;
  /** Mode "repair" only: the rows the run removes (kept for its retries). */
  readonly repair?: RepairSelection;
  readonly fileIds: readonly string[];
  readonly inputs: readonly string[];
  readonly trigger: "ingest" | "submit" | "reconcile" | "retry" | "run-events";
  readonly createdAt: string;
  readonly startedAt?: string;
  readonly endedAt?: string;
  readonly clusterId?: string;
  readonly stepId?: string;
  readonly transientCluster?: boolean;
  readonly nextRunId?: string;
  readonly summaryUri?: string;
  readonly deltaVersion?: number;
  readonly rejectedRows?: number;
  readonly newestFeatureDate?: string;
  readonly error?: string;
  readonly alertedAt?: string;
}

export interface FileItem {
  readonly view: string;
  readonly fileId: string;
  readonly state: FileState;
  readonly bucket: string;
  readonly key: string;
  readonly versionId?: string;
  readonly eTag?: string;
  readonly stagedUri?: string;
  readonly receivedAt: string;
  readonly updatedAt: string;
  readonly runId?: string;
  readonly deltaVersion?: number;
  readonly rejectedRows?: number;
  readonly error?: string;
  readonly reportKey?: string;
}

export const viewPk = (view: string) => `VIEW#${view}`;
export const LOCK_SK = "LOCK";
export const RUN_PREFIX = "RUN#";
export const FILE_PREFIX = "FILE#";
export const runSk = (runId: string) => `${RUN_PREFIX}${runId}`;
export const fileSk = (fileId: string) => `${FILE_PREFIX}${fileId}`;

/** Where ingest stages the checked version of a raw file; the job reads only these copies. */
export const STAGING_PREFIX = "staging/";

/** Finished runs and files stay readable in `status` for this long, then DynamoDB's TTL drops them. */
export const FINISHED_ITEM_TTL_DAYS = 90;

export function expiresAt(now: Date): number {
  return Math.floor(now.getTime() / 1000) + FINISHED_ITEM_TTL_DAYS * 86_400;
}

/**
 * The identity of one object version, the one definition ingest files it under and an uploader
 * follows it by: sha256 of bucket, decoded key and version id (the raw bucket is versioned, so S3's
 * event carries the version id, AWS_CONTRACTS S4); the ETag stands in when there is no version id.
 * The ETag counts without its quotes: S3 quotes it in a PutObject/HeadObject response and not in an
 * event. Same version → same file item, whichever of the two it was computed from.
 */
export function fileIdOf(file: {
  bucket: string;
  key: string;
  versionId?: string | undefined;
  eTag?: string | undefined;
}): string {
  const identity = [
    file.bucket,
    file.key,
    file.versionId ?? "",
    file.versionId ? "" : (file.eTag ?? "").replaceAll('"', ""),
  ].join("\n");
  return createHash("sha256").update(identity).digest("hex");
}

export function stagingKey(view: string, fileId: string): string {
  return `${STAGING_PREFIX}${view}/${fileId}.csv`;
}

/** Drops undefined fields, so an item is exactly what was set. */
export function ledgerItem(pk: string, sk: string, fields: object): LedgerItem {
  const entries = Object.entries(fields).filter(([, v]) => v !== undefined) as Array<[string, LedgerValue]>;
  return { pk, sk, ...Object.fromEntries(entries) } as LedgerItem;
}

function strip<T>(item: LedgerItem | undefined): T | undefined {
  if (!item) return undefined;
  const { pk: _pk, sk: _sk, ...rest } = item;
  return rest as T;
}

export async function readLock(ledger: RunLedgerStore, view: string): Promise<LockItem | undefined> {
  return strip<LockItem>(await ledger.get(viewPk(view), LOCK_SK));
}

export async function readRun(
  ledger: RunLedgerStore,
  view: string,
  runId: string,
): Promise<RunItem | undefined> {
  return strip<RunItem>(await ledger.get(viewPk(view), runSk(runId)));
}

export async function readFile(
  ledger: RunLedgerStore,
  view: string,
  fileId: string,
): Promise<FileItem | undefined> {
  return strip<FileItem>(await ledger.get(viewPk(view), fileSk(fileId)));
}

/** Runs of a view, newest first (run ids start with their UTC start time). */
export async function listRuns(ledger: RunLedgerStore, view: string, limit: number): Promise<RunItem[]> {
  const items = await ledger.query(viewPk(view), RUN_PREFIX, { newestFirst: true, limit });
  return items.map((item) => strip<RunItem>(item) as RunItem);
}

/** Every file item of a view (finished ones expire through the TTL). */
export async function listFiles(ledger: RunLedgerStore, view: string): Promise<FileItem[]> {
  const items = await ledger.query(viewPk(view), FILE_PREFIX);
  return items.map((item) => strip<FileItem>(item) as FileItem);
}

/** Queued files of a view, oldest first. */
export async function queuedFiles(ledger: RunLedgerStore, view: string): Promise<FileItem[]> {
  return (await listFiles(ledger, view))
    .filter((file) => file.state === "queued")
    .sort((a, b) => (a.receivedAt < b.receivedAt ? -1 : a.receivedAt > b.receivedAt ? 1 : 0));
}
