// status' domain: what the run ledger says about one view or all of them — the lock (what runs
// now), the latest runs newest first, queued files, and files that failed or were quarantined.
// `sls invoke -f status --data '{"view":"energy"}'` on AWS, `npm run local:status` locally.
import { z } from "zod";
import { InvalidRequestError } from "#commons/errors.js";
import type { FeatureView } from "#commons/feature-view.js";
import {
  type FileItem,
  type LockItem,
  listFiles,
  listRuns,
  type RunItem,
  readLock,
} from "#commons/run-ledger.js";
import type { RunLedgerStore } from "#commons/run-ledger-store.js";

export const statusRequestSchema = z
  .strictObject({
    view: z.string().min(1).max(64).optional(),
    /** How many runs per view, newest first. */
    runs: z.number().int().min(1).max(100).default(10),
  })
  .default({ runs: 10 });

export interface ViewStatus {
  readonly view: string;
  readonly lock: LockItem | { readonly state: "idle" };
  readonly runs: readonly RunItem[];
  readonly queued: readonly FileItem[];
  readonly running: readonly FileItem[];
  readonly received: readonly FileItem[];
  readonly failed: readonly FileItem[];
  readonly quarantined: readonly FileItem[];
  readonly succeededFiles: number;
}

export async function viewStatus(ledger: RunLedgerStore, view: string, runs: number): Promise<ViewStatus> {
  const [lock, recent, files] = await Promise.all([
    readLock(ledger, view),
    listRuns(ledger, view, runs),
    listFiles(ledger, view),
  ]);
  const inState = (state: FileItem["state"]) => files.filter((f) => f.state === state);
  return {
    view,
    lock: lock ?? { state: "idle" },
    runs: recent,
    queued: inState("queued"),
    running: inState("running"),
    received: inState("received"),
    failed: inState("failed"),
    quarantined: inState("quarantined"),
    succeededFiles: inState("succeeded").length,
  };
}

export async function status(
  input: unknown,
  deps: { ledger: RunLedgerStore; views: ReadonlyMap<string, FeatureView> },
): Promise<{ views: ViewStatus[] }> {
  const parsed = statusRequestSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw new InvalidRequestError(
      `Invalid status request: ${parsed.error.issues.map((i) => i.message).join("; ")}`,
    );
  }
  const { view, runs } = parsed.data;
  if (view !== undefined && !deps.views.has(view)) {
    throw new InvalidRequestError(
      `Unknown feature view "${view}"; known views: ${[...deps.views.keys()].join(", ")}`,
    );
  }
  const names = view === undefined ? [...deps.views.keys()] : [view];
  return { views: await Promise.all(names.map((name) => viewStatus(deps.ledger, name, runs))) };
}
