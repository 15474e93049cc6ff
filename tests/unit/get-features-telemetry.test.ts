// What an operator still sees when getFeatures samples its request logs and batches its latency
// metric (request-telemetry.ts): every failure is logged, 2xx lines are sampled and say at which
// rate, and every request's latency reaches an EMF record, stamped with the time of its first value.
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FeatureReader } from "#functions/get-features/feature-reader.js";
import { createGetFeaturesHandler } from "#functions/get-features/http-handler.js";
import type { RequestTelemetryOptions } from "#functions/get-features/request-telemetry.js";
import { type FeatureCall, httpEvent, lambdaContext } from "../fixtures/api-gateway-events.js";
import { FakeOnlineStore } from "../fixtures/fake-online-store.js";
import { energyRow, fixtureViews } from "../fixtures/feature-views.js";

let output: string[];
let store: FakeOnlineStore;
let clock: number;
let draws: number[];

function lines(): Array<Record<string, unknown>> {
  return output
    .flatMap((chunk) => chunk.split("\n"))
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
const served = () => lines().filter((line) => line.message === "request served");
const latencyRecords = () =>
  lines().filter((line) => "_aws" in line && "latency" in line) as Array<{
    _aws: { Timestamp: number };
    latency: number | number[];
  }>;

function build(options: Omit<RequestTelemetryOptions, "random" | "now">) {
  const handler = createGetFeaturesHandler({
    reader: new FeatureReader(fixtureViews(), store),
    logger: new Logger({ serviceName: "feature-store-test", logLevel: "INFO" }),
    metrics: new Metrics({ namespace: "FeatureStoreTest", serviceName: "feature-store-test" }),
    telemetry: { ...options, random: () => draws.shift() ?? 0.99, now: () => clock },
  });
  return (call: FeatureCall, requestId = "lambda-req") => handler(httpEvent(call), lambdaContext(requestId));
}

beforeEach(() => {
  output = [];
  clock = 1_767_000_000_000;
  draws = [];
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, "write").mockImplementation((chunk: string | Uint8Array) => {
      output.push(String(chunk));
      return true;
    });
  }
  store = new FakeOnlineStore().put("energy", energyRow("MAC000002", 2));
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

describe("request log sampling", () => {
  it("logs a sampled fraction of 2xx responses, with the rate, and every 4xx and 5xx", async () => {
    const get = build({ logSampleRate: 0.1, metricsFlushIntervalMs: 0 });
    draws = [0.5, 0.05]; // the first 2xx is not drawn, the second is
    await get({ view: "energy", entityId: "MAC000002" }, "ok-not-sampled");
    await get({ view: "energy", entityId: "MAC000002" }, "ok-sampled");
    await get({ view: "gas", entityId: "MAC000002" }, "bad-request");
    store.unavailable();
    await get({ view: "energy", entityId: "MAC000002" }, "store-down");

    expect(served().map((l) => [l.function_request_id, l.statusCode, l.sampleRate])).toEqual([
      ["ok-sampled", 200, 0.1],
      ["bad-request", 400, undefined],
      ["store-down", 503, undefined],
    ]);
    // The failure itself is logged with its error, whatever the sampling.
    expect(lines().find((l) => l.message === "request failed")).toMatchObject({
      function_request_id: "store-down",
      statusCode: 503,
      error: { name: "StoreUnavailableError" },
    });
  });

  it("logs every request, without a rate, at the default of 1", async () => {
    const get = build({ logSampleRate: 1, metricsFlushIntervalMs: 0 });
    await get({ view: "energy", entityId: "MAC000002" });
    await get({ view: "energy", entityId: "MAC000002" });
    expect(served()).toHaveLength(2);
    expect(served()[0]).not.toHaveProperty("sampleRate");
  });
});

describe("request timing and ids", () => {
  it("measures each request from before the read to the response, for the line and the metric", async () => {
    const get = build({ logSampleRate: 1, metricsFlushIntervalMs: 0 });
    store.delayMs = 30;
    await get({ view: "energy", entityId: "MAC000002" });
    const [line] = served();
    expect(line?.latencyMs).toBeGreaterThanOrEqual(25);
    expect(latencyRecords()[0]?.latency).toBeGreaterThanOrEqual(25);
  });

  it("puts the Lambda and API request ids on the request line and on the failure line of a 500", async () => {
    const get = build({ logSampleRate: 0, metricsFlushIntervalMs: 0 });
    store.failure = new Error("unconfigured table energy_features");
    await get({ view: "energy", entityId: "MAC000002", requestId: "api-req-9" }, "lambda-req-9");
    const ids = (l: Record<string, unknown>) => [l.message, l.function_request_id, l.correlation_id];
    expect(
      lines()
        .filter((l) => typeof l.message === "string")
        .map(ids),
    ).toEqual([
      ["request failed", "lambda-req-9", "api-req-9"],
      ["request served", "lambda-req-9", "api-req-9"],
    ]);
  });
});

describe("latency metric batching", () => {
  it("publishes one record per invocation when the flush interval is 0", async () => {
    const get = build({ logSampleRate: 1, metricsFlushIntervalMs: 0 });
    await get({ view: "energy", entityId: "MAC000002" });
    await get({ view: "gas", entityId: "MAC000002" });
    expect(latencyRecords().map((r) => typeof r.latency)).toEqual(["number", "number"]);
  });

  it("keeps latencies across invocations and publishes them in one record stamped with the first", async () => {
    const get = build({ logSampleRate: 0, metricsFlushIntervalMs: 1000 });
    const first = clock;
    await get({ view: "energy", entityId: "MAC000002" });
    clock += 400;
    await get({ view: "gas", entityId: "MAC000002" }); // errors count too
    clock += 599;
    await get({ view: "energy", entityId: "MAC000002" });
    expect(latencyRecords()).toEqual([]);
    clock += 1; // the oldest value is 1,000 ms old when the next request comes: published first
    await get({ view: "energy", entityId: "MAC000002" });
    const records = latencyRecords();
    expect(records).toHaveLength(1);
    expect(records[0]?._aws.Timestamp).toBe(first);
    expect(records[0]?.latency).toHaveLength(3);
  });

  it("writes the record Powertools Metrics writes for the same values (namespace, service, unit)", async () => {
    const get = build({ logSampleRate: 0, metricsFlushIntervalMs: 1000 });
    for (let i = 0; i < 3; i++) {
      await get({ view: "energy", entityId: "MAC000002" });
      clock += 100;
    }
    clock += 1000;
    await get({ view: "energy", entityId: "MAC000002" });
    const [ours] = latencyRecords();
    if (ours === undefined) throw new Error("no latency record was written");
    expect(ours.latency).toHaveLength(3);

    output = [];
    const reference = new Metrics({ namespace: "FeatureStoreTest", serviceName: "feature-store-test" });
    reference.setTimestamp(ours._aws.Timestamp);
    for (const value of ours.latency as number[]) reference.addMetric("latency", "Milliseconds", value);
    reference.publishStoredMetrics();
    expect(latencyRecords()).toEqual([ours]);
  });

  it("publishes at 100 values whatever their age (CloudWatch's limit per record)", async () => {
    const get = build({ logSampleRate: 0, metricsFlushIntervalMs: 60_000 });
    const first = clock;
    for (let i = 0; i < 100; i++) {
      await get({ view: "energy", entityId: "MAC000002" });
      clock += 10;
    }
    const records = latencyRecords();
    expect(records).toHaveLength(1);
    expect(records[0]?._aws.Timestamp).toBe(first);
    expect(records[0]?.latency).toHaveLength(100);
    expect(output.join("")).not.toContain("No application metrics to publish");
  });

  it("publishes values left from before an idle period first, with their own timestamp", async () => {
    const get = build({ logSampleRate: 0, metricsFlushIntervalMs: 1000 });
    const first = clock;
    await get({ view: "energy", entityId: "MAC000002" });
    clock += 300_000;
    await get({ view: "energy", entityId: "MAC000002" });
    const records = latencyRecords();
    expect(records).toHaveLength(1);
    expect(records[0]?._aws.Timestamp).toBe(first);
    expect(typeof records[0]?.latency).toBe("number");
  });

  it("still emits the ColdStart metric once, on the first invocation", async () => {
    vi.stubEnv("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand");
    const get = build({ logSampleRate: 0, metricsFlushIntervalMs: 1000 });
    await get({ view: "energy", entityId: "MAC000002" });
    await get({ view: "energy", entityId: "MAC000002" });
    expect(lines().filter((l) => "ColdStart" in l)).toHaveLength(1);
  });
});
