// getFeatures through its real middy stack (logging, metrics, error mapping) with a fake online
// store: every response path, the JSON shapes callers rely on, and what must never leak.
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FeatureReader } from "#functions/get-features/feature-reader.js";
import { createGetFeaturesHandler } from "#functions/get-features/http-handler.js";
import { type FeatureCall, httpEvent, lambdaContext, viewsEvent } from "../fixtures/api-gateway-events.js";
import { FakeOnlineStore } from "../fixtures/fake-online-store.js";
import { energyFeatures, energyRow, fixtureViews, weatherRow } from "../fixtures/feature-views.js";

let store: FakeOnlineStore;
let stdout: string[];
let handler: ReturnType<typeof createGetFeaturesHandler>;

async function get(call: FeatureCall, awsRequestId?: string) {
  const response = await handler(httpEvent(call), lambdaContext(awsRequestId));
  return { ...response, json: JSON.parse(response.body) as Record<string, unknown> };
}

function logLines(): Array<Record<string, unknown>> {
  return stdout
    .flatMap((chunk) => chunk.split("\n"))
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

beforeEach(() => {
  stdout = [];
  // Powertools writes INFO and EMF to stdout, WARN and ERROR to stderr.
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, "write").mockImplementation((chunk: string | Uint8Array) => {
      stdout.push(String(chunk));
      return true;
    });
  }
  store = new FakeOnlineStore()
    .put("energy", energyRow("MAC000002", 2))
    .put("energy", energyRow("MAC000003", 3, "2014-02-28"))
    .put("weather", weatherRow("MAC000002"));
  handler = createGetFeaturesHandler({
    reader: new FeatureReader(fixtureViews(), store),
    logger: new Logger({ serviceName: "feature-store-test", logLevel: "INFO" }),
    metrics: new Metrics({ namespace: "FeatureStoreTest", serviceName: "feature-store-test" }),
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("single entity", () => {
  it("returns the view, id, feature date and every feature with its JSON type", async () => {
    const response = await get({ view: "energy", entityId: "MAC000002" });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe("application/json");
    expect(response.json).toEqual({
      view: "energy",
      entityId: "MAC000002",
      featureDate: "2014-02-27",
      features: energyFeatures(2),
    });
    const features = response.json.features as Record<string, unknown>;
    expect(Object.keys(features)).toHaveLength(22);
    expect(features.energy_std_3m).toBeNull();
    expect(store.calls).toEqual([{ view: "energy", entityIds: ["MAC000002"], features: undefined }]);
  });

  it("keeps a bigint as its exact decimal string and strings as strings", async () => {
    const response = await get({ view: "weather", entityId: "MAC000002" });
    expect(response.statusCode).toBe(200);
    expect(response.json.features).toEqual(weatherRow("MAC000002").features);
  });

  it("projects ?features= onto the requested names, in view order, and asks the store for them only", async () => {
    const response = await get({
      view: "energy",
      entityId: "MAC000003",
      query: { features: "energy_mean_12m,energy_sum" },
    });
    expect(response.statusCode).toBe(200);
    const all = energyFeatures(3);
    expect(response.json.features).toEqual({
      energy_sum: all.energy_sum,
      energy_mean_12m: all.energy_mean_12m,
    });
    expect(Object.keys(response.json.features as object)).toEqual(["energy_sum", "energy_mean_12m"]);
    expect(response.json.featureDate).toBe("2014-02-28");
    expect(store.calls[0]?.features).toEqual(["energy_mean_12m", "energy_sum"]);
  });

  it("answers 404 with a JSON error when the entity has no row", async () => {
    const response = await get({ view: "energy", entityId: "MAC999999" });
    expect(response.statusCode).toBe(404);
    expect(response.json).toEqual({ error: { code: "NOT_FOUND", message: expect.any(String) } });
  });
});

describe("bad input is a 400 that names the problem, and never reaches the store", () => {
  const cases: Array<[string, FeatureCall, RegExp]> = [
    ["unknown view", { view: "gas", entityId: "MAC000002" }, /unknown view "gas"/],
    ["malformed view name", { view: "Energy;DROP", entityId: "MAC000002" }, /malformed view name/],
    [
      "unknown feature",
      { view: "energy", entityId: "MAC000002", query: { features: "energy_mean,energy_median_9m" } },
      /unknown feature "energy_median_9m"/,
    ],
    [
      "feature name that is not an identifier (CQL injection attempt)",
      { view: "energy", entityId: "MAC000002", query: { features: "energy_mean FROM x;--" } },
      /malformed feature name/,
    ],
    ["empty projection", { view: "energy", entityId: "MAC000002", query: { features: "" } }, /at least one/],
    ["id with a forbidden character", { view: "energy", entityId: "MAC'0002" }, /does not match/],
    ["id with a space", { view: "energy", entityId: "MAC 0002" }, /does not match/],
    ["id longer than 64 characters", { view: "energy", entityId: "M".repeat(65) }, /1 to 64 characters/],
    ["batch without ids", { view: "energy" }, /ids is required/],
    ["batch with empty ids", { view: "energy", query: { ids: "" } }, /at least one id/],
    [
      "batch with an empty id among others",
      { view: "energy", query: { ids: "MAC000002,,MAC000003" } },
      /1 to 64/,
    ],
    ["batch with a bad id", { view: "energy", query: { ids: "MAC000002,bad/id" } }, /does not match/],
    [
      "ids on the single-entity route",
      { view: "energy", entityId: "MAC000002", query: { ids: "a" } },
      /ids is only/,
    ],
    [
      "unknown query parameter",
      { view: "energy", entityId: "MAC000002", query: { feature: "x" } },
      /unknown query/,
    ],
    ["a view listed twice", { view: "energy,energy", entityId: "MAC000002" }, /listed twice/],
    [
      "a view parameter over 1,024 characters",
      { view: "e".repeat(1025), entityId: "MAC000002" },
      /malformed request/,
    ],
    [
      "more than 10 views",
      { view: Array.from({ length: 11 }, (_, i) => `view${i}`).join(","), entityId: "MAC000002" },
      /at most 10 views per read/,
    ],
    [
      "a features parameter over 8,192 characters",
      { view: "energy", entityId: "MAC000002", query: { features: "energy_mean,".repeat(700) } },
      /malformed request/,
    ],
    [
      "more than 200 features",
      {
        view: "energy",
        entityId: "MAC000002",
        query: { features: Array(201).fill("energy_mean").join(",") },
      },
      /at most 200 features/,
    ],
    [
      "an unknown query parameter beside known ones",
      { view: "energy", query: { ids: "MAC000002", features: "energy_mean", limit: "5" } },
      /^unknown query parameter: limit$/,
    ],
    ["a multi-view batch", { view: "energy,weather", query: { ids: "MAC000002" } }, /one view/],
    [
      "a qualified feature of a view not requested",
      { view: "energy", entityId: "MAC000002", query: { features: "weather.rain_mm" } },
      /unknown feature/,
    ],
  ];

  it.each(cases)("%s", async (_, call, message) => {
    const response = await get(call);
    expect(response.statusCode).toBe(400);
    expect(response.json).toEqual({
      error: { code: "BAD_REQUEST", message: expect.stringMatching(message) },
    });
    expect(store.calls).toEqual([]);
  });

  it("rejects 101 ids but accepts 100", async () => {
    const ids = (n: number) =>
      Array.from({ length: n }, (_, i) => `MAC${String(i).padStart(6, "0")}`).join(",");
    const tooMany = await get({ view: "energy", query: { ids: ids(101) } });
    expect(tooMany.statusCode).toBe(400);
    expect((tooMany.json.error as { message: string }).message).toMatch(/at most 100 ids/);
    expect(store.calls).toEqual([]);

    const hundred = await get({ view: "energy", query: { ids: ids(100) } });
    expect(hundred.statusCode).toBe(200);
    expect((hundred.json.results as unknown[]).length).toBe(100);
  });
});

describe("batch", () => {
  it("answers in request order, marks missing ids, keeps duplicates and projects", async () => {
    const response = await get({
      view: "energy",
      query: { ids: "MAC000003,MAC404,MAC000002,MAC000003", features: "energy_count" },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json).toEqual({
      view: "energy",
      results: [
        { entityId: "MAC000003", found: true, featureDate: "2014-02-28", features: { energy_count: 16 } },
        { entityId: "MAC404", found: false },
        { entityId: "MAC000002", found: true, featureDate: "2014-02-27", features: { energy_count: 15 } },
        { entityId: "MAC000003", found: true, featureDate: "2014-02-28", features: { energy_count: 16 } },
      ],
    });
  });

  it("is 200 with every id marked not found when none exists (a batch is never a 404)", async () => {
    const response = await get({ view: "energy", query: { ids: "X1,X2" } });
    expect(response.statusCode).toBe(200);
    expect(response.json.results).toEqual([
      { entityId: "X1", found: false },
      { entityId: "X2", found: false },
    ]);
  });
});

describe("multi-view", () => {
  it("reads every view in parallel and returns each view's date and features", async () => {
    store.delayMs = 30;
    const response = await get({ view: "energy,weather", entityId: "MAC000002" });
    expect(response.statusCode).toBe(200);
    expect(response.json).toEqual({
      entityId: "MAC000002",
      views: {
        energy: { found: true, featureDate: "2014-02-27", features: energyFeatures(2) },
        weather: { found: true, featureDate: "2014-02-26", features: weatherRow("MAC000002").features },
      },
    });
    expect(store.maxInFlight).toBe(2);
  });

  it("applies bare names to the views that declare them and qualified names to one view", async () => {
    const response = await get({
      view: "energy,weather",
      entityId: "MAC000002",
      query: { features: "energy_max,weather.rain_mm" },
    });
    expect(response.statusCode).toBe(200);
    const views = response.json.views as Record<string, { features: object }>;
    expect(views.energy?.features).toEqual({ energy_max: energyFeatures(2).energy_max });
    expect(views.weather?.features).toEqual({ rain_mm: 12 });
  });

  it("marks a view without a row as not found, and is 404 only when no view has one", async () => {
    const partial = await get({ view: "energy,weather", entityId: "MAC000003" });
    expect(partial.statusCode).toBe(200);
    expect((partial.json.views as Record<string, unknown>).weather).toEqual({ found: false });

    const none = await get({ view: "energy,weather", entityId: "MAC404" });
    expect(none.statusCode).toBe(404);
  });
});

describe("GET /views", () => {
  it("lists every view with its entity, id pattern and features typed as they are served", async () => {
    const response = await handler(viewsEvent(), lambdaContext());
    expect(response.statusCode).toBe(200);
    const body = JSON.parse(response.body);
    expect(body.views.map((view: { name: string }) => view.name)).toEqual(["energy", "weather"]);
    const [energy, weather] = body.views;
    expect(energy.entity).toEqual({ column: "household_id", idPattern: "^[A-Za-z0-9_.:-]{1,64}$" });
    expect(energy.features).toHaveLength(22);
    expect(energy.features[0]).toEqual({
      name: "energy_median",
      type: "number",
      viewType: "double",
      nullable: true,
    });
    expect(energy.features.find((f: { name: string }) => f.name === "energy_count_3m")).toMatchObject({
      type: "integer",
      viewType: "int",
    });
    // bigint leaves as a decimal string (see docs/API.md, Types); strings as strings.
    expect(weather.features.map((f: { name: string; type: string }) => [f.name, f.type])).toEqual([
      ["temperature", "number"],
      ["rain_mm", "integer"],
      ["sunshine_s", "string"],
      ["summary", "string"],
      ["sunshine_s_7d", "string"],
    ]);
  });

  it("never reads the store, and rejects query parameters", async () => {
    store.getLatest = async () => {
      throw new Error("the catalog must not read the store");
    };
    expect((await handler(viewsEvent(), lambdaContext())).statusCode).toBe(200);
    const response = await handler(viewsEvent({ view: "energy" }), lambdaContext());
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body).error).toEqual({
      code: "BAD_REQUEST",
      message: "unknown query parameter: view",
    });
  });
});

describe("store failures", () => {
  it("answers 503 with Retry-After when the store is unavailable", async () => {
    store.unavailable(3);
    const response = await get({ view: "energy", entityId: "MAC000002" });
    expect(response.statusCode).toBe(503);
    expect(response.headers["retry-after"]).toBe("3");
    expect(response.json).toEqual({
      error: { code: "STORE_UNAVAILABLE", message: "The feature store is temporarily unavailable" },
    });
  });

  it("answers 500 without the driver's message, stack or hosts", async () => {
    store.failure = new Error("ResponseError: unconfigured table energy_features at 10.1.2.3:9142");
    const response = await get({ view: "energy", entityId: "MAC000002" });
    expect(response.statusCode).toBe(500);
    expect(response.json).toEqual({ error: { code: "INTERNAL", message: "Internal error" } });
    expect(response.body).not.toMatch(/unconfigured|10\.1\.2\.3|at /);
    // ...but the log keeps the cause for the operator.
    const failure = logLines().find((line) => line.message === "request failed");
    expect(JSON.stringify(failure)).toMatch(/unconfigured table/);
  });
});

describe("observability", () => {
  it("logs one structured line per request with the Lambda and API request ids and the latency", async () => {
    await get({ view: "energy", entityId: "MAC000002", requestId: "api-req-42" }, "lambda-req-42");
    const served = logLines().filter((line) => line.message === "request served");
    expect(served).toHaveLength(1);
    expect(served[0]).toMatchObject({
      level: "INFO",
      function_request_id: "lambda-req-42",
      correlation_id: "api-req-42",
      statusCode: 200,
      latencyMs: expect.any(Number),
    });
  });

  it("logs error responses too, and publishes a latency metric in milliseconds per request", async () => {
    await get({ view: "gas", entityId: "MAC000002" }, "lambda-req-43");
    const served = logLines().find((line) => line.message === "request served");
    expect(served).toMatchObject({ function_request_id: "lambda-req-43", statusCode: 400 });
    const emf = logLines().find((line) => "_aws" in line);
    expect(emf).toMatchObject({
      _aws: {
        CloudWatchMetrics: [
          { Namespace: "FeatureStoreTest", Metrics: [{ Name: "latency", Unit: "Milliseconds" }] },
        ],
      },
      latency: expect.any(Number),
    });
  });
});
