// Protects the local HTTP API (local/http-adapter.ts) over real HTTP, in front of the real
// getFeatures middy stack with a fake store: no request can stop the server; a malformed
// percent-encoding is the API's own 400; a request that matches no route gets API Gateway's own
// answer; a failing handler gets API Gateway's 500; a failure inside the adapter is a logged 500 in
// the API's error shape. After each of them the next request is still served.
import { request } from "node:http";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FeatureReader } from "#functions/get-features/feature-reader.js";
import { createGetFeaturesHandler } from "#functions/get-features/http-handler.js";
import { type HttpHandler, LocalHttpApi } from "#local/http-adapter.js";
import { FakeOnlineStore } from "../fixtures/fake-online-store.js";
import { energyRow, fixtureViews } from "../fixtures/feature-views.js";

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One request with any method and a raw request target (not normalised by a URL parser). */
function send(baseUrl: string, method: string, target: string): Promise<Reply> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: hostname, port, method, path: target, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolvePromise({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${target}: no answer in 5 s`)));
    req.on("error", reject);
    req.end();
  });
}

let api: LocalHttpApi;
let baseUrl: string;
let logged: string[];
let realHandler: HttpHandler;
/** What the adapter calls; each test may replace it. */
let handler: HttpHandler;

async function expectStillServing(): Promise<void> {
  const reply = await send(baseUrl, "GET", "/features/energy/MAC000002");
  expect(reply.status).toBe(200);
  expect(JSON.parse(reply.body)).toMatchObject({ view: "energy", entityId: "MAC000002" });
}

beforeEach(async () => {
  // Powertools writes its log and metric lines to stdout/stderr; keep the test output readable.
  for (const stream of [process.stdout, process.stderr]) vi.spyOn(stream, "write").mockReturnValue(true);
  realHandler = createGetFeaturesHandler({
    reader: new FeatureReader(fixtureViews(), new FakeOnlineStore().put("energy", energyRow("MAC000002", 2))),
    logger: new Logger({ serviceName: "feature-store-test", logLevel: "ERROR" }),
    metrics: new Metrics({ namespace: "FeatureStoreTest", serviceName: "feature-store-test" }),
  });
  handler = realHandler;
  logged = [];
  api = new LocalHttpApi((event, context) => handler(event, context), {
    log: (message) => logged.push(message),
  });
  baseUrl = await api.listen(0);
});

afterEach(async () => {
  await api.close();
  vi.restoreAllMocks();
});

describe("local HTTP API: no request stops the server", () => {
  it("a malformed percent-encoding in the path is the API's own 400, in the handler's shape", async () => {
    // The handler's own 400 for a bad id: the shape a caller already handles.
    const fromHandler = await send(baseUrl, "GET", "/features/energy/not%20an%20id!");
    expect(fromHandler.status).toBe(400);

    for (const target of [
      "/features/energy/%E0%A4%A",
      "/features/%E0%A4%A/MAC000002",
      "/features/%zz?ids=a",
    ]) {
      const reply = await send(baseUrl, "GET", target);
      expect(reply.status, target).toBe(400);
      expect(reply.headers["content-type"], target).toBe(fromHandler.headers["content-type"]);
      expect(reply.headers["cache-control"], target).toBe(fromHandler.headers["cache-control"]);
      expect(JSON.parse(reply.body), target).toEqual({
        error: { code: "BAD_REQUEST", message: "Malformed percent-encoding in the request path" },
      });
      expect(Object.keys(JSON.parse(fromHandler.body).error)).toEqual(["code", "message"]);
      await expectStillServing();
    }
  });

  it("a method or path with no route gets API Gateway's own 404 (no route matches)", async () => {
    // https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html
    // ("Routing API requests"): if no routes match a request, API Gateway returns
    // {"message":"Not Found"}. The routes are GET only, so any other method matches none.
    const targets: Array<[string, string]> = [
      ["POST", "/features/energy/MAC000002"],
      ["PUT", "/features/energy/MAC000002"],
      ["DELETE", "/features/energy?ids=MAC000002"],
      ["PATCH", "/features/energy/MAC000002"],
      ["OPTIONS", "/features/energy/MAC000002"],
      ["GET", "/nothing/here"],
      ["GET", "/features/energy/MAC000002/extra"],
      ["GET", "//"],
      ["GET", "//features/energy"],
    ];
    for (const [method, target] of targets) {
      const reply = await send(baseUrl, method, target);
      expect(reply.status, `${method} ${target}`).toBe(404);
      expect(reply.headers["content-type"], `${method} ${target}`).toBe("application/json");
      expect(JSON.parse(reply.body), `${method} ${target}`).toEqual({ message: "Not Found" });
    }
    const head = await send(baseUrl, "HEAD", "/features/energy/MAC000002");
    expect(head.status).toBe(404);
    await expectStillServing();
  });

  it("a handler that throws or rejects gets API Gateway's 500 for a failed integration, logged", async () => {
    for (const failing of [
      () => Promise.reject(new Error("rejected on purpose")),
      () => {
        throw new Error("thrown on purpose");
      },
    ] as HttpHandler[]) {
      handler = failing;
      const reply = await send(baseUrl, "GET", "/features/energy/MAC000002");
      expect(reply.status).toBe(500);
      expect(JSON.parse(reply.body)).toEqual({ message: "Internal Server Error" });
      handler = realHandler;
      await expectStillServing();
    }
    expect(logged.join("\n")).toContain("rejected on purpose");
    expect(logged.join("\n")).toContain("thrown on purpose");
  });

  it("a failure inside the adapter is a 500 in the API's error shape, logged with its cause", async () => {
    // A response node cannot write (status 42): the adapter fails, not the handler.
    handler = async () => ({ statusCode: 42, body: "{}" });
    const reply = await send(baseUrl, "GET", "/features/energy/MAC000002");
    expect(reply.status).toBe(500);
    expect(reply.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(reply.body)).toEqual({ error: { code: "INTERNAL", message: "Internal error" } });
    expect(reply.body).not.toContain("42");
    expect(logged.join("\n")).toMatch(/GET \/features\/energy\/MAC000002.*status code/is);
    handler = realHandler;
    await expectStillServing();
  });
});
