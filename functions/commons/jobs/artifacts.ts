// Where the Spark jobs' code, configuration and outputs live: the artifacts-bucket layout that
// `sls deploy` uploads (resources/plugins/upload-artifacts.cjs) and docs/SPARK_JOB.md names, the
// offline bucket's output prefixes, and the s3:// locations both jobs are started with.
import { compiledViewFileName } from "../compiled-view.js";

/** File name of the Keyspaces driver profile; `--files` puts it in the driver's working directory. */
export const DRIVER_PROFILE_FILE = "keyspaces-application.conf";

/** The artifacts bucket. Jars are passed as globs, which spark-submit expands itself. */
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

/** Where the feature job's code, configuration and outputs live (s3:// URIs on AWS, paths locally). */
export interface SparkJobLocations {
  readonly jobScript: string;
  readonly pyFiles: string;
  readonly driverProfile: string;
  readonly jars: readonly string[];
  readonly featureView: (view: string) => string;
  readonly offlineUri: string;
  readonly rejectsUri: (view: string, runId: string) => string;
  readonly summaryUri: (view: string, runId: string) => string;
  /** A run's arguments manifest, beside its summary (written only when the step would be too long). */
  readonly argumentsManifestUri: (view: string, runId: string) => string;
  readonly keyspace: string;
}

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
    argumentsManifestUri: (view, runId) => `${offline}/${OFFLINE_KEYS.runs}${view}/${runId}/arguments.json`,
    keyspace: options.keyspace,
  };
}

/** Where the training-set job's code and inputs live and where it writes. */
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

/** The buckets and keyspace a job is started with (FeatureJobConfig's names). */
interface JobPlacement {
  readonly ARTIFACTS_BUCKET: string;
  readonly OFFLINE_BUCKET: string;
  readonly KEYSPACE: string;
}

/** The feature job's locations from the function's configuration. */
export function jobLocationsFor(config: JobPlacement): SparkJobLocations {
  return s3JobLocations({
    artifactsBucket: config.ARTIFACTS_BUCKET,
    offlineBucket: config.OFFLINE_BUCKET,
    keyspace: config.KEYSPACE,
  });
}

/** The training-set job's locations from the function's configuration. */
export function trainingSetLocationsFor(config: Omit<JobPlacement, "KEYSPACE">): TrainingSetLocations {
  return s3TrainingSetLocations({
    artifactsBucket: config.ARTIFACTS_BUCKET,
    offlineBucket: config.OFFLINE_BUCKET,
  });
}
