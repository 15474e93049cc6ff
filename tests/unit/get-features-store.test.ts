// The Cassandra/Keyspaces adapter and the getFeatures configuration, without a database: the
// statements it sends (prepared, idempotent, projection from validated names only), its deadline,
// how driver failures and values are mapped, and config errors that name the variable.
import { auth, type Client, errors, types } from "cassandra-driver";
import { describe, expect, it } from "vitest";
import {
  CassandraOnlineStore,
  cassandraClientOptions,
  onlineStoreConfigSchema,
  toFeatureValue,
} from "#commons/cassandra-online-store.js";
import { ConfigError, readConfig } from "#commons/config.js";
import { StoreUnavailableError } from "#commons/errors.js";
import { KeyspacesSigV4AuthProvider } from "#commons/sigv4-auth-provider.js";
import { getFeaturesConfigSchema } from "#functions/get-features/get-features-config.js";
import { fixtureView } from "../fixtures/feature-views.js";

interface Executed {
  query: string;
  params: unknown[];
  options: Record<string, unknown>;
}

/** A driver client double: answers from `rows` by id, or with `answer` when set. */
function fakeClient(rows: Record<string, Record<string, unknown>>, answer?: () => Promise<unknown>) {
  const executed: Executed[] = [];
  const client = {
    execute: (query: string, params: unknown[], options: Record<string, unknown>) => {
      executed.push({ query, params, options });
      if (answer !== undefined) return answer();
      const row = rows[params[0] as string];
      return Promise.resolve({
        // As the driver's Row: each column an own property of its name, and get(name).
        first: () => (row === undefined ? null : { ...row, get: (name: string) => row[name] }),
      });
    },
    connect: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
  return { client: client as unknown as Client, executed };
}

const energy = fixtureView("energy");
const weather = fixtureView("weather");

describe("CassandraOnlineStore", () => {
  it("sends a prepared, idempotent single-partition SELECT of the view's columns in the configured keyspace", async () => {
    const { client, executed } = fakeClient({});
    const store = new CassandraOnlineStore({ client, keyspace: "ks_test", deadlineMs: 500 });
    await store.getLatest(energy, ["MAC1"]);
    expect(executed).toHaveLength(1);
    const [call] = executed;
    expect(call?.query).toBe(
      `SELECT feature_date, ${energy.features.map((f) => f.name).join(", ")} FROM ks_test.energy_features WHERE entity_id = ?`,
    );
    expect(call?.params).toEqual(["MAC1"]);
    expect(call?.options).toMatchObject({ prepare: true, isIdempotent: true });
  });

  it("builds one statement per projection whatever the order the caller listed features in", async () => {
    const { client, executed } = fakeClient({});
    const store = new CassandraOnlineStore({ client, keyspace: "ks", deadlineMs: 500 });
    await store.getLatest(energy, ["A"], ["energy_max_6m", "energy_mean"]);
    await store.getLatest(energy, ["A"], ["energy_mean", "energy_max_6m"]);
    expect(executed[0]?.query).toBe(
      "SELECT feature_date, energy_mean, energy_max_6m FROM ks.energy_features WHERE entity_id = ?",
    );
    expect(executed[1]?.query).toBe(executed[0]?.query);
  });

  it("refuses a feature name the view does not declare before sending anything", async () => {
    const { client, executed } = fakeClient({});
    const store = new CassandraOnlineStore({ client, keyspace: "ks", deadlineMs: 500 });
    await expect(store.getLatest(energy, ["A"], ["energy_mean, password"])).rejects.toThrow(/not in view/);
    expect(executed).toEqual([]);
  });

  it("remembers a request's read, yet checks the names of every request it has not seen", async () => {
    const { client, executed } = fakeClient({});
    const store = new CassandraOnlineStore({ client, keyspace: "ks", deadlineMs: 500 });
    await store.getLatest(energy, ["A"], ["energy_mean", "energy_max_6m"]);
    await store.getLatest(energy, ["B"], ["energy_mean", "energy_max_6m"]);
    expect(executed.map((call) => call.query)).toEqual([executed[0]?.query, executed[0]?.query]);
    // Names that would join into the remembered request's key are still refused.
    for (const names of [
      ["energy_mean\nenergy_max_6m"],
      ["energy_mean,energy_max_6m"],
      ['energy_mean","energy_max_6m'],
    ]) {
      await expect(store.getLatest(energy, ["C"], names)).rejects.toThrow(/not in view/);
    }
    expect(executed).toHaveLength(2);
  });

  it("reads each distinct id once and answers aligned with the request, undefined for missing rows", async () => {
    const { client, executed } = fakeClient({
      B: { feature_date: new types.LocalDate(2014, 2, 28), energy_count: 48 },
      A: { feature_date: new types.LocalDate(2013, 12, 1), energy_count: 7 },
    });
    const store = new CassandraOnlineStore({ client, keyspace: "ks", deadlineMs: 500 });
    const rows = await store.getLatest(energy, ["B", "missing", "A", "B"], ["energy_count"]);
    expect(executed.map((e) => e.params[0])).toEqual(["B", "missing", "A"]);
    expect(rows).toEqual([
      { entityId: "B", featureDate: "2014-02-28", features: { energy_count: 48 } },
      undefined,
      { entityId: "A", featureDate: "2013-12-01", features: { energy_count: 7 } },
      { entityId: "B", featureDate: "2014-02-28", features: { energy_count: 48 } },
    ]);
  });

  it("maps driver values to JSON types: Long to its exact decimal string, null stays null", async () => {
    const { client } = fakeClient({
      W: {
        feature_date: new types.LocalDate(2014, 1, 2),
        temperature: 1.25,
        rain_mm: 3,
        sunshine_s: types.Long.fromString("9007199254740993"),
        summary: "dry",
        sunshine_s_7d: null,
      },
    });
    const store = new CassandraOnlineStore({ client, keyspace: "ks", deadlineMs: 500 });
    const [row] = await store.getLatest(weather, ["W"]);
    expect(row?.features).toEqual({
      temperature: 1.25,
      rain_mm: 3,
      sunshine_s: "9007199254740993",
      summary: "dry",
      sunshine_s_7d: null,
    });
    expect(toFeatureValue(undefined, "double")).toBeNull();
    expect(toFeatureValue(0, "double")).toBe(0);
  });

  it("answers each vector's features in the view's order, whatever the request's, and only those asked", async () => {
    const { client } = fakeClient({
      W: { feature_date: new types.LocalDate(2014, 1, 2), temperature: 1.25, rain_mm: 3, summary: "dry" },
    });
    const store = new CassandraOnlineStore({ client, keyspace: "ks", deadlineMs: 500 });
    for (let i = 0; i < 2; i++) {
      // The second time the remembered read (and its template) answers.
      const [row] = await store.getLatest(weather, ["W"], ["summary", "temperature", "sunshine_s_7d"]);
      expect(JSON.stringify(row?.features)).toBe('{"temperature":1.25,"summary":"dry","sunshine_s_7d":null}');
    }
    const [all] = await store.getLatest(weather, ["W"]);
    expect(Object.keys(all?.features ?? {})).toEqual(weather.features.map((f) => f.name));
  });

  it("gives up with StoreUnavailableError at the deadline when the store does not answer", async () => {
    const { client } = fakeClient({}, () => new Promise(() => undefined));
    const store = new CassandraOnlineStore({ client, keyspace: "ks", deadlineMs: 100, retryAfterSeconds: 2 });
    const started = performance.now();
    const failure = await store.getLatest(energy, ["A"]).catch((error: unknown) => error);
    const elapsed = performance.now() - started;
    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect((failure as StoreUnavailableError).retryAfterSeconds).toBe(2);
    expect(elapsed).toBeGreaterThanOrEqual(95);
    expect(elapsed).toBeLessThan(400);
  });

  it.each([
    ["no host available", new errors.NoHostAvailableError({}, "All host(s) tried for query failed")],
    ["a client-side timeout", new errors.OperationTimedOutError("timed out")],
    ["a server read timeout", new errors.ResponseError(types.responseErrorCodes.readTimeout, "timeout")],
    ["an overloaded node", new errors.ResponseError(types.responseErrorCodes.overloaded, "overloaded")],
  ])("turns %s into StoreUnavailableError", async (_, driverError) => {
    const { client } = fakeClient({}, () => Promise.reject(driverError));
    const store = new CassandraOnlineStore({ client, keyspace: "ks", deadlineMs: 500 });
    const failure = await store.getLatest(energy, ["A"]).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect((failure as Error).cause).toBe(driverError);
  });

  it("lets bugs and misconfiguration (missing table, access denied) through as they are, for a 500", async () => {
    const driverError = new errors.ResponseError(types.responseErrorCodes.invalid, "unconfigured table");
    const { client } = fakeClient({}, () => Promise.reject(driverError));
    const store = new CassandraOnlineStore({ client, keyspace: "ks", deadlineMs: 500 });
    await expect(store.getLatest(energy, ["A"])).rejects.toBe(driverError);
  });

  it("rejects a keyspace that is not a CQL identifier", () => {
    const { client } = fakeClient({});
    expect(() => new CassandraOnlineStore({ client, keyspace: "ks; DROP", deadlineMs: 500 })).toThrow();
  });
});

describe("getFeatures configuration", () => {
  const read = (env: Record<string, string>) => readConfig(getFeaturesConfigSchema, env);

  it("defaults to the local Cassandra with LOCAL_ONE reads and a deadline well under the function timeout", () => {
    const config = read({});
    expect(config).toMatchObject({
      ONLINE_STORE: "cassandra",
      CASSANDRA_CONTACT_POINTS: ["127.0.0.1"],
      CASSANDRA_PORT: 9042,
      CASSANDRA_LOCAL_DC: "datacenter1",
      KEYSPACE: "feature_store",
      READ_CONSISTENCY: "LOCAL_ONE",
      READ_TIMEOUT_MS: 1000,
      FEATURE_VIEWS_DIR: "resources/feature-views",
    });
    expect(config.STORE_DEADLINE_MS).toBeLessThan(6000 / 2);
  });

  it.each([
    [{ READ_CONSISTENCY: "ALL" }, "READ_CONSISTENCY"],
    [{ CASSANDRA_PORT: "nine" }, "CASSANDRA_PORT"],
    [{ CASSANDRA_PORT: "70000" }, "CASSANDRA_PORT"],
    [{ KEYSPACE: "Feature-Store" }, "KEYSPACE"],
    [{ ONLINE_STORE: "dynamodb" }, "ONLINE_STORE"],
    [{ ONLINE_STORE: "keyspaces" }, "AWS_REGION"],
    [{ ONLINE_STORE: "keyspaces", AWS_REGION: "Ireland" }, "AWS_REGION"],
    [{ READ_TIMEOUT_MS: "0" }, "READ_TIMEOUT_MS"],
    [{ CASSANDRA_CONTACT_POINTS: "10.0.0.1,host name" }, "CASSANDRA_CONTACT_POINTS"],
    [{ CASSANDRA_USERNAME: "feature_store_app" }, "CASSANDRA_PASSWORD"],
    [{ CASSANDRA_PASSWORD: "secret" }, "CASSANDRA_USERNAME"],
    [
      { ONLINE_STORE: "keyspaces", AWS_REGION: "eu-west-1", CASSANDRA_PASSWORD: "secret" },
      "CASSANDRA_PASSWORD",
    ],
    [{ ONLINE_STORE: "keyspaces", AWS_REGION: "eu-west-1", CASSANDRA_USERNAME: "app" }, "CASSANDRA_USERNAME"],
  ])("fails on %o naming %s", (env, variable) => {
    expect(() => read(env)).toThrow(ConfigError);
    expect(() => read(env)).toThrow(new RegExp(`\\b${variable}\\b`));
  });

  it("connects to Keyspaces over verified TLS on 9142 with SigV4 and the region as local DC", () => {
    const options = cassandraClientOptions(
      readConfig(onlineStoreConfigSchema, { ONLINE_STORE: "keyspaces", AWS_REGION: "eu-west-1" }),
    );
    expect(options.contactPoints).toEqual(["cassandra.eu-west-1.amazonaws.com"]);
    expect(options.protocolOptions?.port).toBe(9142);
    // One protocol handshake per connection: no DSE v2 offer refused first.
    expect(options.protocolOptions?.maxVersion).toBe(types.protocolVersion.v4);
    expect(options.localDataCenter).toBe("eu-west-1");
    expect(options.sslOptions).toMatchObject({
      servername: "cassandra.eu-west-1.amazonaws.com",
      rejectUnauthorized: true,
    });
    expect(options.sslOptions).not.toHaveProperty("ca");
    expect(options.authProvider).toBeInstanceOf(KeyspacesSigV4AuthProvider);
    expect((options.authProvider as KeyspacesSigV4AuthProvider).region).toBe("eu-west-1");
    expect(options.credentials).toBeUndefined();
  });

  it("connects to the local node in plain text with the configured consistency and timeouts", () => {
    const options = cassandraClientOptions(
      readConfig(onlineStoreConfigSchema, {
        CASSANDRA_CONTACT_POINTS: "127.0.0.1, 127.0.0.2",
        CASSANDRA_PORT: "19042",
        READ_CONSISTENCY: "LOCAL_QUORUM",
        READ_TIMEOUT_MS: "800",
      }),
    );
    expect(options.contactPoints).toEqual(["127.0.0.1", "127.0.0.2"]);
    expect(options.protocolOptions?.port).toBe(19042);
    expect(options.protocolOptions?.maxVersion).toBe(types.protocolVersion.v4);
    expect(options.sslOptions).toBeUndefined();
    expect(options.authProvider).toBeUndefined();
    expect(options.queryOptions).toMatchObject({
      consistency: types.consistencies.localQuorum,
      isIdempotent: true,
      prepare: true,
    });
    expect(options.socketOptions?.readTimeout).toBe(800);
    expect(options.policies?.speculativeExecution).toBeDefined();
    expect(options.policies?.retry).toBeDefined();
  });

  it("logs in to the local node with the configured role through the driver's plain-text provider", () => {
    const options = cassandraClientOptions(
      readConfig(onlineStoreConfigSchema, {
        CASSANDRA_USERNAME: "feature_store_app",
        CASSANDRA_PASSWORD: "pw",
      }),
    );
    expect(options.authProvider).toBeInstanceOf(auth.PlainTextAuthProvider);
    const authenticator = options.authProvider?.newAuthenticator("127.0.0.1:9042", "PasswordAuthenticator");
    // SASL PLAIN: authorization id, user name and password, NUL-separated.
    let initial: Buffer | undefined;
    authenticator?.initialResponse((_error: Error | null, response: Buffer) => {
      initial = response;
    });
    expect(initial?.toString("utf8")).toBe("\0feature_store_app\0pw");
  });
});
