// The getFeatures HTTP adapter: the middy stack (logging, metrics, error mapping) around a handler
// that turns an API Gateway HTTP API event into a FeatureReader call. Built from its dependencies
// so tests run the real stack with a fake store; handler.ts wires the production ones.
import type { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import type { Metrics } from "@aws-lambda-powertools/metrics";
import middy from "@middy/core";
import type { APIGatewayProxyEventV2, Context } from "aws-lambda";
import { z } from "zod";
import { InvalidRequestError } from "#commons/errors.js";
import { httpErrors, type JsonResponse, jsonResponse } from "#commons/http-errors.js";
import { sourceMappedErrorLogger } from "#commons/source-mapped-stack.js";
import type { FeatureReader } from "./feature-reader.js";
import { type RequestTelemetryOptions, requestTelemetry } from "./request-telemetry.js";

// "a,b,c" → ["a","b","c"]; an empty parameter is an empty list (rejected downstream by size).
const commaList = z
  .string()
  .max(8192)
  .transform((value) => (value === "" ? [] : value.split(",").map((item) => item.trim())));

/**
 * Routes: GET /views (the catalog, see ROUTE_KEYS), GET /features/{view}/{entityId} (view may be
 * "v1,v2" for a multi-view read) and GET /features/{view}?ids=a,b,c. Both feature routes take
 * ?features=f1,f2. Unknown parameters are rejected so a typo (`?feature=`) never silently returns
 * every feature.
 */
export const featureEventSchema = z.object({
  pathParameters: z.object({
    view: z.string().min(1).max(1024),
    entityId: z.string().optional(),
  }),
  queryStringParameters: z
    .strictObject({ ids: commaList.optional(), features: commaList.optional() })
    .optional(),
});

export interface GetFeaturesDependencies {
  readonly reader: FeatureReader;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Request-log sampling and metric batching; default: every request logged and flushed. */
  readonly telemetry?: RequestTelemetryOptions;
}

const EVERY_REQUEST: RequestTelemetryOptions = { logSampleRate: 1, metricsFlushIntervalMs: 0 };

export function createGetFeaturesHandler({
  reader,
  logger,
  metrics,
  telemetry = EVERY_REQUEST,
}: GetFeaturesDependencies) {
  return (
    middy<APIGatewayProxyEventV2, JsonResponse, Error, Context>()
      .use(injectLambdaContext(logger, { resetKeys: true }))
      .use(requestTelemetry(logger, metrics, telemetry))
      // Logged 5xx errors get source-mapped stacks lazily, without --enable-source-maps at init.
      .use(httpErrors({ logger: sourceMappedErrorLogger(logger) }))
      .handler(async (event) => jsonResponse(200, await serve(reader, event)))
  );
}

/** The routes of serverless.yml, as API Gateway names them in `routeKey`. */
export const ROUTE_KEYS = {
  views: "GET /views",
  entity: "GET /features/{view}/{entityId}",
  batch: "GET /features/{view}",
} as const;

async function serve(reader: FeatureReader, event: APIGatewayProxyEventV2) {
  if (event.routeKey === ROUTE_KEYS.views) {
    const unknown = Object.keys(event.queryStringParameters ?? {});
    if (unknown.length > 0) throw new InvalidRequestError(`unknown query parameter: ${unknown.join(", ")}`);
    return reader.listViews();
  }
  const parsed = featureEventSchema.safeParse(event);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidRequestError(
      issue?.code === "unrecognized_keys"
        ? `unknown query parameter: ${issue.keys.join(", ")}`
        : "malformed request",
    );
  }
  const { pathParameters: path, queryStringParameters: query = {} } = parsed.data;
  if (path.entityId !== undefined) {
    if (query.ids !== undefined) throw new InvalidRequestError("ids is only allowed on /features/{view}");
    return reader.readEntity({
      views: path.view.split(","),
      entityId: path.entityId,
      features: query.features,
    });
  }
  if (query.ids === undefined) throw new InvalidRequestError("ids is required on /features/{view}");
  if (path.view.includes(",")) throw new InvalidRequestError("a batch read takes one view");
  return reader.readBatch({ view: path.view, entityIds: query.ids, features: query.features });
}
