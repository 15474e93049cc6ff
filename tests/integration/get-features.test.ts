// getFeatures against the real local Cassandra (scripts/cassandra.sh start), through the
// production handler module: rows come back exactly as written (types kept, nulls null), batch
// order, projection, multi-view, 404; and outages answer 503 fast and heal in the same container.
// It uses its own keyspace, and breaks only its own connections (through a TCP fault proxy).
// Every response body is validated against the OpenAPI document generated from the same views.
import type { APIGatewayProxyResultV2 } from "aws-lambda";
import { Client, types } from "cassandra-driver";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createKeyspaceCql, createTableCql } from "#commons/online-schema.js";
import { buildOpenApiDocument } from "#functions/get-features/openapi.js";
import { localCassandraAuthEnv, localCassandraAuthProvider } from "#scripts/cassandra/local-credentials.js";
import { type FeatureCall, httpEvent, lambdaContext, viewsEvent } from "../fixtures/api-gateway-events.js";
import { energyFeatures, energyRow, fixtureViews, weatherRow } from "../fixtures/feature-views.js";
import { insertOnlineRows } from "../fixtures/online-rows.js";
import { createResponseValidator } from "../fixtures/openapi-validator.js";
import { TcpFaultProxy } from "../fixtures/tcp-fault-proxy.js";

const KEYSPACE = "feature_store_it_serving";
const CASSANDRA_PORT = Number(process.env.CASSANDRA_PORT ?? 9042);
const DEADLINE_MS = 800;
/** The 503 must come well inside the 6 s function timeout: deadline plus scheduling slack. */
const OUTAGE_BOUND_MS = 2000;

type Handler = (event: unknown, context: unknown) => Promise<APIGatewayProxyResultV2>;
interface HandlerModule {
  handler: Handler;
  store: { close(): Promise<void> };
  connected: Promise<boolean>;
}

const views = fixtureViews();
const validateResponse = createResponseValidator(buildOpenApiDocument(views, { version: "0.0.0" }));
let admin: Client;
let proxy: TcpFaultProxy;
let serving: HandlerModule;

/** Imports a fresh copy of the production handler module (a new "container") with env pointing at `port`. */
async function coldStart(port: number, env: Record<string, string> = {}): Promise<HandlerModule> {
  Object.assign(process.env, {
    ONLINE_STORE: "cassandra",
    CASSANDRA_CONTACT_POINTS: "127.0.0.1",
    CASSANDRA_PORT: String(port),
    CASSANDRA_LOCAL_DC: "datacenter1",
    // The handler logs in as the project role, as it would (by SigV4) on Keyspaces.
    ...localCassandraAuthEnv(),
    KEYSPACE,
    FEATURE_VIEWS_DIR: "tests/fixtures/feature-views",
    READ_TIMEOUT_MS: "500",
    CONNECT_TIMEOUT_MS: "500",
    STORE_DEADLINE_MS: String(DEADLINE_MS),
    POWERTOOLS_LOG_LEVEL: "ERROR",
    POWERTOOLS_METRICS_NAMESPACE: "FeatureStoreIT",
    POWERTOOLS_METRICS_DISABLED: "true",
    ...env,
  });
  vi.resetModules();
  return (await import("#functions/get-features/handler.js")) as unknown as HandlerModule;
}

async function get(module: HandlerModule, call: FeatureCall) {
  const started = performance.now();
  const response = (await module.handler(httpEvent(call), lambdaContext())) as {
    statusCode: number;
    headers: Record<string, string>;
    body: string;
  };
  const ms = performance.now() - started;
  const json = JSON.parse(response.body);
  const path =
    call.entityId === undefined ? `/features/${call.view}` : `/features/${call.view}/${call.entityId}`;
  const contract = validateResponse(path, response.statusCode, json);
  expect(contract.errors, `${path} ${response.statusCode} against docs/openapi.json`).toBe("No errors");
  return { ...response, json, ms };
}

/** Polls until the handler answers 200 again, bounded by `timeoutMs`; returns the time it took. */
async function waitForRecovery(module: HandlerModule, timeoutMs: number): Promise<number> {
  const started = performance.now();
  let last = 0;
  for (let attempt = 0; performance.now() - started < timeoutMs && attempt < 200; attempt++) {
    last = (await get(module, { view: "energy", entityId: "MAC000002" })).statusCode;
    if (last === 200) return performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`handler did not recover within ${timeoutMs} ms (last status ${last})`);
}

beforeAll(async () => {
  admin = new Client({
    contactPoints: ["127.0.0.1"],
    localDataCenter: "datacenter1",
    protocolOptions: { port: CASSANDRA_PORT },
    authProvider: localCassandraAuthProvider(),
  });
  // Waits for the local node another suite or scripts/test.sh may still be starting (bounded).
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.connect();
      break;
    } catch (error) {
      if (attempt >= 60) throw new Error(`Cassandra not reachable on 127.0.0.1:${CASSANDRA_PORT}: ${error}`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  await admin.execute(createKeyspaceCql(KEYSPACE));
  for (const view of views.values()) {
    await admin.execute(createTableCql(view, KEYSPACE));
    await admin.execute(`TRUNCATE ${KEYSPACE}.${view.onlineTable}`);
  }
  const energy = views.get("energy");
  const weather = views.get("weather");
  if (energy === undefined || weather === undefined) throw new Error("fixture views missing");
  await insertOnlineRows(admin, KEYSPACE, energy, [
    energyRow("MAC000002", 2),
    energyRow("MAC000003", 3, "2014-02-28"),
    energyRow("MAC000004", 4, "2013-01-31"),
  ]);
  await insertOnlineRows(admin, KEYSPACE, weather, [weatherRow("MAC000002")]);
  // A row whose writer left every feature unset: nulls must come back null, not 0.
  await admin.execute(
    `INSERT INTO ${KEYSPACE}.energy_features (entity_id, feature_date) VALUES (?, ?)`,
    ["MAC000005", types.LocalDate.fromString("2012-06-30")],
    { prepare: true },
  );

  proxy = await TcpFaultProxy.start(CASSANDRA_PORT);
  serving = await coldStart(proxy.port);
  expect(await serving.connected).toBe(true);
});

afterAll(async () => {
  await serving?.store.close();
  await proxy?.stop();
  await admin?.shutdown();
});

describe("reads from the real store", () => {
  it("returns the stored vector exactly, with numbers as numbers and nulls as null", async () => {
    const response = await get(serving, { view: "energy", entityId: "MAC000003" });
    expect(response.statusCode).toBe(200);
    expect(response.json).toEqual({
      view: "energy",
      entityId: "MAC000003",
      featureDate: "2014-02-28",
      features: energyFeatures(3),
    });
    expect(response.json.features.energy_std_3m).toBeNull();
    expect(Number.isInteger(response.json.features.energy_count)).toBe(true);
  });

  it("keeps an unset feature null (never 0) and bigint as its exact decimal string", async () => {
    const empty = await get(serving, { view: "energy", entityId: "MAC000005" });
    expect(empty.statusCode).toBe(200);
    expect(empty.json.featureDate).toBe("2012-06-30");
    expect(Object.values(empty.json.features)).toHaveLength(22);
    expect(Object.values(empty.json.features).every((value) => value === null)).toBe(true);

    const weather = await get(serving, { view: "weather", entityId: "MAC000002" });
    expect(weather.json.features).toEqual(weatherRow("MAC000002").features);
  });

  it("answers a batch in request order with not-found markers, projected", async () => {
    const response = await get(serving, {
      view: "energy",
      query: { ids: "MAC000004,MAC404,MAC000002", features: "energy_sum_12m,energy_count" },
    });
    expect(response.statusCode).toBe(200);
    const pick = (seed: number) => {
      const all = energyFeatures(seed);
      return { energy_count: all.energy_count, energy_sum_12m: all.energy_sum_12m };
    };
    expect(response.json).toEqual({
      view: "energy",
      results: [
        { entityId: "MAC000004", found: true, featureDate: "2013-01-31", features: pick(4) },
        { entityId: "MAC404", found: false },
        { entityId: "MAC000002", found: true, featureDate: "2014-02-27", features: pick(2) },
      ],
    });
  });

  it("reads several views of one entity", async () => {
    const response = await get(serving, {
      view: "energy,weather",
      entityId: "MAC000002",
      query: { features: "energy_mean,weather.sunshine_s" },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json).toEqual({
      entityId: "MAC000002",
      views: {
        energy: {
          found: true,
          featureDate: "2014-02-27",
          features: { energy_mean: energyFeatures(2).energy_mean },
        },
        weather: { found: true, featureDate: "2014-02-26", features: { sunshine_s: "9007199254740993" } },
      },
    });
  });

  it("lists the views of its FEATURE_VIEWS_DIR on GET /views, as documented", async () => {
    const response = await serving.handler(viewsEvent(), lambdaContext());
    const body = JSON.parse((response as { body: string }).body);
    expect(validateResponse("/views", 200, body).errors).toBe("No errors");
    expect(body.views.map((view: { name: string }) => view.name)).toEqual(["energy", "weather"]);
    expect(body.views[1].features.map((f: { name: string }) => f.name)).toEqual([
      ...(views.get("weather")?.featureNames ?? []),
    ]);
  });

  it("answers 404 for an entity with no row", async () => {
    const response = await get(serving, { view: "energy", entityId: "MAC999999" });
    expect(response.statusCode).toBe(404);
    expect(response.json.error.code).toBe("NOT_FOUND");
  });
});

describe("connecting", () => {
  it("opens one connection at cold start (no protocol downgrade round) and reads through it, prepared", async () => {
    const counted = await TcpFaultProxy.start(CASSANDRA_PORT);
    const container = await coldStart(counted.port);
    try {
      expect(await container.connected).toBe(true);
      // The driver would first offer DSE protocol v2 and reconnect after the refusal; capped at v4
      // (Keyspaces and Cassandra 3.11's highest) the first connection is the one it keeps.
      expect(counted.accepted).toBe(1);
      const before = counted.requestOpcodes.length;
      for (const entityId of ["MAC000002", "MAC000003", "MAC000004"]) {
        expect((await get(container, { view: "energy", entityId })).statusCode).toBe(200);
      }
      expect(counted.accepted).toBe(1);
      // The reads are prepared statements: one PREPARE, then an EXECUTE per read, never a QUERY.
      const PREPARE = 0x09;
      const EXECUTE = 0x0a;
      expect(counted.requestOpcodes.slice(before)).toEqual([PREPARE, EXECUTE, EXECUTE, EXECUTE]);
    } finally {
      await container.store.close();
      await counted.stop();
    }
  });

  it("answers a clean 500 (no driver details) when the keyspace has no such table", async () => {
    // A keyspace that exists but holds none of the views' tables: a deployment bug, not an outage.
    const empty = `${KEYSPACE}_empty`;
    await admin.execute(createKeyspaceCql(empty));
    const container = await coldStart(proxy.port, { KEYSPACE: empty });
    try {
      expect(await container.connected).toBe(true);
      const response = await get(container, { view: "energy", entityId: "MAC000002" });
      expect(response.statusCode).toBe(500);
      expect(response.body).not.toMatch(/energy_features|unconfigured|keyspace/i);
    } finally {
      await container.store.close();
      process.env.KEYSPACE = KEYSPACE;
    }
  });
});

describe("outages", () => {
  it("answers 503 with Retry-After within the deadline while the node hangs, then recovers", async () => {
    proxy.blackhole();
    try {
      const response = await get(serving, { view: "energy", entityId: "MAC000002" });
      expect(response.statusCode).toBe(503);
      expect(response.headers["retry-after"]).toMatch(/^\d+$/);
      expect(response.json.error.code).toBe("STORE_UNAVAILABLE");
      expect(response.ms).toBeGreaterThanOrEqual(DEADLINE_MS * 0.5);
      expect(response.ms).toBeLessThan(OUTAGE_BOUND_MS);
    } finally {
      await proxy.heal();
    }
    await waitForRecovery(serving, 10_000);
  });

  it("answers 503 fast while the node is unreachable, then recovers without a new container", async () => {
    await proxy.refuse();
    try {
      // The first read may find the connection closing; every read must be 503 and quick.
      for (let i = 0; i < 3; i++) {
        const response = await get(serving, { view: "energy", entityId: "MAC000002" });
        expect(response.statusCode).toBe(503);
        expect(response.ms).toBeLessThan(OUTAGE_BOUND_MS);
      }
    } finally {
      await proxy.heal();
    }
    await waitForRecovery(serving, 15_000);
    const after = await get(serving, { view: "energy", entityId: "MAC000003" });
    expect(after.json.features).toEqual(energyFeatures(3));
  });

  it("survives a cold start with the store down, answers 503, and serves once it is up", async () => {
    const downstream = await TcpFaultProxy.start(CASSANDRA_PORT);
    await downstream.refuse();
    const container = await coldStart(downstream.port);
    try {
      expect(await container.connected).toBe(false);
      const response = await get(container, { view: "energy", entityId: "MAC000002" });
      expect(response.statusCode).toBe(503);
      expect(response.ms).toBeLessThan(OUTAGE_BOUND_MS);

      await downstream.heal();
      await waitForRecovery(container, 15_000);
    } finally {
      await container.store.close();
      await downstream.stop();
    }
  });
});
