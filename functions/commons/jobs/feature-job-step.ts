// The feature job (spark/feature_job.py) as an EMR step: a pure builder from one run to its
// spark-submit arguments (the contract in docs/SPARK_JOB.md) and step. Pure so the local job
// runner can run exactly the same arguments with a local spark-submit, and so tests can assert
// the requests without any AWS client.
import type { StepConfig } from "@aws-sdk/client-emr";
import { DRIVER_PROFILE_FILE, type SparkJobLocations } from "./artifacts.js";
import {
  commandRunnerStep,
  commonSparkOptions,
  EMR_STEP_MAX_CHARACTERS,
  hadoopJarStepCharacters,
} from "./spark-submit-step.js";

export const JOB_MODES = ["full", "incremental"] as const;
export type JobMode = (typeof JOB_MODES)[number];
/** A run either computes features from raw inputs (JobMode) or removes wrong rows ("repair"). */
export type RunMode = JobMode | "repair";

/** What a repair removes from both stores: entities, a closed date range (yyyy-MM-dd), or both. */
export interface RepairSelection {
  readonly entities: readonly string[];
  readonly from?: string | undefined;
  readonly to?: string | undefined;
}

/** One run of the feature job: over some raw files of one view, or a repair (no inputs). */
export interface FeatureJobRun {
  readonly view: string;
  readonly inputs: readonly string[];
  readonly mode: RunMode;
  readonly runId: string;
  /** Mode "repair" only: the rows to remove. */
  readonly repair?: RepairSelection | undefined;
  /** The job ends itself with a failure summary after this many minutes (--timeout-minutes). */
  readonly timeoutMinutes?: number | undefined;
}

/**
 * The job's repeatable arguments, as the arguments manifest carries them when listing them would
 * pass EMR's step limit (docs/SPARK_JOB.md, "Arguments manifest"): the inputs of a full or
 * incremental run, the entities of a repair.
 */
export type ArgumentsManifest =
  | { readonly inputs: readonly string[] }
  | { readonly repair_entities: readonly string[] };

export function argumentsManifestOf(run: FeatureJobRun): ArgumentsManifest {
  return run.mode === "repair" ? { repair_entities: run.repair?.entities ?? [] } : { inputs: run.inputs };
}

/**
 * The spark-submit command line of one run: Spark options first, then the job script and its own
 * arguments (the contract in docs/SPARK_JOB.md). The local runner translates it to client mode.
 * With `argumentsManifest` (an s3:// URI), the inputs or repair entities are not listed: the job
 * reads them from that object (argumentsManifestOf).
 */
export function sparkSubmitArgs(
  run: FeatureJobRun,
  at: SparkJobLocations,
  argumentsManifest?: string,
): string[] {
  // The profile-path conf makes the connector use the shipped profile even before the job's own
  // --cassandra-profile handling runs; both name the same file.
  const sparkOptions = [
    ...commonSparkOptions(at.jars, at.pyFiles, at.driverProfile),
    "--conf",
    `spark.cassandra.connection.config.profile.path=${DRIVER_PROFILE_FILE}`,
  ];
  const jobArgs = [
    "--view",
    run.view,
    ...(argumentsManifest === undefined ? run.inputs.flatMap((input) => ["--input", input]) : []),
    "--mode",
    run.mode,
    ...(run.mode === "repair" ? repairArgs(run.repair, argumentsManifest === undefined) : []),
    ...(argumentsManifest === undefined ? [] : ["--arguments-manifest", argumentsManifest]),
    "--feature-view",
    at.featureView(run.view),
    "--offline-uri",
    at.offlineUri,
    // A repair reads no raw rows, so it rejects none.
    ...(run.mode === "repair" ? [] : ["--rejects-uri", at.rejectsUri(run.view, run.runId)]),
    "--summary-uri",
    at.summaryUri(run.view, run.runId),
    "--run-id",
    run.runId,
    "--keyspace",
    at.keyspace,
    "--cassandra-profile",
    DRIVER_PROFILE_FILE,
    ...(run.timeoutMinutes === undefined ? [] : ["--timeout-minutes", String(run.timeoutMinutes)]),
  ];
  return ["spark-submit", ...sparkOptions, at.jobScript, ...jobArgs];
}

function repairArgs(selection: RepairSelection | undefined, listEntities: boolean): string[] {
  if (!selection) throw new Error("a repair run needs its selection");
  return [
    ...(listEntities ? selection.entities.flatMap((entity) => ["--repair-entity", entity]) : []),
    ...(selection.from === undefined ? [] : ["--repair-from", selection.from]),
    ...(selection.to === undefined ? [] : ["--repair-to", selection.to]),
  ];
}

/**
 * Step names are how a person finds a run in the EMR console, and how runEvents finds the run of
 * a step event (resources/run-events.cjs matches the prefix): view, mode and run id.
 */
export function featureJobStepName(run: FeatureJobRun): string {
  return `feature-job ${run.view} ${run.mode} ${run.runId}`;
}

/** "feature-job <view> <mode> <runId>" → view and run id; undefined for other steps. */
export function parseFeatureJobStepName(name: string): { view: string; runId: string } | undefined {
  const match = /^feature-job (\S+) (full|incremental|repair) (\S+)$/.exec(name);
  return match ? { view: match[1] as string, runId: match[3] as string } : undefined;
}

/** A run's step, and the arguments manifest to write before it when its lists do not fit the step. */
export interface FeatureJobStepPlan {
  readonly step: StepConfig;
  readonly manifest?: { readonly uri: string; readonly body: ArgumentsManifest };
}

/**
 * The run's step: its inputs (or repair entities) listed while the step stays within EMR's
 * 10,240 characters, else passed through an arguments manifest, which the caller writes first.
 */
export function planFeatureJobStep(
  run: FeatureJobRun,
  at: SparkJobLocations,
  transient: boolean,
): FeatureJobStepPlan {
  const name = featureJobStepName(run);
  const listed = commandRunnerStep(name, sparkSubmitArgs(run, at), transient);
  if (hadoopJarStepCharacters(listed.HadoopJarStep) <= EMR_STEP_MAX_CHARACTERS) return { step: listed };
  const uri = at.argumentsManifestUri(run.view, run.runId);
  const step = commandRunnerStep(name, sparkSubmitArgs(run, at, uri), transient);
  const characters = hadoopJarStepCharacters(step.HadoopJarStep);
  if (characters > EMR_STEP_MAX_CHARACTERS) {
    throw new Error(
      `The step of run ${run.runId} has ${characters} characters even with an arguments manifest`,
    );
  }
  return { step, manifest: { uri, body: argumentsManifestOf(run) } };
}
