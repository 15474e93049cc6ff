import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import middy from "@middy/core";
import { join } from "node:path";
import { loadFeatureViews } from "./functions/commons/feature-view.js";
import { FeatureReader } from "./functions/get-features/feature-reader.js";
import { createGetFeaturesHandler } from "./functions/get-features/http-handler.js";
import { jsonResponse } from "./functions/commons/http-errors.js";
process.env.POWERTOOLS_SERVICE_NAME = "x"; process.env.POWERTOOLS_METRICS_NAMESPACE = "y";
const views = loadFeatureViews(join(process.cwd(), "resources/feature-views"));
const energy = views.get("energy")!;
const row = { entityId: "MAC000002", featureDate: "2014-02-27", features: Object.fromEntries(energy.features.map((f, i) => [f.name, i * 1.5])) };
const store = { getLatest: async (_v: unknown, ids: readonly string[]) => ids.map(() => row), connect: async () => true, close: async () => {} };
const reader = new FeatureReader(views, store as never);
const sink = (() => true) as typeof process.stdout.write;
const realErr = process.stderr.write.bind(process.stderr);
process.stdout.write = sink;
const event = (i: number) => ({ version: "2.0", routeKey: "GET /features/{view}/{entityId}", rawPath: "/features/energy/MAC000002", rawQueryString: "", headers: {}, isBase64Encoded: false, pathParameters: { view: "energy", entityId: "MAC000002" }, requestContext: { requestId: `r-${i}`, http: { method: "GET", path: "/x" } } });
const ctx = { functionName: "f", memoryLimitInMB: "1024", invokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:f", awsRequestId: "a", getRemainingTimeInMillis: () => 6000 };
const variants: Record<string, (e: any, c: any) => Promise<any>> = {
  full: createGetFeaturesHandler({ reader, logger: new Logger(), metrics: new Metrics() }) as never,
  readerOnly: async (e) => jsonResponse(200, await reader.readEntity({ views: [e.pathParameters.view], entityId: e.pathParameters.entityId })),
  middyBare: middy().handler(async (e: any) => jsonResponse(200, await reader.readEntity({ views: [e.pathParameters.view], entityId: e.pathParameters.entityId }))) as never,
  ctxOnly: middy().use(injectLambdaContext(new Logger(), { resetKeys: true })).handler(async (e: any) => jsonResponse(200, await reader.readEntity({ views: [e.pathParameters.view], entityId: e.pathParameters.entityId }))) as never,
  metricsOnly: (() => { const m = new Metrics(); return middy().use(logMetrics(m, { captureColdStartMetric: true })).handler(async (e: any) => { m.addMetric("latency", MetricUnit.Milliseconds, 1); return jsonResponse(200, await reader.readEntity({ views: [e.pathParameters.view], entityId: e.pathParameters.entityId })); }) })() as never,
  logOnly: (() => { const l = new Logger(); return middy().handler(async (e: any) => { const r = jsonResponse(200, await reader.readEntity({ views: [e.pathParameters.view], entityId: e.pathParameters.entityId })); l.info("request served", { statusCode: 200, latencyMs: 1.234, route: e.routeKey }); return r; }) })() as never,
};
const N = 20000;
(async () => {
for (let round = 0; round < 3; round++) for (const [name, h] of Object.entries(variants)) {
  for (let i = 0; i < 2000; i++) await h(event(i), { ...ctx, awsRequestId: `a${i}` });
  const before = process.cpuUsage();
  let i = 0;
  await Promise.all(Array.from({ length: 16 }, async () => { while (i < N) { i++; await h(event(i), { ...ctx, awsRequestId: `a${i}` }); } }));
  const c = process.cpuUsage(before);
  if (round === 2) realErr(`${name}: ${((c.user + c.system) / N).toFixed(1)} us/req\n`);
}
})();
