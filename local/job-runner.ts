// The local stand-in for EMR's step executor: polls ListSteps on the local (moto) cluster and runs
// each new step's own spark-submit command on this machine (translated by step-translation.ts),
// one at a time, oldest first. moto cannot mark steps done, so the runner keeps each step's state
// in its own ledger file; after a run it uploads the summary JSON to where the real job writes it.
import { type ChildProcess, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import {
  DescribeStepCommand,
  type EMRClient,
  type HadoopStepConfig,
  ListStepsCommand,
} from "@aws-sdk/client-emr";
import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { EMR_STEP_MAX_CHARACTERS, hadoopJarStepCharacters } from "#commons/jobs/spark-submit-step.js";
import { signalGroup, sleep, terminateGroup } from "./engines.js";
import {
  type LocalStepCommand,
  type StepTranslationContext,
  translateArgumentsManifest,
  translateStepArgs,
} from "./step-translation.js";

/**
 * Why EMR would have refused this step, or undefined. AddJobFlowSteps refuses a step whose
 * HadoopJarStep strings total more than 10,240 characters (docs/AWS_CONTRACTS.md E10); moto accepts
 * any, so the runner fails such a step instead of running it, and the suites fail where EMR would.
 */
export function emrStepRefusal(config: HadoopStepConfig | undefined): string | undefined {
  const characters = hadoopJarStepCharacters({
    Jar: config?.Jar,
    MainClass: config?.MainClass,
    Args: config?.Args,
    Properties: Object.entries(config?.Properties ?? {}).map(([Key, Value]) => ({ Key, Value })),
  });
  if (characters <= EMR_STEP_MAX_CHARACTERS) return undefined;
  return (
    `EMR refuses this step: its HadoopJarStep strings total ${characters} characters, more than ` +
    `${EMR_STEP_MAX_CHARACTERS} (AddJobFlowSteps; docs/AWS_CONTRACTS.md E10)`
  );
}

/**
 * What each interpreter path is on EMR 7.1 and later (Amazon Linux 2023): Python 3.9 and 3.11 ship
 * (https://docs.aws.amazon.com/emr/latest/ReleaseGuide/emr-release-app-versions-7.x.html), and
 * `/usr/bin/python3`, the default a step gets when it names none, stays AL2023's system 3.9
 * (https://docs.aws.amazon.com/linux/al2023/ug/python.html). docs/AWS_CONTRACTS.md E11.
 */
const EMR_INTERPRETERS: Readonly<Record<string, readonly [number, number]>> = {
  "/usr/bin/python3": [3, 9],
  "/usr/bin/python3.9": [3, 9],
  "/usr/bin/python3.11": [3, 11],
};

/** The job's `requires-python = ">=X.Y"` (spark/pyproject.toml) as [X, Y]. */
export function jobRequiresPython(pyprojectText: string): readonly [number, number] {
  const found = /^requires-python\s*=\s*">=\s*(\d+)\.(\d+)"/m.exec(pyprojectText);
  if (!found) throw new Error('spark/pyproject.toml has no requires-python = ">=X.Y"');
  return [Number(found[1]), Number(found[2])];
}

/**
 * Why the job would not run on the Python EMR gives this step, or undefined. Here every step runs on
 * the venv's Python (3.11), which would hide a step that runs on EMR's default 3.9 there; the runner
 * fails such a step instead, so the suites fail where EMR would.
 */
export function emrPythonRefusal(
  emrPython: string | undefined,
  requires: readonly [number, number],
): string | undefined {
  const path = emrPython ?? "/usr/bin/python3";
  const version = EMR_INTERPRETERS[path];
  const needed = `the job requires Python >=${requires.join(".")} (spark/pyproject.toml; docs/AWS_CONTRACTS.md E11)`;
  if (version === undefined) {
    return `EMR 7 has no ${path} (it ships Python 3.9 and 3.11); ${needed}`;
  }
  const [major, minor] = version;
  if (major > requires[0] || (major === requires[0] && minor >= requires[1])) return undefined;
  const which =
    emrPython === undefined
      ? `this step names no --conf spark.pyspark.python, so EMR runs it on ${path}, Python ${version.join(".")}`
      : `on EMR ${path} is Python ${version.join(".")}`;
  return `EMR would run this step on the wrong Python: ${which}; ${needed}`;
}

export type StepState = "PENDING" | "RUNNING" | "COMPLETED" | "FAILED";

export interface StepRecord {
  readonly stepId: string;
  readonly name: string;
  state: StepState;
  runId?: string;
  view?: string;
  inputs?: string[];
  startedAt?: string;
  endedAt?: string;
  seconds?: number;
  exitCode?: number | null;
  log?: string;
  summary?: unknown;
  summaryUri?: string;
  error?: string;
}

export interface JobRunnerOptions {
  readonly emr: EMRClient;
  readonly s3: S3Client;
  readonly clusterId: string;
  readonly translation: StepTranslationContext;
  readonly root: string;
  /**
   * The local launcher (scripts/spark-submit.sh): spark-submit with the local jar set, the zipped
   * feature_store package and Delta configured — the local equivalents of the step's Spark options.
   * It takes the job's arguments.
   */
  readonly sparkSubmit: string;
  /** SPARK_MASTER, SPARK_DRIVER_MEMORY, CASSANDRA_USERNAME / CASSANDRA_PASSWORD, … for the launcher. */
  readonly env: NodeJS.ProcessEnv;
  readonly ledgerFile: string;
  readonly logsDir: string;
  readonly jobTimeoutMs: number;
  readonly warn: (message: string) => void;
}

export interface JobRunnerEvents {
  queued: [StepRecord];
  started: [StepRecord, LocalStepCommand];
  finished: [StepRecord];
}

export class JobRunner extends EventEmitter<JobRunnerEvents> {
  readonly #steps = new Map<string, StepRecord>();
  #stopped = false;
  #loop: Promise<void> | undefined;
  #child: ChildProcess | undefined;
  readonly #requiresPython: readonly [number, number];

  constructor(private readonly options: JobRunnerOptions) {
    super();
    this.#requiresPython = jobRequiresPython(
      readFileSync(join(options.root, "spark/pyproject.toml"), "utf8"),
    );
    mkdirSync(dirname(options.ledgerFile), { recursive: true });
    if (existsSync(options.ledgerFile)) {
      const saved = JSON.parse(readFileSync(options.ledgerFile, "utf8")) as { steps?: StepRecord[] };
      for (const step of saved.steps ?? []) {
        // A step interrupted mid-run (the stack was stopped) runs again: the job is idempotent.
        if (step.state === "RUNNING") step.state = "PENDING";
        this.#steps.set(step.stepId, step);
      }
    }
  }

  get steps(): readonly StepRecord[] {
    return [...this.#steps.values()];
  }

  get busy(): boolean {
    return this.steps.some((s) => s.state === "RUNNING" || s.state === "PENDING");
  }

  start(): void {
    this.#loop ??= this.run();
  }

  /** Resolves with the step of this run once it completed or failed; rejects after `timeoutMs`. */
  waitForRun(runId: string, timeoutMs: number): Promise<StepRecord> {
    const done = (s: StepRecord) => s.runId === runId && (s.state === "COMPLETED" || s.state === "FAILED");
    const already = this.steps.find(done);
    if (already) return Promise.resolve(already);
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        this.off("finished", listener);
        reject(new Error(`run ${runId} did not finish within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      const listener = (step: StepRecord) => {
        if (!done(step)) return;
        clearTimeout(timer);
        this.off("finished", listener);
        resolvePromise(step);
      };
      this.on("finished", listener);
    });
  }

  private save(): void {
    const tmp = `${this.options.ledgerFile}.tmp`;
    writeFileSync(
      tmp,
      `${JSON.stringify({ clusterId: this.options.clusterId, steps: this.steps }, null, 2)}\n`,
    );
    renameSync(tmp, this.options.ledgerFile);
  }

  private async run(): Promise<void> {
    while (!this.#stopped) {
      try {
        await this.discover();
        const next = this.steps.find((s) => s.state === "PENDING");
        if (next) await this.execute(next);
        else await sleep(1000);
      } catch (error) {
        if (this.#stopped) break;
        this.options.warn((error as Error).message);
        await sleep(2000);
      }
    }
  }

  /** New steps on the cluster, oldest first (ListSteps answers newest first). */
  private async discover(): Promise<void> {
    const listed = await this.options.emr.send(new ListStepsCommand({ ClusterId: this.options.clusterId }));
    const fresh = (listed.Steps ?? []).filter((s) => s.Id && !this.#steps.has(s.Id)).reverse();
    for (const summary of fresh) {
      const record: StepRecord = { stepId: summary.Id as string, name: summary.Name ?? "", state: "PENDING" };
      this.#steps.set(record.stepId, record);
      this.save();
      this.emit("queued", record);
    }
  }

  private async execute(step: StepRecord): Promise<void> {
    const started = Date.now();
    step.state = "RUNNING";
    step.startedAt = new Date(started).toISOString();
    let command: LocalStepCommand | undefined;
    try {
      const described = await this.options.emr.send(
        new DescribeStepCommand({ ClusterId: this.options.clusterId, StepId: step.stepId }),
      );
      const args = described.Step?.Config?.Args ?? [];
      command = translateStepArgs(args, this.options.translation);
      step.runId = command.runId;
      step.view = command.view;
      const refusal =
        emrStepRefusal(described.Step?.Config) ?? emrPythonRefusal(command.emrPython, this.#requiresPython);
      if (refusal) throw new Error(refusal);
      const downloads = [...command.downloads];
      if (command.argumentsManifest) {
        const { from, to } = command.argumentsManifest;
        const object = await this.options.s3.send(
          new GetObjectCommand({ Bucket: from.bucket, Key: from.key }),
        );
        const manifest = translateArgumentsManifest(
          (await object.Body?.transformToString("utf-8")) ?? "",
          this.options.translation,
        );
        mkdirSync(dirname(to), { recursive: true });
        writeFileSync(to, manifest.text);
        downloads.push(...manifest.downloads);
      }
      step.runId = command.runId;
      step.view = command.view;
      step.inputs = downloads.map((d) => `s3://${d.from.bucket}/${d.from.key}`);
      step.log = join(this.options.logsDir, `job-${command.runId}.log`);
      this.save();
      this.emit("started", step, command);
      for (const download of downloads) await this.download(download.from, download.to);
      step.exitCode = await this.spark(command, step.log);
      if (command.summary && existsSync(command.summary.local)) {
        const text = readFileSync(command.summary.local, "utf8");
        step.summary = JSON.parse(text) as unknown;
        step.summaryUri = `s3://${command.summary.s3.bucket}/${command.summary.s3.key}`;
        await this.options.s3.send(
          new PutObjectCommand({
            Bucket: command.summary.s3.bucket,
            Key: command.summary.s3.key,
            Body: text,
            ContentType: "application/json",
          }),
        );
      }
      step.state = step.exitCode === 0 ? "COMPLETED" : "FAILED";
      if (step.exitCode !== 0) step.error = `spark-submit exited with ${step.exitCode}; see ${step.log}`;
    } catch (error) {
      step.state = "FAILED";
      step.error = (error as Error).message;
    }
    if (this.#stopped && step.state === "FAILED") {
      // Interrupted by stop(). moto's cluster (and the step) end with this run, so say what to redo;
      // re-running the job is safe (Delta MERGE, online writes ordered by feature date).
      step.state = "PENDING";
      this.save();
      this.options.warn(
        `job ${step.runId ?? step.stepId} was interrupted; upload ${step.inputs?.join(", ") ?? "its input"} again after restarting`,
      );
      return;
    }
    step.endedAt = new Date().toISOString();
    step.seconds = Math.round((Date.now() - started) / 100) / 10;
    this.save();
    this.emit("finished", step);
  }

  private async download(from: { bucket: string; key: string }, to: string): Promise<void> {
    mkdirSync(dirname(to), { recursive: true });
    const object = await this.options.s3.send(new GetObjectCommand({ Bucket: from.bucket, Key: from.key }));
    if (!object.Body) throw new Error(`s3://${from.bucket}/${from.key} has no body`);
    await pipeline(object.Body as NodeJS.ReadableStream, createWriteStream(to));
  }

  private spark(command: LocalStepCommand, logFile: string): Promise<number | null> {
    mkdirSync(dirname(logFile), { recursive: true });
    const argv = [...command.jobArgs];
    const log = createWriteStream(logFile);
    log.write(`# ${new Date().toISOString()} ${this.options.sparkSubmit} ${argv.join(" ")}\n`);
    log.write(`# the step's Spark options, translated: ${command.sparkOptions.join(" ")}\n`);
    for (const note of command.notes) log.write(`# local translation: ${note}\n`);
    const extra = extraSparkOptions(command, this.options.translation);
    if (extra.length > 0) {
      this.options.warn(
        `spark options of the step that the local launcher does not apply: ${extra.join(" ")}`,
      );
    }
    return new Promise((resolvePromise, reject) => {
      // Own process group, so stop() ends the spark-submit JVM and its Python workers together.
      const child = spawn("bash", [this.options.sparkSubmit, ...argv], {
        cwd: this.options.root,
        env: { ...process.env, ...this.options.env },
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
      this.#child = child;
      child.stdout.pipe(log, { end: false });
      child.stderr.pipe(log, { end: false });
      // The job ends itself at --timeout-minutes (exit 124); this is the backstop a minute later.
      const timeoutMs =
        command.timeoutMinutes === undefined
          ? this.options.jobTimeoutMs
          : Math.min(this.options.jobTimeoutMs, (command.timeoutMinutes + 1) * 60_000);
      const timer = setTimeout(() => {
        log.write(`# timed out after ${timeoutMs} ms; killing\n`);
        if (child.pid) signalGroup(child.pid, "SIGKILL");
      }, timeoutMs);
      child.on("error", (error) => {
        clearTimeout(timer);
        this.#child = undefined;
        log.end();
        reject(error);
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        this.#child = undefined;
        log.end(`# exit ${code}\n`);
        resolvePromise(code);
      });
    });
  }

  /** Stops polling and ends a running job (its whole process group). */
  async stop(): Promise<void> {
    this.#stopped = true;
    const child = this.#child;
    if (child) await terminateGroup(child, "close", 10_000, 3000);
    await Promise.race([this.#loop?.catch(() => undefined), sleep(15_000)]);
  }
}

/**
 * The step's Spark options beyond what the local launcher supplies itself (client mode, the local
 * jar set, the package zip): a new option in the EMR step shows up here instead of being lost silently.
 */
export function extraSparkOptions(command: LocalStepCommand, ctx: StepTranslationContext): string[] {
  const supplied: Record<string, (value: string) => boolean> = {
    "--deploy-mode": (v) => v === "client",
    "--jars": (v) => v === join(ctx.jarsDir, "spark", "*.jar"),
    "--py-files": (v) => v === ctx.pyFilesZip,
  };
  const extra: string[] = [];
  for (let i = 0; i < command.sparkOptions.length; i += 2) {
    const option = command.sparkOptions[i] as string;
    const value = command.sparkOptions[i + 1] ?? "";
    if (!supplied[option]?.(value)) extra.push(option, value);
  }
  return extra;
}
