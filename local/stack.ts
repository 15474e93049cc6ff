// The local pipeline as one object: engines (Cassandra, moto), the local AWS resources, the real
// ingest handler fed by S3 events, the job runner executing EMR steps with a local spark-submit,
// and getFeatures behind a local HTTP API. `npm run local` and the e2e suite both start it here.
// stop() undoes exactly what start() did, in reverse, even when start() was interrupted half-way.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { CreateTableCommand, ResourceInUseException } from "@aws-sdk/client-dynamodb";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { Client } from "cassandra-driver";
import { writeCompiledViews } from "#commons/compiled-view.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { type FileItem, readFile } from "#commons/run-ledger.js";
import { DynamoDbRunLedgerStore } from "#commons/run-ledger-store.js";
import { runLedgerTableDefinition } from "#commons/run-ledger-table.js";
import type { IngestOutcome } from "#functions/ingest/ingest-raw-files.js";
import { localCassandraAuthEnv, localCassandraAuthProvider } from "#scripts/cassandra/local-credentials.js";
import { CassandraClock } from "./cassandra-clock.js";
import { CassandraEngine, MotoEngine, type Say, sleep } from "./engines.js";
import { type HttpHandler, LocalHttpApi } from "./http-adapter.js";
import { IamVerifier } from "./iam-auth.js";
import { JobRunner, type StepRecord } from "./job-runner.js";
import {
  createLocalAws,
  type LocalAws,
  type LocalAwsClients,
  localAwsClients,
  pointSdkAt,
} from "./local-aws.js";
import {
  createRunEventsRoute,
  publishStepStatus,
  type RunEventsHandler,
  RunEventsPoller,
} from "./run-events.js";
import { type IngestHandler, S3EventPoller, type S3EventReport } from "./s3-events.js";
import { type LocalPaths, type LocalSettings, localBuckets } from "./settings.js";

export interface LocalStackOptions {
  readonly settings: LocalSettings;
  readonly paths: LocalPaths;
  readonly say: Say;
  /** Called for every ingest invocation (outcomes, failures). */
  readonly onIngest?: (report: S3EventReport) => void;
  readonly onStep?: (event: "queued" | "started" | "finished", step: StepRecord) => void;
  readonly jobTimeoutMs?: number;
  /** How often the scheduled reconcile runs (the stack: every 5 minutes). */
  readonly reconcileMs?: number;
}

/** What `npm run local:upload` needs to find the running stack. */
export interface StackFile {
  readonly pid: number;
  readonly endpoint: string;
  readonly httpUrl: string;
  /** "iam": requests must be SigV4-signed with LOCAL_IAM_CREDENTIALS (region eu-west-1). */
  readonly httpAuth: "none" | "iam";
  readonly buckets: LocalAws["buckets"];
  readonly view: string;
  readonly keyspace: string;
  readonly clusterId: string;
  /** The run ledger's DynamoDB table on the moto endpoint (`npm run local:status` reads it). */
  readonly runLedgerTable: string;
  readonly startedAt: string;
  /** Households of the generated seed data, so generated uploads cover the same entities. */
  readonly sampleHouseholds?: number;
}

interface RecordedOutcome {
  readonly seq: number;
  readonly outcome: IngestOutcome;
}

export class LocalStack {
  readonly cassandra: CassandraEngine;
  readonly moto: MotoEngine;
  readonly clients: LocalAwsClients;
  readonly #undo: Array<{ name: string; run: () => Promise<void> }> = [];
  readonly #outcomes: RecordedOutcome[] = [];
  readonly #outcomeWaiters = new Set<() => void>();
  #seq = 0;
  #aws: LocalAws | undefined;
  #runner: JobRunner | undefined;
  #httpUrl: string | undefined;
  #ledger: DynamoDbRunLedgerStore | undefined;
  #stopping: Promise<void> | undefined;

  constructor(private readonly options: LocalStackOptions) {
    const { settings, paths, say } = options;
    this.cassandra = new CassandraEngine(paths, settings, say);
    this.moto = new MotoEngine(paths, settings.LOCAL_MOTO_PORT, say);
    this.clients = localAwsClients(this.moto.url);
  }

  get aws(): LocalAws {
    if (!this.#aws) throw new Error("the local stack is not started");
    return this.#aws;
  }

  get runner(): JobRunner {
    if (!this.#runner) throw new Error("the local stack is not started");
    return this.#runner;
  }

  get httpUrl(): string {
    if (!this.#httpUrl) throw new Error("the local stack is not started");
    return this.#httpUrl;
  }

  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  private checkNotStopping(): void {
    if (this.#stopping) throw new Error("the local stack is stopping");
  }

  /** Cassandra (+ schema) and moto, started concurrently. */
  async startEngines(): Promise<void> {
    const { paths } = this.options;
    for (const dir of [paths.pipelineDir, paths.logsDir, paths.offlineDir])
      mkdirSync(dir, { recursive: true });
    this.#undo.push({ name: "cassandra", run: () => this.cassandra.stop() });
    this.#undo.push({ name: "moto", run: () => this.moto.stop() });
    await Promise.all([
      this.cassandra.start().then(() => {
        this.checkNotStopping();
        return this.cassandra.applySchema();
      }),
      this.moto.start(),
    ]);
    this.checkNotStopping();
  }

  /** Buckets, queue, cluster; then ingest, the job runner and the HTTP API. */
  async startServices(): Promise<void> {
    const { settings, paths, say } = this.options;
    pointSdkAt(this.moto.url);
    const buckets = localBuckets(settings.LOCAL_BUCKET_PREFIX);
    const aws = await createLocalAws(
      this.moto.url,
      this.clients,
      buckets,
      `${settings.LOCAL_BUCKET_PREFIX}-raw-events`,
    );
    this.#aws = aws;
    const runLedgerTable = `${settings.LOCAL_BUCKET_PREFIX}-runs`;
    try {
      await this.clients.dynamodb.send(new CreateTableCommand(runLedgerTableDefinition(runLedgerTable)));
    } catch (error) {
      // moto keeps its state while it runs: a restarted stack on the same moto reuses the ledger.
      if (!(error instanceof ResourceInUseException)) throw error;
    }
    this.#ledger = new DynamoDbRunLedgerStore(runLedgerTable, this.clients.dynamodb);
    const runEventsQueue = await createRunEventsRoute(
      this.clients.events,
      this.clients.sqs,
      `${settings.LOCAL_BUCKET_PREFIX}-run-events`,
    );
    this.checkNotStopping();

    // The project's login role on the local node (Keyspaces would authenticate with SigV4): the
    // handlers get it as CASSANDRA_USERNAME / CASSANDRA_PASSWORD, the Spark job through its environment.
    const cassandraAuth = localCassandraAuthEnv({ ...process.env, FEATURE_STORE_LOCAL_DIR: paths.localDir });
    // The handlers read their configuration once, at import: everything is set before.
    Object.assign(process.env, {
      FEATURE_VIEWS_DIR: paths.featureViewsDir,
      RAW_BUCKET: buckets.raw,
      OFFLINE_BUCKET: buckets.offline,
      ARTIFACTS_BUCKET: buckets.artifacts,
      KEYSPACE: settings.KEYSPACE,
      EMR_CLUSTER_ID: aws.clusterId,
      STACK_NAME: "feature-store-local",
      RUN_LEDGER_TABLE: runLedgerTable,
      ONLINE_STORE: "cassandra",
      CASSANDRA_CONTACT_POINTS: "127.0.0.1",
      CASSANDRA_PORT: String(settings.CASSANDRA_PORT),
      CASSANDRA_LOCAL_DC: settings.CASSANDRA_LOCAL_DC,
      ...cassandraAuth,
      POWERTOOLS_SERVICE_NAME: "feature-store-local",
      // As in Lambda: INFO logs and EMF metric lines on stdout (handler-output.ts sends them to a file).
      POWERTOOLS_LOG_LEVEL: "INFO",
      POWERTOOLS_METRICS_NAMESPACE: "FeatureStoreLocal",
    });

    const ingest = (await import("#functions/ingest/handler.js")) as unknown as {
      handler: IngestHandler;
    };
    const poller = new S3EventPoller(this.clients.sqs, aws.queueUrl, ingest.handler, (report) => {
      if (report.kind === "outcomes") {
        for (const outcome of report.outcomes) this.#outcomes.push({ seq: ++this.#seq, outcome });
        for (const wake of this.#outcomeWaiters) wake();
      }
      this.options.onIngest?.(report);
    });
    poller.start();
    this.#undo.push({ name: "ingest poller", run: () => poller.stop() });

    // The job reads views compiled, as the deploy uploads them; step translation points here.
    const views = [...loadFeatureViews(paths.featureViewsDir).values()];
    writeCompiledViews(views, paths.compiledViewsDir);

    // The node's timestamp window follows the wall clock, as Keyspaces' does (cassandra-clock.ts).
    const clockClient = new Client({
      contactPoints: ["127.0.0.1"],
      localDataCenter: settings.CASSANDRA_LOCAL_DC,
      protocolOptions: { port: settings.CASSANDRA_PORT },
      authProvider: localCassandraAuthProvider({ ...process.env, FEATURE_STORE_LOCAL_DIR: paths.localDir }),
    });
    this.#undo.push({ name: "node clock client", run: () => clockClient.shutdown() });
    const clock = new CassandraClock(
      clockClient,
      { keyspace: settings.KEYSPACE, table: views[0]?.onlineTable ?? "" },
      (message) => say(`node clock: ${message}`),
    );
    if (views.length > 0) {
      clock.start();
      this.#undo.push({ name: "node clock", run: async () => clock.stop() });
    }
    const runner = new JobRunner({
      emr: this.clients.emr,
      s3: this.clients.s3,
      clusterId: aws.clusterId,
      translation: {
        buckets,
        root: paths.root,
        jarsDir: join(paths.localDir, "jars"),
        // Built by scripts/spark-submit.sh, as the deploy builds spark/feature_store.zip.
        pyFilesZip: join(paths.localDir, "spark/feature_store.zip"),
        compiledViewsDir: paths.compiledViewsDir,
        offlineDir: paths.offlineDir,
        inputsDir: paths.inputsDir,
        cassandra: {
          host: "127.0.0.1",
          port: settings.CASSANDRA_PORT,
          datacenter: settings.CASSANDRA_LOCAL_DC,
        },
      },
      root: paths.root,
      sparkSubmit: join(paths.root, "scripts/spark-submit.sh"),
      env: {
        FEATURE_STORE_LOCAL_DIR: paths.localDir,
        SPARK_MASTER: `local[${settings.LOCAL_SPARK_CORES}]`,
        SPARK_DRIVER_MEMORY: settings.LOCAL_SPARK_DRIVER_MEMORY,
        SPARK_SHUFFLE_PARTITIONS: String(settings.LOCAL_SPARK_CORES * 2),
        SPARK_LOCAL_IP: "127.0.0.1",
        // In the environment, not in the step's arguments: no password in `ps` or the step ledger.
        ...cassandraAuth,
      },
      ledgerFile: join(paths.pipelineDir, "steps", `${aws.clusterId}.json`),
      warn: (message) => say(`job runner: ${message}`),
      logsDir: paths.logsDir,
      jobTimeoutMs: this.options.jobTimeoutMs ?? 30 * 60_000,
    });
    for (const event of ["queued", "started", "finished"] as const) {
      runner.on(event, (step: StepRecord) => this.options.onStep?.(event, step));
    }
    // What EMR tells EventBridge about a step, the runner tells moto's EventBridge.
    const publish = (step: StepRecord, state: "RUNNING" | "COMPLETED" | "FAILED") =>
      publishStepStatus(this.clients.events, {
        name: step.name,
        stepId: step.stepId,
        clusterId: aws.clusterId,
        state,
        ...(step.error ? { message: step.error } : {}),
      }).catch((error: unknown) =>
        say(`job runner: publishing the step event failed: ${(error as Error).message}`),
      );
    runner.on("started", (step: StepRecord) => {
      void publish(step, "RUNNING");
      if (views.length > 0) void clock.tick().catch(() => {}); // the minute's tick warns when this fails too
    });
    runner.on(
      "finished",
      (step: StepRecord) => void publish(step, step.state === "COMPLETED" ? "COMPLETED" : "FAILED"),
    );
    const runEvents = (await import("#functions/run-events/handler.js")) as unknown as {
      handler: RunEventsHandler;
    };
    const runEventsPoller = new RunEventsPoller(
      this.clients.sqs,
      runEventsQueue,
      runEvents.handler,
      this.options.reconcileMs ?? 10_000,
      (message) => say(`runEvents: ${message}`),
    );
    runEventsPoller.start();
    this.#undo.push({ name: "run events", run: () => runEventsPoller.stop() });
    runner.start();
    this.#runner = runner;
    this.#undo.push({ name: "job runner", run: () => runner.stop() });

    const serving = (await import("#functions/get-features/handler.js")) as unknown as {
      handler: HttpHandler;
      connected: Promise<boolean>;
      store: { close(): Promise<void> };
    };
    this.#undo.push({ name: "online store client", run: () => serving.store.close() });
    if (!(await serving.connected))
      say("getFeatures: the online store did not answer at init; reads will retry");
    const api = new LocalHttpApi(serving.handler, {
      log: say,
      ...(settings.LOCAL_HTTP_AUTH === "iam" ? { auth: new IamVerifier() } : {}),
    });
    this.#httpUrl = await api.listen(settings.LOCAL_HTTP_PORT);
    this.#undo.push({ name: "HTTP API", run: () => api.close() });

    const stackFile: StackFile = {
      pid: process.pid,
      endpoint: this.moto.url,
      httpUrl: this.#httpUrl,
      httpAuth: settings.LOCAL_HTTP_AUTH,
      buckets,
      view: settings.FEATURE_VIEW,
      keyspace: settings.KEYSPACE,
      clusterId: aws.clusterId,
      runLedgerTable,
      startedAt: new Date().toISOString(),
    };
    writeFileSync(paths.stackFile, `${JSON.stringify(stackFile, null, 2)}\n`);
    this.#undo.push({ name: "stack file", run: async () => rmSync(paths.stackFile, { force: true }) });
  }

  /** Adds facts to the stack file (read by `npm run local:upload`). */
  annotate(facts: Pick<StackFile, "sampleHouseholds">): void {
    const file = this.options.paths.stackFile;
    if (!existsSync(file)) return;
    const current = JSON.parse(readFileSync(file, "utf8")) as StackFile;
    writeFileSync(file, `${JSON.stringify({ ...current, ...facts }, null, 2)}\n`);
  }

  /** Puts a local file into the raw bucket under raw/<view>/<name>. */
  async upload(file: string, name = basename(file)): Promise<{ key: string; seq: number; bytes: number }> {
    const key = `raw/${this.options.settings.FEATURE_VIEW}/${name}`;
    const seq = this.#seq;
    await this.clients.s3.send(
      new PutObjectCommand({
        Bucket: this.aws.buckets.raw,
        Key: key,
        Body: readFileSync(file),
        ContentType: "text/csv",
      }),
    );
    return { key, seq, bytes: statSync(file).size };
  }

  /** The first ingest outcome for `key` recorded after sequence number `afterSeq`. */
  waitForIngest(key: string, afterSeq: number, timeoutMs: number): Promise<IngestOutcome> {
    const find = () => this.#outcomes.find((o) => o.seq > afterSeq && o.outcome.key === key)?.outcome;
    const found = find();
    if (found) return Promise.resolve(found);
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        this.#outcomeWaiters.delete(wake);
        reject(new Error(`no ingest outcome for ${key} within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      const wake = () => {
        const outcome = find();
        if (!outcome) return;
        clearTimeout(timer);
        this.#outcomeWaiters.delete(wake);
        resolvePromise(outcome);
      };
      this.#outcomeWaiters.add(wake);
    });
  }

  get ledger(): DynamoDbRunLedgerStore {
    if (!this.#ledger) throw new Error("the local stack is not started");
    return this.#ledger;
  }

  /** Resolves with the file's ledger item once its run succeeded or failed (or it was quarantined). */
  async waitForFile(view: string, fileId: string, timeoutMs: number): Promise<FileItem> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      this.checkNotStopping();
      const file = await readFile(this.ledger, view, fileId);
      if (file && (file.state === "succeeded" || file.state === "failed" || file.state === "quarantined")) {
        return file;
      }
      await sleep(1000);
    }
    throw new Error(`file ${fileId} of view ${view} did not finish within ${Math.round(timeoutMs / 1000)} s`);
  }

  /** Stops everything started, newest first; safe to call more than once and at any point. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      while (this.#undo.length > 0) {
        const step = this.#undo.pop();
        if (!step) break;
        try {
          await step.run();
        } catch (error) {
          this.options.say(`stopping ${step.name} failed: ${(error as Error).message}`);
        }
      }
    })();
    return this.#stopping;
  }
}

/** The stack file of a running `npm run local`, if its process is alive. */
export function readStackFile(path: string): StackFile | undefined {
  if (!existsSync(path)) return undefined;
  const file = JSON.parse(readFileSync(path, "utf8")) as StackFile;
  try {
    process.kill(file.pid, 0);
    return file;
  } catch {
    return undefined;
  }
}
