// Both clients (clients/typescript, clients/python) against the local HTTP API with IAM auth on:
// the production getFeatures handler on the real local Cassandra (through a TCP fault proxy), SigV4
// verified by local/iam-auth.ts. Single, batch of 250 (split into requests of at most 100,
// order kept), projection, multi-view, 404, 400, a 503 retried after Retry-After and then answered
// once Cassandra is back, and a wrong secret answered 403.
import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { Client } from "cassandra-driver";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type EnergyFeatures, FeatureStoreClient, FeatureStoreError } from "#clients/typescript/src/index.js";
import { createKeyspaceCql, createTableCql } from "#commons/online-schema.js";
import { type HttpHandler, LocalHttpApi } from "#local/http-adapter.js";
import { IamVerifier, LOCAL_IAM_CREDENTIALS } from "#local/iam-auth.js";
import { localCassandraAuthEnv, localCassandraAuthProvider } from "#scripts/cassandra/local-credentials.js";
import { energyFeatures, energyRow, fixtureViews, weatherRow } from "../fixtures/feature-views.js";
import { insertOnlineRows } from "../fixtures/online-rows.js";
import { TcpFaultProxy } from "../fixtures/tcp-fault-proxy.js";

const KEYSPACE = "feature_store_it_clients";
const CASSANDRA_PORT = Number(process.env.CASSANDRA_PORT ?? 9042);
const ROOT = join(__dirname, "../..");
const SEEDED = Array.from({ length: 250 }, (_, i) => `MAC${String(i + 1).padStart(6, "0")}`);

/** The fixture views' types (tests/fixtures/feature-views), as `npm run openapi` would generate them. */
interface FixtureViews {
  readonly energy: EnergyFeatures;
  readonly weather: {
    readonly temperature: number | null;
    readonly rain_mm: number | null;
    readonly sunshine_s: string | null;
    readonly summary: string | null;
    readonly sunshine_s_7d: string | null;
  };
}

interface HandlerModule {
  handler: HttpHandler;
  store: { close(): Promise<void> };
  connected: Promise<boolean>;
}

const views = fixtureViews();
let admin: Client;
let proxy: TcpFaultProxy;
let serving: HandlerModule;
let api: LocalHttpApi;
let faults: Server;
let baseUrl: string;
let faultUrl: string;
/** The routes and query strings the API passed on to the handler, in arrival order. */
const served: APIGatewayProxyEventV2[] = [];

function client(options: { secretAccessKey?: string; maxRetries?: number } = {}) {
  return new FeatureStoreClient<FixtureViews>({
    endpoint: baseUrl,
    region: "eu-west-1",
    credentials: {
      accessKeyId: LOCAL_IAM_CREDENTIALS.accessKeyId,
      secretAccessKey: options.secretAccessKey ?? LOCAL_IAM_CREDENTIALS.secretAccessKey,
    },
    maxRetries: options.maxRetries ?? 20,
    maxRetryAfterMs: 5000,
  });
}

/** Makes the store unreachable now, and reachable again after `healAfterMs`. */
async function outage(healAfterMs: number): Promise<void> {
  await proxy.refuse();
  setTimeout(() => void proxy.heal(), healAfterMs);
}

beforeAll(async () => {
  admin = new Client({
    contactPoints: ["127.0.0.1"],
    localDataCenter: "datacenter1",
    protocolOptions: { port: CASSANDRA_PORT },
    authProvider: localCassandraAuthProvider(),
  });
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
  await insertOnlineRows(
    admin,
    KEYSPACE,
    energy,
    SEEDED.map((id, i) => energyRow(id, i + 1)),
  );
  await insertOnlineRows(admin, KEYSPACE, weather, [weatherRow("MAC000002")]);

  proxy = await TcpFaultProxy.start(CASSANDRA_PORT);
  Object.assign(process.env, {
    ONLINE_STORE: "cassandra",
    CASSANDRA_CONTACT_POINTS: "127.0.0.1",
    CASSANDRA_PORT: String(proxy.port),
    CASSANDRA_LOCAL_DC: "datacenter1",
    // The handler logs in as the project role, as it would (by SigV4) on Keyspaces.
    ...localCassandraAuthEnv(),
    KEYSPACE,
    FEATURE_VIEWS_DIR: "tests/fixtures/feature-views",
    READ_TIMEOUT_MS: "500",
    CONNECT_TIMEOUT_MS: "500",
    STORE_DEADLINE_MS: "800",
    POWERTOOLS_LOG_LEVEL: "ERROR",
    POWERTOOLS_METRICS_NAMESPACE: "FeatureStoreIT",
    POWERTOOLS_METRICS_DISABLED: "true",
  });
  vi.resetModules();
  serving = (await import("#functions/get-features/handler.js")) as unknown as HandlerModule;
  expect(await serving.connected).toBe(true);

  api = new LocalHttpApi(
    (event, context) => {
      served.push(event);
      return serving.handler(event, context);
    },
    { auth: new IamVerifier(), log: () => undefined },
  );
  baseUrl = await api.listen(0);

  // Lets the Python suite cause an outage: POST /outage?healAfterMs=N.
  faults = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    if (request.method !== "POST" || url.pathname !== "/outage") {
      response.writeHead(404).end();
      return;
    }
    outage(Number(url.searchParams.get("healAfterMs") ?? 2000)).then(
      () => response.writeHead(204).end(),
      () => response.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve) => faults.listen(0, "127.0.0.1", resolve));
  faultUrl = `http://127.0.0.1:${(faults.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => (faults ? faults.close(() => resolve()) : resolve()));
  await api?.close();
  await serving?.store.close();
  await proxy?.stop();
  await admin?.shutdown();
});

describe("TypeScript client, signed with the SDK v3 signer", () => {
  it("reads one vector, typed and exact", async () => {
    const c = client();
    try {
      const vector = await c.getFeatures("energy", "MAC000003");
      expect(vector).toEqual({
        view: "energy",
        entityId: "MAC000003",
        featureDate: "2014-02-27",
        features: energyFeatures(3),
      });
      const sum: number | null = vector.features.energy_sum_3m;
      expect(sum).toBe(energyFeatures(3).energy_sum_3m);
    } finally {
      c.close();
    }
  });

  it("projects the requested features only", async () => {
    const c = client();
    try {
      const vector = await c.getFeatures("energy", "MAC000004", {
        features: ["energy_sum_3m", "energy_count"],
      });
      expect(vector.features).toEqual({
        energy_count: energyFeatures(4).energy_count,
        energy_sum_3m: energyFeatures(4).energy_sum_3m,
      });
    } finally {
      c.close();
    }
  });

  it("splits a batch of 250 ids into requests of at most 100 and keeps the request order", async () => {
    const c = client();
    const ids = [...SEEDED].reverse().concat(["MAC999999", "MAC000002"]);
    const before = served.length;
    try {
      const results = await c.getBatch("energy", ids, { features: ["energy_sum"] });
      expect(results.map((r) => r.entityId)).toEqual(ids);
      expect(results.map((r) => r.found)).toEqual([...Array(250).fill(true), false, true]);
      const first = results[0];
      expect(first?.found && first.features).toEqual({ energy_sum: energyFeatures(250).energy_sum });
      const batches = served.slice(before).map((e) => e.queryStringParameters?.ids?.split(",").length);
      expect(batches).toHaveLength(3);
      expect(batches.reduce((a = 0, b = 0) => a + b, 0)).toBe(252);
      expect(Math.max(...batches.map(Number))).toBe(100);
    } finally {
      c.close();
    }
  });

  it("reads several views of one entity", async () => {
    const c = client();
    try {
      const answer = await c.getViews(["energy", "weather"], "MAC000002", {
        features: ["energy_mean", "weather.sunshine_s"],
      });
      expect(answer).toEqual({
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
      expect((await c.getViews(["energy", "weather"], "MAC000003")).views.weather).toEqual({ found: false });
      expect((await c.listViews()).views.map((v) => v.name)).toEqual(["energy", "weather"]);
    } finally {
      c.close();
    }
  });

  it("throws typed errors for 404 and 400", async () => {
    const c = client();
    try {
      await expect(c.getFeatures("energy", "MAC999999")).rejects.toMatchObject({
        status: 404,
        code: "NOT_FOUND",
      });
      await expect(c.getFeatures("energy", "not an id!")).rejects.toMatchObject({
        status: 400,
        code: "BAD_REQUEST",
      });
    } finally {
      c.close();
    }
  });

  it("retries a 503 after its Retry-After and is answered once Cassandra is back", async () => {
    const c = client();
    const before = served.length;
    try {
      await outage(2500);
      const started = performance.now();
      const vector = await c.getFeatures("energy", "MAC000002");
      expect(vector.features).toEqual(energyFeatures(2));
      expect(performance.now() - started).toBeGreaterThanOrEqual(1000);
      expect(served.length - before).toBeGreaterThan(1);
    } finally {
      c.close();
    }
    // Bounded: without retries the 503 reaches the caller with its Retry-After.
    const once = client({ maxRetries: 0 });
    try {
      await outage(1500);
      const error = await once.getFeatures("energy", "MAC000002").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FeatureStoreError);
      expect(error).toMatchObject({ status: 503, code: "STORE_UNAVAILABLE", retryAfterSeconds: 1 });
    } finally {
      once.close();
    }
    const after = client({ maxRetries: 30 });
    try {
      expect((await after.getFeatures("energy", "MAC000002")).entityId).toBe("MAC000002");
    } finally {
      after.close();
    }
  });

  it("is refused with API Gateway's 403 when signed with a wrong secret", async () => {
    const c = client({ secretAccessKey: "not-the-secret" });
    try {
      await expect(c.getFeatures("energy", "MAC000002")).rejects.toMatchObject({
        status: 403,
        code: "FORBIDDEN",
        message: expect.stringContaining("signature we calculated does not match"),
      });
    } finally {
      c.close();
    }
  });
});

describe("Python client, signed with botocore's SigV4Auth and credential chain", () => {
  it("passes its live suite (clients/python/tests) against the same API", async () => {
    const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(
        join(ROOT, ".local/venv/bin/python"),
        ["-m", "pytest", "clients/python/tests", "-q", "-p", "no:cacheprovider", "-rs"],
        {
          cwd: ROOT,
          timeout: 240_000,
          env: {
            // Only these credentials: botocore's chain must find them in the environment.
            ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("AWS_"))),
            PYTHONPATH: join(ROOT, "clients/python/src"),
            FEATURE_STORE_URL: baseUrl,
            FEATURE_STORE_FAULT_URL: faultUrl,
            AWS_ACCESS_KEY_ID: LOCAL_IAM_CREDENTIALS.accessKeyId,
            AWS_SECRET_ACCESS_KEY: LOCAL_IAM_CREDENTIALS.secretAccessKey,
            AWS_REGION: "eu-west-1",
            AWS_CONFIG_FILE: "/dev/null",
            AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
          },
        },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr }),
      );
    });
    expect(output).toMatch(/\b16 passed\b/);
    expect(output).not.toMatch(/skipped|failed|error/i);
    expect(code, output).toBe(0);
  }, 300_000);
});
