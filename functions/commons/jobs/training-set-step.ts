// The training-set job (spark/training_set_job.py, docs/TRAINING_SETS.md) as an EMR step: a pure
// builder from one run to its spark-submit arguments and step.
import type { StepConfig } from "@aws-sdk/client-emr";
import type { TrainingSetLocations } from "./artifacts.js";
import { commandRunnerStep, commonSparkOptions } from "./spark-submit-step.js";

export const EVENTS_FORMATS = ["csv", "parquet", "delta"] as const;
export const TRAINING_SET_FORMATS = ["parquet", "delta"] as const;

/** One run of the training-set job: labelled events joined point-in-time with feature views. */
export interface TrainingSetRun {
  readonly name: string;
  readonly runId: string;
  readonly events: {
    readonly uri: string;
    readonly format: (typeof EVENTS_FORMATS)[number];
    /** Delta version of the events (delta format only). */
    readonly version?: number | undefined;
  };
  readonly entityColumn: string;
  readonly eventTimeColumn: string;
  readonly views: readonly string[];
  readonly outputFormat: (typeof TRAINING_SET_FORMATS)[number];
  readonly sameDay?: boolean | undefined;
  readonly preserveOrder?: boolean | undefined;
  readonly maxAgeDays?: Readonly<Record<string, number>> | undefined;
  /** Delta version per view, or a previous manifest whose versions pin every view; not both. */
  readonly versions?: Readonly<Record<string, number>> | undefined;
  readonly versionsFrom?: string | undefined;
}

/** VIEW=N pairs in the order of the run's views, so the arguments do not depend on key order. */
function perViewPairs(flag: string, views: readonly string[], values: Readonly<Record<string, number>> = {}) {
  return views.flatMap((view) => {
    const value = values[view];
    return value === undefined ? [] : [flag, `${view}=${value}`];
  });
}

/** The training-set job's spark-submit command line, in the order of its `--help`. */
export function trainingSetSubmitArgs(run: TrainingSetRun, at: TrainingSetLocations): string[] {
  const sparkOptions = commonSparkOptions(at.jars, at.pyFiles);
  const jobArgs = [
    "--events",
    run.events.uri,
    "--events-format",
    run.events.format,
    ...(run.events.version === undefined ? [] : ["--events-version", String(run.events.version)]),
    "--entity-column",
    run.entityColumn,
    "--event-time-column",
    run.eventTimeColumn,
    ...run.views.flatMap((view) => ["--view", view, "--feature-view", at.featureView(view)]),
    "--offline-uri",
    at.offlineUri,
    "--output",
    at.outputUri(run.name, run.runId),
    "--output-format",
    run.outputFormat,
    "--manifest-uri",
    at.manifestUri(run.name, run.runId),
    ...(run.sameDay ? ["--same-day"] : []),
    ...(run.preserveOrder ? ["--preserve-order"] : []),
    ...perViewPairs("--max-age-days", run.views, run.maxAgeDays),
    ...perViewPairs("--version", run.views, run.versions),
    ...(run.versionsFrom ? ["--versions-from", run.versionsFrom] : []),
  ];
  return ["spark-submit", ...sparkOptions, at.jobScript, ...jobArgs];
}

export function trainingSetStepName(run: TrainingSetRun): string {
  return `training-set ${run.name} ${run.runId}`;
}

export function trainingSetStep(
  run: TrainingSetRun,
  at: TrainingSetLocations,
  transient: boolean,
): StepConfig {
  return commandRunnerStep(trainingSetStepName(run), trainingSetSubmitArgs(run, at), transient);
}
