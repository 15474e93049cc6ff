// The engines under the local pipeline: the Cassandra node (scripts/cassandra.sh, shared with the
// other suites: reused when running, stopped at the end only if started here) and a moto server of
// the pipeline's own (S3, SQS and EMR on its own port, a child process with its own pid file).
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Client } from "cassandra-driver";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { localCassandraAuthProvider } from "#scripts/cassandra/local-credentials.js";
import { applyOnlineSchema } from "#scripts/cassandra/online-schema-migration.js";
import type { LocalPaths, LocalSettings } from "./settings.js";

export type Say = (message: string) => void;

function runScript(
  paths: LocalPaths,
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number; output: string }> {
  return new Promise((resolvePromise) => {
    execFile(
      "bash",
      [join(paths.root, script), ...args],
      { cwd: paths.root, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolvePromise({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}

/** The shared Cassandra node: `stop()` stops it only if `start()` started it. */
export class CassandraEngine {
  #startedHere = false;

  constructor(
    private readonly paths: LocalPaths,
    private readonly settings: LocalSettings,
    private readonly say: Say,
  ) {}

  get startedHere(): boolean {
    return this.#startedHere;
  }

  private env(): NodeJS.ProcessEnv {
    return {
      FEATURE_STORE_LOCAL_DIR: this.paths.localDir,
      CASSANDRA_PORT: String(this.settings.CASSANDRA_PORT),
      KEYSPACE: this.settings.KEYSPACE,
    };
  }

  async running(): Promise<boolean> {
    const status = await runScript(this.paths, "scripts/cassandra.sh", ["status"], this.env(), 30_000);
    return status.code === 0;
  }

  async start(): Promise<void> {
    if (await this.running()) {
      this.say(`cassandra: reusing the node already running on 127.0.0.1:${this.settings.CASSANDRA_PORT}`);
      return;
    }
    this.say("cassandra: starting (scripts/cassandra.sh start; first start takes 20-60 s)");
    // Marked before the call: if start-up is interrupted, stop() still cleans up the half-started node.
    this.#startedHere = true;
    const started = await runScript(this.paths, "scripts/cassandra.sh", ["start"], this.env(), 300_000);
    if (started.code !== 0) {
      throw new Error(`scripts/cassandra.sh start failed (exit ${started.code}):\n${tail(started.output)}`);
    }
  }

  /** Creates the keyspace and tables from the feature views (idempotent; refuses incompatible changes). */
  async applySchema(): Promise<void> {
    const client = new Client({
      contactPoints: ["127.0.0.1"],
      localDataCenter: this.settings.CASSANDRA_LOCAL_DC,
      protocolOptions: { port: this.settings.CASSANDRA_PORT },
      // The project's login role, whose password `scripts/cassandra.sh start` keeps in the local dir.
      authProvider: localCassandraAuthProvider({ ...process.env, ...this.env() }),
    });
    try {
      await client.connect();
      const outcomes = await applyOnlineSchema(
        client,
        loadFeatureViews(this.paths.featureViewsDir).values(),
        this.settings.KEYSPACE,
        1,
      );
      for (const o of outcomes) this.say(`cassandra: ${this.settings.KEYSPACE}.${o.table} ${o.action}`);
    } finally {
      await client.shutdown();
    }
  }

  async stop(): Promise<void> {
    if (!this.#startedHere) return;
    this.say("cassandra: stopping the node started by this run (drain)");
    const stopped = await runScript(this.paths, "scripts/cassandra.sh", ["stop"], this.env(), 120_000);
    if (stopped.code !== 0) this.say(`cassandra: stop failed:\n${tail(stopped.output)}`);
    this.#startedHere = false;
  }
}

/**
 * A moto server owned by this process. Its pid file lets the next run remove a server a crashed
 * run left behind (only when the pid still is a moto_server on this port).
 */
export class MotoEngine {
  #child: ChildProcess | undefined;
  readonly url: string;
  readonly #pidFile: string;
  readonly #logFile: string;

  constructor(
    private readonly paths: LocalPaths,
    private readonly port: number,
    private readonly say: Say,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.#pidFile = join(paths.pipelineDir, `moto-${port}.pid`);
    this.#logFile = join(paths.logsDir, `moto-${port}.log`);
  }

  async start(): Promise<void> {
    mkdirSync(this.paths.logsDir, { recursive: true });
    this.removeLeftover();
    if (await answers(this.url)) {
      throw new Error(
        `port ${this.port} already answers HTTP; another process holds it (set LOCAL_MOTO_PORT to a free port)`,
      );
    }
    if (!existsSync(join(dirname(this.paths.venvPython), "moto_server"))) {
      throw new Error(`moto is not installed in ${dirname(this.paths.venvPython)}; run scripts/setup.sh`);
    }
    const log = openSync(this.#logFile, "w");
    // Own process group (detached): a terminal Ctrl-C reaches only the orchestrator, which then
    // stops this server itself, in order.
    // Through scripts/moto_server.py: moto with S3 events in the shape S3 sends (versionId).
    const child = spawn(
      this.paths.venvPython,
      [this.paths.motoServer, "-H", "127.0.0.1", "-p", String(this.port)],
      {
        detached: true,
        stdio: ["ignore", log, log],
      },
    );
    closeSync(log);
    this.#child = child;
    writeFileSync(this.#pidFile, `${child.pid}\n`);
    const deadline = Date.now() + 60_000;
    while (!(await answers(this.url))) {
      if (child.exitCode !== null) {
        throw new Error(`moto exited during start-up (code ${child.exitCode}); see ${this.#logFile}`);
      }
      if (Date.now() > deadline) throw new Error(`moto did not answer on ${this.url} within 60 s`);
      await sleep(250);
    }
    this.say(`moto: S3, SQS and EMR on ${this.url} (pid ${child.pid}, log ${this.#logFile})`);
  }

  private removeLeftover(): void {
    if (!existsSync(this.#pidFile)) return;
    const pid = Number(readFileSync(this.#pidFile, "utf8").trim());
    if (Number.isInteger(pid) && pid > 0 && isMotoOnPort(pid, this.port)) {
      this.say(`moto: stopping pid ${pid} left behind by an earlier run`);
      signalGroup(pid, "SIGKILL");
    }
    rmSync(this.#pidFile, { force: true });
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.pid === undefined) return;
    await terminateGroup(child, "exit", 5000, 2000);
    rmSync(this.#pidFile, { force: true });
    this.#child = undefined;
    this.say("moto: stopped");
  }
}

function isMotoOnPort(pid: number, port: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return cmdline.some((part) => /moto_server(\.py)?$/.test(part)) && cmdline.includes(String(port));
  } catch {
    return false;
  }
}

/** Signals a process group led by `pid` (our detached children), falling back to the process. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/**
 * Ends a detached child and its process group: SIGTERM, then SIGKILL if it has not emitted
 * `ended` within `graceMs`; waits at most `killWaitMs` more after the kill.
 */
export async function terminateGroup(
  child: ChildProcess,
  ended: "exit" | "close",
  graceMs: number,
  killWaitMs: number,
): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((r) => child.once(ended, () => r()));
  signalGroup(pid, "SIGTERM");
  const timedOut = await Promise.race([done.then(() => false), sleep(graceMs).then(() => true)]);
  if (timedOut) {
    signalGroup(pid, "SIGKILL");
    await Promise.race([done, sleep(killWaitMs)]);
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/moto-api/`, { signal: AbortSignal.timeout(2000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function tail(text: string, lines = 20): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}
