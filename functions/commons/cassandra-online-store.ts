// The online store adapter for Amazon Keyspaces (in AWS) and Apache Cassandra (on this machine):
// its configuration schema, the driver client built from it, and the OnlineStore implementation
// that reads one wide row per entity with prepared, idempotent, deadline-bounded statements.
import { auth, Client, type ClientOptions, errors, policies, types } from "cassandra-driver";
import * as z from "zod/mini";
import { StoreUnavailableError } from "./errors.js";
import type { FeatureView, SourceType } from "./feature-view.js";
import { identifierSchema } from "./identifiers.js";
import type { FeatureValue, OnlineRow, OnlineStore } from "./online-store.js";
import { KeyspacesSigV4AuthProvider } from "./sigv4-auth-provider.js";

const identifier = identifierSchema;
const positiveMs = (fallback: number) =>
  z._default(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(60_000)), fallback);

/**
 * Environment settings of the online store; read once through readConfig at module scope. zod/mini,
 * as every schema getFeatures' bundle imports (zod-messages.ts; docs/PERFORMANCE.md).
 */
export const onlineStoreConfigSchema = z
  .object({
    /** `keyspaces` in AWS (TLS, SigV4, port 9142); `cassandra` for the local single node. */
    ONLINE_STORE: z._default(z.enum(["keyspaces", "cassandra"]), "cassandra"),
    AWS_REGION: z.optional(
      z.string().check(z.regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must be an AWS region such as eu-west-1")),
    ),
    CASSANDRA_CONTACT_POINTS: z.pipe(
      z.pipe(
        z._default(z.string(), "127.0.0.1"),
        z.transform((value: string) => value.split(",").map((host) => host.trim())),
      ),
      z
        .array(z.string().check(z.regex(/^[A-Za-z0-9.:-]+$/, "must be a list of host names")))
        .check(z.minLength(1)),
    ),
    CASSANDRA_PORT: z._default(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(65_535)), 9042),
    CASSANDRA_LOCAL_DC: z._default(z.string().check(z.minLength(1)), "datacenter1"),
    /**
     * Login of the local node (`cassandra` mode only; scripts/cassandra.sh creates the role and keeps
     * the password in .local/cassandra/credentials). Keyspaces uses SigV4 and takes no password.
     */
    CASSANDRA_USERNAME: z.optional(z.string().check(z.minLength(1))),
    CASSANDRA_PASSWORD: z.optional(z.string().check(z.minLength(1))),
    KEYSPACE: z._default(identifier, "feature_store"),
    // Keyspaces serves reads at LOCAL_ONE or LOCAL_QUORUM only; the local node accepts both too.
    READ_CONSISTENCY: z._default(z.enum(["LOCAL_ONE", "LOCAL_QUORUM"]), "LOCAL_ONE"),
    /** Per-attempt read timeout of the driver. */
    READ_TIMEOUT_MS: positiveMs(1000),
    CONNECT_TIMEOUT_MS: positiveMs(2000),
    /** Overall bound on one store call (connect + retries + speculative attempts): the 503 budget. */
    STORE_DEADLINE_MS: positiveMs(1500),
    /** Delay before a second, speculative attempt on another host (Keyspaces has many endpoints). */
    SPECULATIVE_DELAY_MS: positiveMs(50),
  })
  .check(
    z.superRefine((config, ctx) => {
      if (config.ONLINE_STORE === "keyspaces" && config.AWS_REGION === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["AWS_REGION"],
          message: "is required when ONLINE_STORE is keyspaces",
        });
      }
      if (config.ONLINE_STORE === "keyspaces") {
        // A static password for Keyspaces would be a secret in the function's environment: SigV4 only.
        for (const name of ["CASSANDRA_USERNAME", "CASSANDRA_PASSWORD"] as const) {
          if (config[name] !== undefined) {
            ctx.addIssue({
              code: "custom",
              path: [name],
              message: "must not be set when ONLINE_STORE is keyspaces (it authenticates with SigV4)",
            });
          }
        }
      } else if ((config.CASSANDRA_USERNAME === undefined) !== (config.CASSANDRA_PASSWORD === undefined)) {
        ctx.addIssue({
          code: "custom",
          path: [config.CASSANDRA_USERNAME === undefined ? "CASSANDRA_USERNAME" : "CASSANDRA_PASSWORD"],
          message: "must be set together with the other of CASSANDRA_USERNAME / CASSANDRA_PASSWORD",
        });
      }
    }),
  );

export type OnlineStoreConfig = z.infer<typeof onlineStoreConfigSchema>;

/** Driver options for the configured store; exported so tests can check the security settings. */
export function cassandraClientOptions(config: OnlineStoreConfig): ClientOptions {
  const common: ClientOptions = {
    socketOptions: {
      connectTimeout: config.CONNECT_TIMEOUT_MS,
      readTimeout: config.READ_TIMEOUT_MS,
      keepAlive: true,
      tcpNoDelay: true,
    },
    queryOptions: {
      consistency: types.consistencies[config.READ_CONSISTENCY === "LOCAL_ONE" ? "localOne" : "localQuorum"],
      // Reads are idempotent: retries and speculative executions are safe.
      isIdempotent: true,
      prepare: true,
    },
    policies: {
      retry: new policies.retry.RetryPolicy(),
      speculativeExecution: new policies.speculativeExecution.ConstantSpeculativeExecutionPolicy(
        config.SPECULATIVE_DELAY_MS,
        1,
      ),
      // A down store must come back within seconds in a long-lived (provisioned) container.
      reconnection: new policies.reconnection.ExponentialReconnectionPolicy(250, 5000, true),
    },
    // Serving never reads table metadata; skipping the schema sync shortens the cold start and
    // keeps the reads of system tables to what connecting needs. What it costs: keyspace metadata is
    // not loaded, so token-aware routing finds no replicas (https://docs.datastax.com/en/developer/
    // nodejs-driver/4.0/api/type.ClientOptions/); Keyspaces' peers are load-balanced request handlers,
    // not replicas (https://docs.aws.amazon.com/keyspaces/latest/devguide/connections.html), and
    // locally there is one node. Measured by `npm run bench:cold` (docs/PERFORMANCE.md).
    isMetadataSyncEnabled: false,
    pooling: { warmup: true },
  };
  // Driver 4.x first offers DSE protocol v2, and on the refusal closes the socket and connects again
  // with v4: a second TCP (on Keyspaces TCP + TLS) handshake on every cold start. Keyspaces is
  // compatible with Apache Cassandra 3.11.2 drivers, whose highest protocol is v4
  // (https://docs.aws.amazon.com/keyspaces/latest/devguide/programmatic.drivers.html), and this
  // driver speaks nothing above v4 to Cassandra 5 either: start there.
  const protocolVersion = { maxVersion: types.protocolVersion.v4 };

  if (config.ONLINE_STORE === "cassandra") {
    return {
      ...common,
      contactPoints: config.CASSANDRA_CONTACT_POINTS,
      localDataCenter: config.CASSANDRA_LOCAL_DC,
      protocolOptions: { ...protocolVersion, port: config.CASSANDRA_PORT },
      ...(config.CASSANDRA_USERNAME !== undefined && config.CASSANDRA_PASSWORD !== undefined
        ? {
            authProvider: new auth.PlainTextAuthProvider(
              config.CASSANDRA_USERNAME,
              config.CASSANDRA_PASSWORD,
            ),
          }
        : {}),
    };
  }
  const region = config.AWS_REGION as string;
  const host = `cassandra.${region}.amazonaws.com`;
  return {
    ...common,
    contactPoints: [host],
    localDataCenter: region,
    protocolOptions: { ...protocolVersion, port: 9142 },
    // Node's default trust store holds the Amazon/Starfield roots Keyspaces chains to; the
    // certificate is verified against the endpoint name (the driver connects to peer IPs, and
    // defaults rejectUnauthorized to false: both are overridden here).
    sslOptions: { servername: host, rejectUnauthorized: true },
    // SigV4 with the function role's credentials, read from the Lambda environment at each login;
    // no passwords (sigv4-auth-provider.ts).
    authProvider: new KeyspacesSigV4AuthProvider(region),
  };
}

export function createCassandraClient(config: OnlineStoreConfig): Client {
  return new Client(cassandraClientOptions(config));
}

// Driver failures that mean "the store cannot answer now" (as opposed to bugs such as a missing
// table or a syntax error, which must surface as 500s).
const TRANSIENT_RESPONSE_CODES: ReadonlySet<number> = new Set([
  types.responseErrorCodes.unavailableException,
  types.responseErrorCodes.overloaded,
  types.responseErrorCodes.isBootstrapping,
  types.responseErrorCodes.readTimeout,
  types.responseErrorCodes.readFailure,
]);

export function isStoreUnavailable(error: unknown): boolean {
  if (
    error instanceof errors.NoHostAvailableError ||
    error instanceof errors.OperationTimedOutError ||
    error instanceof errors.BusyConnectionError
  ) {
    return true;
  }
  return error instanceof errors.ResponseError && TRANSIENT_RESPONSE_CODES.has(error.code);
}

/** How many distinct projections get their own prepared statement; beyond it, read all columns. */
const MAX_PREPARED_PROJECTIONS = 128;
/** How many distinct requested feature lists (names in the caller's order) are remembered. */
const MAX_REMEMBERED_REQUESTS = 1024;
/** The same options object for every read: the driver only reads it. */
const READ_OPTIONS = { prepare: true, isIdempotent: true } as const;

export interface CassandraOnlineStoreOptions {
  readonly client: Client;
  readonly keyspace: string;
  /** Bound on one getLatest call, connection attempts included. */
  readonly deadlineMs: number;
  readonly retryAfterSeconds?: number;
}

interface OutputColumn {
  readonly name: string;
  readonly type: SourceType;
}

/** A read as one request needs it: the prepared statement and the columns its answer carries. */
interface PreparedRead {
  readonly cql: string;
  /** The requested features in the view's order (a subset of the statement's when it reads all). */
  readonly output: readonly OutputColumn[];
  /** Every output column, in order, set to null: each answer's features start as a copy of it. */
  readonly template: Readonly<Record<string, FeatureValue>>;
}

export class CassandraOnlineStore implements OnlineStore {
  readonly #client: Client;
  readonly #keyspace: string;
  readonly #deadlineMs: number;
  readonly #retryAfterSeconds: number;
  /** Statement text by its columns (view order): at most MAX_PREPARED_PROJECTIONS per store. */
  readonly #statements = new Map<string, string>();
  /**
   * Reads by the request's view and feature names as given, so a repeated request (nearly every
   * one) finds its read with one lookup instead of re-deriving columns and statement. Filled only
   * after the names were checked against the view.
   */
  readonly #reads = new Map<string, PreparedRead>();

  constructor(options: CassandraOnlineStoreOptions) {
    identifier.parse(options.keyspace);
    this.#client = options.client;
    this.#keyspace = options.keyspace;
    this.#deadlineMs = options.deadlineMs;
    this.#retryAfterSeconds = options.retryAfterSeconds ?? 1;
  }

  /**
   * Starts connecting (called during init so a provisioned container is warm). Never rejects:
   * a store that is down at cold start is retried by the next read.
   */
  async connect(): Promise<boolean> {
    try {
      await this.#client.connect();
      return true;
    } catch {
      return false;
    }
  }

  async getLatest(
    view: FeatureView,
    entityIds: readonly string[],
    features?: readonly string[],
  ): Promise<ReadonlyArray<OnlineRow | undefined>> {
    const read = this.#preparedRead(view, features);
    if (entityIds.length === 1) {
      // The common case (one entity per view): no de-duplication, one promise less.
      const id = entityIds[0] as string;
      const result = await this.#withinDeadline(
        this.#client.execute(read.cql, [id], READ_OPTIONS),
        view.name,
      );
      const row = result.first();
      return [row === null || row === undefined ? undefined : toOnlineRow(id, row, read)];
    }
    const uniqueIds = [...new Set(entityIds)];
    // One single-partition read per id, concurrently: token-aware and cheap on Keyspaces,
    // unlike a multi-partition IN.
    const pending = Promise.all(uniqueIds.map((id) => this.#client.execute(read.cql, [id], READ_OPTIONS)));
    const results = await this.#withinDeadline(pending, view.name);
    const rowsById = new Map<string, OnlineRow>();
    results.forEach((result, index) => {
      const row = result.first();
      const id = uniqueIds[index] as string;
      if (row !== null && row !== undefined) rowsById.set(id, toOnlineRow(id, row, read));
    });
    return entityIds.map((id) => rowsById.get(id));
  }

  async close(): Promise<void> {
    await this.#client.shutdown();
  }

  #preparedRead(view: FeatureView, features: readonly string[] | undefined): PreparedRead {
    // JSON keeps the names apart whatever they contain: a key is never shared by two requests.
    const requestKey = features === undefined ? view.name : `${view.name}${JSON.stringify(features)}`;
    const known = this.#reads.get(requestKey);
    if (known !== undefined) return known;

    for (const name of features ?? []) {
      // Column names are spliced into CQL: only the view's own validated names may get here.
      if (!view.featureNames.has(name)) throw new Error(`Feature ${name} is not in view ${view.name}`);
    }
    const requested = features === undefined ? undefined : new Set(features);
    // View order makes the statement independent of the order the caller listed features in.
    const output = view.features
      .filter((f) => requested === undefined || requested.has(f.name))
      .map((f) => ({ name: f.name, type: f.type }));
    let selected = output;
    let statementKey = `${view.name}:${selected.map((c) => c.name).join(",")}`;
    if (!this.#statements.has(statementKey) && this.#statements.size >= MAX_PREPARED_PROJECTIONS) {
      selected = view.features.map((f) => ({ name: f.name, type: f.type }));
      statementKey = `${view.name}:*`;
    }
    let cql = this.#statements.get(statementKey);
    if (cql === undefined) {
      // Not the key: the caller's id is the row's (one less column to send and decode per read).
      const list = ["feature_date", ...selected.map((c) => c.name)].join(", ");
      cql = `SELECT ${list} FROM ${this.#keyspace}.${view.onlineTable} WHERE entity_id = ?`;
      this.#statements.set(statementKey, cql);
    }
    const template = Object.fromEntries(output.map((c) => [c.name, null]));
    const read: PreparedRead = { cql, output, template };
    if (this.#reads.size < MAX_REMEMBERED_REQUESTS) this.#reads.set(requestKey, read);
    return read;
  }

  /** `work`, or StoreUnavailableError once the deadline passes or when the driver cannot answer. */
  #withinDeadline<T>(work: Promise<T>, viewName: string): Promise<T> {
    // One promise and one timer per read: this runs on every request (docs/PERFORMANCE.md).
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new StoreUnavailableError(
              `Online store did not answer within ${this.#deadlineMs} ms (view ${viewName})`,
              this.#retryAfterSeconds,
            ),
          ),
        this.#deadlineMs,
      );
      // After the deadline, the late outcome settles nothing (a promise settles once) and is
      // never an unhandled rejection: both outcomes are handled here.
      work.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(
            isStoreUnavailable(error)
              ? new StoreUnavailableError(
                  `Online store unavailable (view ${viewName})`,
                  this.#retryAfterSeconds,
                  {
                    cause: error,
                  },
                )
              : error,
          );
        },
      );
    });
  }
}

function toOnlineRow(entityId: string, row: types.Row, read: PreparedRead): OnlineRow {
  // The driver's Row holds each column as an own property of its name (Row.get reads the same).
  const values = row as unknown as Readonly<Record<string, unknown>>;
  // A copy of the template has every column in place, in order: filling it and serialising it cost
  // less than adding 22 properties one by one (~2 µs per vector, docs/PERFORMANCE.md "third round").
  const features: Record<string, FeatureValue> = Object.assign({}, read.template);
  for (const column of read.output) features[column.name] = toFeatureValue(values[column.name], column.type);
  const date = values.feature_date;
  return { entityId, featureDate: date == null ? null : String(date), features };
}

/** Driver value → JSON value; see FeatureValue for the mapping. */
export function toFeatureValue(value: unknown, type: SourceType): FeatureValue {
  if (value === null || value === undefined) return null;
  switch (type) {
    case "double":
    case "int":
      return value as number;
    case "bigint":
      return (value as types.Long).toString();
    case "string":
      return value as string;
  }
}
