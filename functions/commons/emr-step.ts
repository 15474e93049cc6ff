// The Spark jobs as EMR steps (the feature job, and the training-set job): pure builders for the
// spark-submit arguments, the steps and the transient-cluster request. Pure so the local job runner
// can run exactly the same arguments with a local spark-submit, and so tests can assert the
// requests without any AWS client.
import type { RunJobFlowCommandInput, StepConfig } from "@aws-sdk/client-emr";
import { compiledViewFileName } from "./compiled-view.js";

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

/** File name of the Keyspaces driver profile; `--files` puts it in the driver's working directory. */
export const DRIVER_PROFILE_FILE = "keyspaces-application.conf";

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

/** Where the job's code, configuration and outputs live (s3:// URIs on AWS, paths locally). */
export interface SparkJobLocations {
  readonly jobScript: string;
  readonly pyFiles: string;
  readonly driverProfile: string;
  readonly jars: readonly string[];
  readonly featureView: (view: string) => string;
  readonly offlineUri: string;
  readonly rejectsUri: (view: string, runId: string) => string;
  readonly summaryUri: (view: string, runId: string) => string;
  readonly keyspace: string;
}

/**
 * The artifacts-bucket layout that `sls deploy` uploads (resources/plugins/upload-artifacts.cjs)
 * and docs/SPARK_JOB.md names. Jars are passed as globs, which spark-submit expands itself.
 */
export const ARTIFACT_KEYS = {
  jobScript: "spark/feature_job.py",
  /** Bootstrap action installing the job's Python libraries (numpy, pandas, pyarrow). */
  pythonBootstrap: "spark/bootstrap-python.sh",
  trainingSetScript: "spark/training_set_job.py",
  pyFiles: "spark/feature_store.zip",
  driverProfile: `spark/${DRIVER_PROFILE_FILE}`,
  jarDirs: ["spark/jars/spark/", "spark/jars/emr/"],
  /** Compiled views (compiled-view.ts), `<view>.json`: the job's --feature-view. */
  featureViewsPrefix: "feature-views/",
  emrLogsPrefix: "emr-logs/",
} as const;

/** Job outputs in the offline bucket, which the stack retains (unlike the artifacts bucket). */
export const OFFLINE_KEYS = {
  delta: "delta",
  rejects: "rejects/",
  runs: "runs/",
  trainingSets: "training-sets/",
} as const;

export function s3JobLocations(options: {
  artifactsBucket: string;
  offlineBucket: string;
  keyspace: string;
}): SparkJobLocations {
  const artifacts = `s3://${options.artifactsBucket}`;
  const offline = `s3://${options.offlineBucket}`;
  return {
    jobScript: `${artifacts}/${ARTIFACT_KEYS.jobScript}`,
    pyFiles: `${artifacts}/${ARTIFACT_KEYS.pyFiles}`,
    driverProfile: `${artifacts}/${ARTIFACT_KEYS.driverProfile}`,
    jars: ARTIFACT_KEYS.jarDirs.map((dir) => `${artifacts}/${dir}*.jar`),
    featureView: (view) => `${artifacts}/${ARTIFACT_KEYS.featureViewsPrefix}${compiledViewFileName(view)}`,
    offlineUri: `${offline}/${OFFLINE_KEYS.delta}`,
    rejectsUri: (view, runId) => `${offline}/${OFFLINE_KEYS.rejects}${view}/${runId}`,
    summaryUri: (view, runId) => `${offline}/${OFFLINE_KEYS.runs}${view}/${runId}/summary.json`,
    keyspace: options.keyspace,
  };
}

/** Options every job of this project is submitted with: deploy mode, jars, extra files, the package zip. */
function commonSparkOptions(
  deployMode: "cluster" | "client",
  jars: readonly string[],
  pyFiles: string,
  files?: string,
): string[] {
  return [
    "--deploy-mode",
    deployMode,
    ...(jars.length > 0 ? ["--jars", jars.join(",")] : []),
    ...(files === undefined ? [] : ["--files", files]),
    "--py-files",
    pyFiles,
  ];
}

/**
 * The EMR step running spark-submit through command-runner.jar. A failed step on a shared
 * cluster must not stop the cluster; a transient cluster has nothing else to do, so it ends.
 */
function commandRunnerStep(name: string, args: string[], transient: boolean): StepConfig {
  return {
    Name: name,
    ActionOnFailure: transient ? "TERMINATE_CLUSTER" : "CONTINUE",
    HadoopJarStep: { Jar: "command-runner.jar", Args: args },
  };
}

/**
 * The spark-submit command line of one run: Spark options first, then the job script and its own
 * arguments (the contract in docs/SPARK_JOB.md). The local runner translates it to client mode.
 */
export function sparkSubmitArgs(run: FeatureJobRun, at: SparkJobLocations): string[] {
  // The profile-path conf makes the connector use the shipped profile even before the job's own
  // --cassandra-profile handling runs; both name the same file.
  const sparkOptions = [
    ...commonSparkOptions("cluster", at.jars, at.pyFiles, at.driverProfile),
    "--conf",
    `spark.cassandra.connection.config.profile.path=${DRIVER_PROFILE_FILE}`,
  ];
  const jobArgs = [
    "--view",
    run.view,
    ...run.inputs.flatMap((input) => ["--input", input]),
    "--mode",
    run.mode,
    ...(run.mode === "repair" ? repairArgs(run.repair) : []),
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

function repairArgs(selection: RepairSelection | undefined): string[] {
  if (!selection) throw new Error("a repair run needs its selection");
  return [
    ...selection.entities.flatMap((entity) => ["--repair-entity", entity]),
    ...(selection.from === undefined ? [] : ["--repair-from", selection.from]),
    ...(selection.to === undefined ? [] : ["--repair-to", selection.to]),
  ];
}

/** Step names are how a person finds a run in the EMR console: view, mode and run id. */
export function featureJobStepName(run: FeatureJobRun): string {
  return `feature-job ${run.view} ${run.mode} ${run.runId}`;
}

export function featureJobStep(run: FeatureJobRun, at: SparkJobLocations, transient: boolean): StepConfig {
  return commandRunnerStep(featureJobStepName(run), sparkSubmitArgs(run, at), transient);
}

/** Idle time after which EMR ends a transient cluster (AutoTerminationPolicy). */
export const TRANSIENT_IDLE_TIMEOUT_SECONDS = 3600;

export interface TransientClusterSettings {
  readonly namePrefix: string;
  readonly releaseLabel: string;
  readonly primaryInstanceType: string;
  readonly coreInstanceType: string;
  readonly coreInstanceCount: number;
  readonly serviceRole: string;
  readonly instanceProfile: string;
  readonly subnetId?: string | undefined;
  readonly logUri: string;
  /** s3:// URI of the bootstrap action that installs the job's Python libraries on every node. */
  readonly pythonBootstrapUri: string;
}

/** What a transient cluster exists for: a readable name and the tags that find it again. */
export interface ClusterPurpose {
  readonly name: string;
  readonly tags: ReadonlyArray<{ readonly Key: string; readonly Value: string }>;
}

export function featureJobPurpose(run: FeatureJobRun): ClusterPurpose {
  return {
    name: `${run.view} ${run.runId}`,
    tags: [
      { Key: "feature-store:view", Value: run.view },
      { Key: "feature-store:run-id", Value: run.runId },
    ],
  };
}

/**
 * RunJobFlow for a cluster that runs this one step and terminates: Spark with Delta enabled
 * (delta-defaults), the job's Python libraries installed by a bootstrap action, logs in the artifacts bucket, and the tag AmazonEMRServicePolicy_v2 requires
 * on resources the service role manages.
 */
export function transientClusterRequest(
  purpose: ClusterPurpose,
  step: StepConfig,
  settings: TransientClusterSettings,
): RunJobFlowCommandInput {
  return {
    Name: `${settings.namePrefix} ${purpose.name}`.slice(0, 256),
    ReleaseLabel: settings.releaseLabel,
    Applications: [{ Name: "Spark" }],
    Configurations: [{ Classification: "delta-defaults", Properties: { "delta.enabled": "true" } }],
    Instances: {
      InstanceGroups: [
        {
          Name: "primary",
          InstanceRole: "MASTER",
          Market: "ON_DEMAND",
          InstanceType: settings.primaryInstanceType,
          InstanceCount: 1,
        },
        {
          Name: "core",
          InstanceRole: "CORE",
          Market: "ON_DEMAND",
          InstanceType: settings.coreInstanceType,
          InstanceCount: settings.coreInstanceCount,
        },
      ],
      KeepJobFlowAliveWhenNoSteps: false,
      TerminationProtected: false,
      ...(settings.subnetId ? { Ec2SubnetId: settings.subnetId } : {}),
    },
    Steps: [step],
    BootstrapActions: [
      { Name: "python-libraries", ScriptBootstrapAction: { Path: settings.pythonBootstrapUri, Args: [] } },
    ],
    LogUri: settings.logUri,
    // A backstop: the cluster ends after its one step anyway; if it lingers (a step that never
    // started), EMR terminates it after an hour idle. Allowed range 60 s to 7 days:
    // https://docs.aws.amazon.com/emr/latest/APIReference/API_AutoTerminationPolicy.html
    AutoTerminationPolicy: { IdleTimeout: TRANSIENT_IDLE_TIMEOUT_SECONDS },
    ServiceRole: settings.serviceRole,
    JobFlowRole: settings.instanceProfile,
    VisibleToAllUsers: true,
    Tags: [
      { Key: "for-use-with-amazon-emr-managed-policies", Value: "true" },
      ...purpose.tags.map((tag) => ({ ...tag })),
    ],
  };
}

// --- The training-set job (spark/training_set_job.py, docs/TRAINING_SETS.md) ---

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

export interface TrainingSetLocations {
  readonly jobScript: string;
  readonly pyFiles: string;
  readonly jars: readonly string[];
  readonly featureView: (view: string) => string;
  readonly offlineUri: string;
  readonly outputUri: (name: string, runId: string) => string;
  readonly manifestUri: (name: string, runId: string) => string;
}

/**
 * Where a training-set run reads and writes on AWS. The set goes to `<run>/data`, not to the run
 * prefix itself, so the manifest beside it is not read as a data file by `spark.read.parquet` nor
 * removed as an untracked file by a Delta VACUUM of the set. Only the Spark jar set (Delta) is
 * shipped: the EMR set exists for the Keyspaces driver, which this job never opens.
 */
export function s3TrainingSetLocations(options: {
  artifactsBucket: string;
  offlineBucket: string;
}): TrainingSetLocations {
  const artifacts = `s3://${options.artifactsBucket}`;
  const offline = `s3://${options.offlineBucket}`;
  const runPrefix = (name: string, runId: string) =>
    `${offline}/${OFFLINE_KEYS.trainingSets}${name}/${runId}`;
  return {
    jobScript: `${artifacts}/${ARTIFACT_KEYS.trainingSetScript}`,
    pyFiles: `${artifacts}/${ARTIFACT_KEYS.pyFiles}`,
    jars: ARTIFACT_KEYS.jarDirs.slice(0, 1).map((dir) => `${artifacts}/${dir}*.jar`),
    featureView: (view) => `${artifacts}/${ARTIFACT_KEYS.featureViewsPrefix}${compiledViewFileName(view)}`,
    offlineUri: `${offline}/${OFFLINE_KEYS.delta}`,
    outputUri: (name, runId) => `${runPrefix(name, runId)}/data`,
    manifestUri: (name, runId) => `${runPrefix(name, runId)}/manifest.json`,
  };
}

/** VIEW=N pairs in the order of the run's views, so the arguments do not depend on key order. */
function perViewPairs(flag: string, views: readonly string[], values: Readonly<Record<string, number>> = {}) {
  return views.flatMap((view) => {
    const value = values[view];
    return value === undefined ? [] : [flag, `${view}=${value}`];
  });
}

/** The training-set job's spark-submit command line, in the order of its `--help`. */
export function trainingSetSubmitArgs(
  run: TrainingSetRun,
  at: TrainingSetLocations,
  deployMode: "cluster" | "client" = "cluster",
): string[] {
  const sparkOptions = commonSparkOptions(deployMode, at.jars, at.pyFiles);
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

export function trainingSetPurpose(run: TrainingSetRun): ClusterPurpose {
  return {
    name: `training-set ${run.name} ${run.runId}`,
    tags: [
      { Key: "feature-store:training-set", Value: run.name },
      { Key: "feature-store:run-id", Value: run.runId },
    ],
  };
}
