// A training-set request (submit's jobType "training-set"): its schema, the checks that keep the
// job inside the raw and offline buckets and the known views, and the run it becomes. Checked here
// so that a bad request fails in the caller's terminal instead of minutes later in a step log.
import { z } from "zod";
import { InvalidRequestError } from "../errors.js";
import type { FeatureJobConfig } from "../feature-job-config.js";
import type { FeatureView } from "../feature-view.js";
import { runIdSchema } from "../identifiers.js";
import { parseS3Uri } from "../s3-object.js";
import { OFFLINE_KEYS, trainingSetLocationsFor } from "./artifacts.js";
import { EVENTS_FORMATS, TRAINING_SET_FORMATS, type TrainingSetRun } from "./training-set-step.js";

/** Events in the raw bucket live under this prefix (raw/ would trigger ingest on every upload). */
export const RAW_EVENTS_PREFIX = "labels/";
/** Previous manifests a run may pin its versions to (where this job writes them). */
export const MANIFESTS_PREFIX = OFFLINE_KEYS.trainingSets;

// Column names become job arguments: no leading "-" (argparse would take it for a flag).
const column = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "must be a column name (letters, digits, _)");
const perView = z.record(z.string(), z.number().int().min(0).max(1_000_000_000));

export const trainingSetRequestSchema = z.strictObject({
  jobType: z.literal("training-set"),
  name: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, "must be 1-64 letters, digits, _ -, starting with a letter"),
  events: z.string().min(1).max(1100),
  eventsFormat: z.enum(EVENTS_FORMATS),
  eventsVersion: z.number().int().min(0).optional(),
  entityColumn: column,
  eventTimeColumn: column,
  views: z.array(z.string().min(1).max(64)).min(1).max(20),
  sameDay: z.boolean().optional(),
  preserveOrder: z.boolean().optional(),
  maxAgeDays: perView.optional(),
  versions: perView.optional(),
  versionsFrom: z.string().min(1).max(1100).optional(),
  outputFormat: z.enum(TRAINING_SET_FORMATS).default("parquet"),
  runId: z.optional(runIdSchema),
});

export type TrainingSetRequest = z.infer<typeof trainingSetRequestSchema>;

function invalid(message: string): never {
  throw new InvalidRequestError(`Invalid training-set request: ${message}`);
}

/** Why an s3 URI is not one the job may read, or undefined when it is. */
function unreadable(
  uri: string,
  config: FeatureJobConfig,
  rawPrefix: string | undefined,
): string | undefined {
  const at = parseS3Uri(uri);
  if (at === undefined) return "is not an s3:// URI";
  if (at.key.split("/").includes("..")) return "must not contain ..";
  if (at.bucket === config.OFFLINE_BUCKET) return undefined;
  if (rawPrefix !== undefined && at.bucket === config.RAW_BUCKET) {
    return at.key.startsWith(rawPrefix) ? undefined : `is not under ${rawPrefix} of the raw bucket`;
  }
  return rawPrefix !== undefined
    ? `is not in the raw bucket (${config.RAW_BUCKET}, under ${rawPrefix}) or the offline bucket (${config.OFFLINE_BUCKET})`
    : `is not in the offline bucket (${config.OFFLINE_BUCKET})`;
}

/** Checks the request against the views and the buckets the job may read; throws InvalidRequestError. */
export function validateTrainingSetRequest(
  input: unknown,
  views: ReadonlyMap<string, FeatureView>,
  config: FeatureJobConfig,
): TrainingSetRequest {
  const parsed = trainingSetRequestSchema.safeParse(input);
  if (!parsed.success) {
    invalid(parsed.error.issues.map((i) => `${i.path.join(".") || "(request)"}: ${i.message}`).join("; "));
  }
  const request = parsed.data;
  const unknown = request.views.filter((view) => !views.has(view));
  if (unknown.length > 0) {
    invalid(`unknown feature view(s) ${unknown.join(", ")}; known views: ${[...views.keys()].join(", ")}`);
  }
  if (new Set(request.views).size !== request.views.length) invalid("views must not repeat a view");
  const eventsProblem = unreadable(request.events, config, RAW_EVENTS_PREFIX);
  if (eventsProblem) invalid(`events ${request.events} ${eventsProblem}`);
  if (request.eventsVersion !== undefined && request.eventsFormat !== "delta") {
    invalid("eventsVersion applies to eventsFormat delta only");
  }
  for (const [field, values] of [
    ["maxAgeDays", request.maxAgeDays],
    ["versions", request.versions],
  ] as const) {
    const strays = Object.keys(values ?? {}).filter((view) => !request.views.includes(view));
    if (strays.length > 0) invalid(`${field} names view(s) not in views: ${strays.join(", ")}`);
  }
  if (!request.sameDay && Object.values(request.maxAgeDays ?? {}).includes(0)) {
    // Strictly-before never uses a row dated on the event's day, so 0 would null every feature.
    invalid("maxAgeDays 0 is only meaningful with sameDay");
  }
  if (request.versionsFrom !== undefined) {
    if (Object.keys(request.versions ?? {}).length > 0) invalid("give versions or versionsFrom, not both");
    const at = parseS3Uri(request.versionsFrom);
    const problem =
      unreadable(request.versionsFrom, config, undefined) ??
      (at?.key.startsWith(MANIFESTS_PREFIX) && at.key.endsWith(".json")
        ? undefined
        : `is not a manifest under ${MANIFESTS_PREFIX}`);
    if (problem) invalid(`versionsFrom ${request.versionsFrom} ${problem}`);
  }
  return request;
}

/**
 * The run a checked request becomes under its run id. Throws InvalidRequestError when the events
 * lie inside the run's own output, which the job overwrites (knowable only once the run id is).
 */
export function trainingSetRunOf(
  request: TrainingSetRequest,
  runId: string,
  config: Pick<FeatureJobConfig, "ARTIFACTS_BUCKET" | "OFFLINE_BUCKET">,
): TrainingSetRun {
  const run: TrainingSetRun = {
    name: request.name,
    runId,
    events: { uri: request.events, format: request.eventsFormat, version: request.eventsVersion },
    entityColumn: request.entityColumn,
    eventTimeColumn: request.eventTimeColumn,
    views: request.views,
    outputFormat: request.outputFormat,
    sameDay: request.sameDay,
    preserveOrder: request.preserveOrder,
    maxAgeDays: request.maxAgeDays,
    versions: request.versions,
    versionsFrom: request.versionsFrom,
  };
  const events = parseS3Uri(run.events.uri);
  const output = trainingSetLocationsFor(config).outputUri(run.name, run.runId);
  if (events && `s3://${events.bucket}/${events.key}/`.startsWith(`${output}/`)) {
    invalid(`events ${run.events.uri} is inside this run's output, which the job overwrites`);
  }
  return run;
}
