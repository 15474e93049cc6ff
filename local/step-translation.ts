// Turns the spark-submit command of an EMR step (functions/commons/jobs/feature-job-step.ts, docs/SPARK_JOB.md)
// into the same command for this machine. Pure, so it is unit-tested: every s3:// URI becomes a
// local path (raw inputs are downloaded, artifacts are the repository's files or the locally
// compiled feature views, offline outputs go under the pipeline's offline directory), EMR-only options are dropped (cluster deploy mode, the
// EMR jar set, the Keyspaces driver profile becomes the local Cassandra host and port, EMR's Python
// becomes the venv's and is kept in `emrPython` for the runner's check), and every other option and
// job argument is kept exactly as the submit function built it.
import { join } from "node:path";
import { ARTIFACT_KEYS } from "#commons/jobs/artifacts.js";
import { PYSPARK_PYTHON_CONF } from "#commons/jobs/spark-submit-step.js";
import { parseS3Uri, type S3Location } from "#commons/s3-object.js";
import type { LocalBuckets } from "./settings.js";

export interface StepTranslationContext {
  readonly buckets: LocalBuckets;
  /** The repository: the job script comes from here, as `sls deploy` uploads it. */
  readonly root: string;
  /** The feature views compiled like the deploy compiles them: feature-views/<view>.json ↔ <dir>/<view>.json. */
  readonly compiledViewsDir: string;
  /** scripts/setup-jars.sh's output: <jarsDir>/spark/*.jar. */
  readonly jarsDir: string;
  /** The feature_store package zipped like the deploy does (spark/feature_store.zip). */
  readonly pyFilesZip: string;
  /** Local root of the offline bucket: s3://<offline>/<key> ↔ <offlineDir>/<key>. */
  readonly offlineDir: string;
  /** Raw inputs are downloaded to <inputsDir>/<key>. */
  readonly inputsDir: string;
  readonly cassandra: { readonly host: string; readonly port: number; readonly datacenter: string };
}

export interface LocalStepCommand {
  /** spark-submit options (without the executable), the job script, then the job's arguments. */
  readonly sparkOptions: readonly string[];
  readonly jobScript: string;
  readonly jobArgs: readonly string[];
  readonly runId: string;
  readonly view: string;
  /** Raw files to fetch from the emulator before the run. */
  readonly downloads: ReadonlyArray<{ readonly from: S3Location; readonly to: string }>;
  /** The run summary: where the job writes it here, and where the real job would have put it. */
  readonly summary: { readonly local: string; readonly s3: S3Location } | undefined;
  /**
   * The step's arguments manifest (docs/SPARK_JOB.md): the runner fetches it, translates it with
   * translateArgumentsManifest and writes the local copy the job's --arguments-manifest names.
   */
  readonly argumentsManifest?: { readonly from: S3Location; readonly to: string };
  /**
   * The interpreter the step names for the job on EMR (--conf spark.pyspark.python), undefined when it
   * names none. Here the launcher runs the venv's Python instead; the runner checks this one
   * (job-runner.ts emrPythonRefusal) so that a step EMR would run on the wrong Python fails here too.
   */
  readonly emrPython: string | undefined;
  /** What was dropped or replaced, for the log. */
  readonly notes: readonly string[];
  /** The job's own --timeout-minutes (kept in jobArgs); the runner kills it a minute after that. */
  readonly timeoutMinutes?: number;
}

export class StepTranslationError extends Error {
  override name = "StepTranslationError";
}

/** spark-submit options that take no value. */
const SPARK_FLAGS = new Set(["--verbose", "--supervise"]);
/** The Keyspaces driver profile: on this machine the job talks to the local node instead. */
const PROFILE_CONF = "spark.cassandra.connection.config.profile.path";

/** Where an artifacts-bucket key lives on this machine; null when it is EMR-only. */
function artifactPath(key: string, ctx: StepTranslationContext): string | null {
  const [sparkJars, emrJars] = ARTIFACT_KEYS.jarDirs;
  if (sparkJars !== undefined && key.startsWith(sparkJars)) {
    return join(ctx.jarsDir, "spark", key.slice(sparkJars.length));
  }
  if (emrJars !== undefined && key.startsWith(emrJars)) return null;
  if (key === ARTIFACT_KEYS.driverProfile) return null;
  if (key === ARTIFACT_KEYS.jobScript) return join(ctx.root, "spark/feature_job.py");
  if (key === ARTIFACT_KEYS.pyFiles) return ctx.pyFilesZip;
  if (key.startsWith(ARTIFACT_KEYS.featureViewsPrefix)) {
    return join(ctx.compiledViewsDir, key.slice(ARTIFACT_KEYS.featureViewsPrefix.length));
  }
  throw new StepTranslationError(
    `No local counterpart for the artifact s3://${ctx.buckets.artifacts}/${key}`,
  );
}

/** A raw input (raw bucket) → where it is downloaded to here. */
function rawInput(uri: string, ctx: StepTranslationContext): { from: S3Location; to: string } | undefined {
  const at = parseS3Uri(uri);
  if (at === undefined || at.bucket !== ctx.buckets.raw) return undefined;
  if (at.key.split("/").includes("..")) throw new StepTranslationError(`Unsafe key in ${uri}`);
  return { from: at, to: join(ctx.inputsDir, at.key) };
}

/**
 * An arguments manifest as the functions wrote it (s3:// inputs) → the same manifest for this
 * machine (the downloaded paths) and the downloads; repair entities pass unchanged.
 */
export function translateArgumentsManifest(
  text: string,
  ctx: StepTranslationContext,
): { text: string; downloads: Array<{ from: S3Location; to: string }> } {
  const body = JSON.parse(text) as { inputs?: unknown };
  if (!Array.isArray(body.inputs)) return { text, downloads: [] };
  const downloads = body.inputs.map((uri) => {
    const input = typeof uri === "string" ? rawInput(uri, ctx) : undefined;
    if (!input) throw new StepTranslationError(`No local counterpart for the manifest input ${String(uri)}`);
    return input;
  });
  return { text: `${JSON.stringify({ ...body, inputs: downloads.map((d) => d.to) })}\n`, downloads };
}

export function translateStepArgs(args: readonly string[], ctx: StepTranslationContext): LocalStepCommand {
  if (args[0] !== "spark-submit") {
    throw new StepTranslationError(`Not a spark-submit step: ${args.slice(0, 3).join(" ")}`);
  }
  const notes: string[] = [];
  const downloads: Array<{ from: S3Location; to: string }> = [];
  let emrPython: string | undefined;

  /** Any s3:// URI of the three buckets → local path (null: EMR-only artifact). */
  const local = (uri: string, as: "input" | "output" | "artifact"): string | null => {
    if (!uri.startsWith("s3://")) return uri;
    const at = parseS3Uri(uri);
    if (at === undefined) throw new StepTranslationError(`Malformed S3 URI ${uri}`);
    if (at.bucket === ctx.buckets.artifacts) return artifactPath(at.key, ctx);
    if (at.bucket === ctx.buckets.offline) return join(ctx.offlineDir, at.key);
    const input = as === "input" ? rawInput(uri, ctx) : undefined;
    if (input) {
      downloads.push(input);
      return input.to;
    }
    throw new StepTranslationError(`No local counterpart for ${uri} (as ${as})`);
  };
  const localList = (list: string): string[] =>
    list
      .split(",")
      .map((uri) => local(uri, "artifact"))
      .filter((path): path is string => path !== null);

  // spark-submit options, up to the job script.
  const sparkOptions: string[] = [];
  let i = 1;
  for (; i < args.length; i++) {
    const option = args[i] as string;
    if (!option.startsWith("--")) break;
    if (SPARK_FLAGS.has(option)) {
      sparkOptions.push(option);
      continue;
    }
    const value = args[++i];
    if (value === undefined) throw new StepTranslationError(`${option} has no value`);
    if (option === "--deploy-mode") {
      if (value !== "client") notes.push(`--deploy-mode ${value} → client`);
      sparkOptions.push(option, "client");
    } else if (
      option === "--jars" ||
      option === "--files" ||
      option === "--py-files" ||
      option === "--archives"
    ) {
      const paths = localList(value);
      const dropped = value.split(",").length - paths.length;
      if (dropped > 0)
        notes.push(`${option}: ${dropped} EMR-only entr${dropped === 1 ? "y" : "ies"} dropped`);
      if (paths.length > 0) sparkOptions.push(option, paths.join(","));
    } else if (option === "--conf" && value.startsWith(`${PROFILE_CONF}=`)) {
      notes.push(`--conf ${PROFILE_CONF} dropped (Keyspaces profile)`);
    } else if (option === "--conf" && value.startsWith(`${PYSPARK_PYTHON_CONF}=`)) {
      emrPython = value.slice(PYSPARK_PYTHON_CONF.length + 1);
      notes.push(`--conf ${PYSPARK_PYTHON_CONF}=${emrPython} → the venv's Python`);
    } else {
      sparkOptions.push(option, value);
    }
  }
  const scriptUri = args[i];
  if (scriptUri === undefined) throw new StepTranslationError("The step names no job script");
  const jobScript = local(scriptUri, "artifact");
  if (jobScript === null)
    throw new StepTranslationError(`The job script ${scriptUri} has no local counterpart`);

  // The job's own arguments (docs/SPARK_JOB.md): every one is "--name value".
  const jobArgs: string[] = [];
  let runId: string | undefined;
  let view: string | undefined;
  let summary: LocalStepCommand["summary"];
  let argumentsManifest: LocalStepCommand["argumentsManifest"];
  let timeoutMinutes: number | undefined;
  for (i += 1; i < args.length; i += 2) {
    const name = args[i] as string;
    const value = args[i + 1];
    if (!name.startsWith("--") || value === undefined) {
      throw new StepTranslationError(`Unexpected job argument ${name}`);
    }
    switch (name) {
      case "--input":
        jobArgs.push(name, local(value, "input") as string);
        break;
      case "--feature-view":
      case "--offline-uri":
      case "--rejects-uri": {
        const path = local(value, name === "--feature-view" ? "artifact" : "output");
        if (path === null) throw new StepTranslationError(`${name} ${value} has no local counterpart`);
        jobArgs.push(name, path);
        break;
      }
      case "--arguments-manifest": {
        // Written by the function that added the step, to moto's offline bucket; the runner copies it
        // here with the inputs' local paths (translateArgumentsManifest).
        const path = local(value, "output") as string;
        const s3 = parseS3Uri(value);
        if (s3 === undefined)
          throw new StepTranslationError(`--arguments-manifest ${value} is not an s3:// URI`);
        argumentsManifest = { from: s3, to: path };
        jobArgs.push(name, path);
        break;
      }
      case "--summary-uri": {
        const path = local(value, "output") as string;
        const s3 = parseS3Uri(value);
        if (s3 !== undefined) summary = { local: path, s3 };
        jobArgs.push(name, path);
        break;
      }
      case "--cassandra-profile":
        notes.push(`--cassandra-profile ${value} → the local Cassandra node`);
        // The node's login (SigV4's local stand-in) reaches the job as CASSANDRA_USERNAME /
        // CASSANDRA_PASSWORD in the job runner's environment, never as an argument here.
        jobArgs.push(
          "--cassandra-host",
          ctx.cassandra.host,
          "--cassandra-port",
          String(ctx.cassandra.port),
          "--cassandra-datacenter",
          ctx.cassandra.datacenter,
        );
        break;
      default:
        if (name === "--run-id") runId = value;
        if (name === "--view") view = value;
        if (name === "--timeout-minutes") timeoutMinutes = Number(value);
        jobArgs.push(name, value);
    }
  }
  if (runId === undefined || view === undefined) {
    throw new StepTranslationError("The step has no --run-id or --view");
  }
  return {
    sparkOptions,
    jobScript,
    jobArgs,
    runId,
    view,
    downloads,
    summary,
    ...(argumentsManifest ? { argumentsManifest } : {}),
    emrPython,
    notes,
    ...(timeoutMinutes !== undefined && Number.isFinite(timeoutMinutes) ? { timeoutMinutes } : {}),
  };
}
