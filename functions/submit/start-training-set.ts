// Starts one run of the training-set job (spark/training_set_job.py) on EMR, through the same
// cluster-or-transient path as the feature job. The request is checked here so that a bad one
// fails in the caller's terminal instead of minutes later in a step log.
import { z } from "zod";
import {
  EVENTS_FORMATS,
  s3TrainingSetLocations,
  TRAINING_SET_FORMATS,
  type TrainingSetRun,
  trainingSetPurpose,
  trainingSetStep,
  trainingSetStepName,
} from "../commons/emr-step.js";
import { InvalidRequestError } from "../commons/errors.js";
import type { FeatureJobConfig } from "../commons/feature-job-config.js";
import type { FeatureView } from "../commons/feature-view.js";
import { runIdSchema } from "../commons/identifiers.js";
import { parseS3Uri } from "../commons/s3-object.js";
import { startEmrStep } from "./start-emr-step.js";
import { type FeatureJobDependencies, newRunId } from "./start-feature-job.js";

/** Events in the raw bucket live under this prefix (raw/ would trigger ingest on every upload). */
export const RAW_EVENTS_PREFIX = "labels/";
/** Previous manifests a run may pin its versions to (where this job writes them). */
export const MANIFESTS_PREFIX = "training-sets/";

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
  runId: runIdSchema.optional(),
});

export type TrainingSetRequest = z.infer<typeof trainingSetRequestSchema>;

export interface TrainingSetStarted {
  readonly jobType: "training-set";
  readonly name: string;
  readonly runId: string;
  readonly clusterId: string;
  readonly stepIds: readonly string[];
  readonly stepName: string;
  readonly transientCluster: boolean;
  readonly outputUri: string;
  readonly manifestUri: string;
}

/** The same clients, settings and clocks as the feature job's. */
export type TrainingSetDependencies = FeatureJobDependencies;

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

/** Validates the request and starts the job; returns where it runs and where the set will be. */
export async function startTrainingSet(
  input: unknown,
  deps: TrainingSetDependencies,
): Promise<TrainingSetStarted> {
  const { config } = deps;
  const request = validateTrainingSetRequest(input, deps.views, config);
  const now = deps.now?.() ?? new Date();
  const suffix = deps.randomSuffix?.() ?? Math.random().toString(16).slice(2, 8).padEnd(6, "0");
  const run: TrainingSetRun = {
    name: request.name,
    runId: request.runId ?? newRunId(now, suffix),
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
  const locations = s3TrainingSetLocations({
    artifactsBucket: config.ARTIFACTS_BUCKET,
    offlineBucket: config.OFFLINE_BUCKET,
  });
  const events = parseS3Uri(run.events.uri);
  const output = locations.outputUri(run.name, run.runId);
  if (events && `s3://${events.bucket}/${events.key}/`.startsWith(`${output}/`)) {
    invalid(`events ${run.events.uri} is inside this run's output, which the job overwrites`);
  }
  const started = await startEmrStep(
    deps.emr,
    config,
    (transient) => trainingSetStep(run, locations, transient),
    trainingSetPurpose(run),
  );
  return {
    jobType: "training-set",
    name: run.name,
    runId: run.runId,
    ...started,
    stepName: trainingSetStepName(run),
    outputUri: output,
    manifestUri: locations.manifestUri(run.name, run.runId),
  };
}
