// The getFeatures HTTP adapter: the middy stack (logging, metrics, error mapping) around a handler
// that turns an API Gateway HTTP API event into a FeatureReader call. Built from its dependencies
// so tests run the real stack with a fake store; handler.ts wires the production ones.
import type { Logger } from "@aws-lambda-powertools/logger";
import type { Metrics } from "@aws-lambda-powertools/metrics";
import middy from "@middy/core";
import type { APIGatewayProxyEventV2, Context } from "aws-lambda";
import { InvalidRequestError } from "#commons/errors.js";
import { httpErrors, type JsonResponse, jsonResponse } from "#commons/http-errors.js";
import { sourceMappedErrorLogger } from "#commons/source-mapped-stack.js";
import type { FeatureReader } from "./feature-reader.js";
import { type RequestTelemetryOptions, requestLogKeys, requestTelemetry } from "./request-telemetry.js";

/** Longest `?ids=` or `?features=` value accepted (100 ids of 64 characters fit). */
const MAX_LIST_PARAMETER_LENGTH = 8192;
const MAX_VIEW_PARAMETER_LENGTH = 1024;
const QUERY_PARAMETERS: ReadonlySet<string> = new Set(["ids", "features"]);

/** "a,b,c" → ["a","b","c"]; an empty parameter is an empty list (rejected downstream by size). */
function commaList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  if (value.length > MAX_LIST_PARAMETER_LENGTH) throw new InvalidRequestError("malformed request");
  return value === "" ? [] : value.split(",").map((item) => item.trim());
}

/** The parameters of a feature route, checked for shape (names and sizes are the reader's). */
interface FeatureRoute {
  readonly view: string;
  readonly entityId: string | undefined;
  readonly ids: string[] | undefined;
  readonly features: string[] | undefined;
}

/**
 * Routes: GET /views (the catalog, see ROUTE_KEYS), GET /features/{view}/{entityId} (view may be
 * "v1,v2" for a multi-view read) and GET /features/{view}?ids=a,b,c. Both feature routes take
 * ?features=f1,f2. Unknown parameters are rejected so a typo (`?feature=`) never silently returns
 * every feature. Checked by hand rather than with a zod schema: this runs on every request, and
 * the event's shape is API Gateway's, with string values only (docs/PERFORMANCE.md, "third round").
 */
export function featureRoute(event: APIGatewayProxyEventV2): FeatureRoute {
  const query = event.queryStringParameters ?? {};
  const unknown = Object.keys(query).filter((name) => !QUERY_PARAMETERS.has(name));
  if (unknown.length > 0) throw new InvalidRequestError(`unknown query parameter: ${unknown.join(", ")}`);
  const view = event.pathParameters?.view;
  const entityId = event.pathParameters?.entityId;
  if (
    typeof view !== "string" ||
    view.length === 0 ||
    view.length > MAX_VIEW_PARAMETER_LENGTH ||
    (entityId !== undefined && typeof entityId !== "string")
  ) {
    throw new InvalidRequestError("malformed request");
  }
  return { view, entityId, ids: commaList(query.ids), features: commaList(query.features) };
}

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
    // No early-timeout race of middy's (a timer and a promise per request): every read is already
    // bounded by the store's deadline (STORE_DEADLINE_MS, 1.5 s deployed), well inside the
    // function's timeout (6 s), and answers 503 when it passes.
    middy<APIGatewayProxyEventV2, JsonResponse, Error, Context>({ timeoutEarlyInMillis: 0 })
      // No Powertools injectLambdaContext: the request ids go on the lines written (requestLogKeys).
      .use(requestTelemetry(logger, metrics, telemetry))
      // Logged 5xx errors get source-mapped stacks lazily, without --enable-source-maps at init.
      .use(
        httpErrors<APIGatewayProxyEventV2, Context>({
          logger: sourceMappedErrorLogger(logger),
          logKeys: requestLogKeys,
        }),
      )
      .handler(async (event) => jsonResponse(200, await serve(reader, event)))
  );
}

/** The routes of serverless.yml, as API Gateway names them in `routeKey`. */
export const ROUTE_KEYS = {
  views: "GET /views",
  entity: "GET /features/{view}/{entityId}",
  batch: "GET /features/{view}",
} as const;

// Not async: it hands the reader's promise on instead of wrapping it in one more (each layer of
// promises is microtask work on every request). Its throws reject the async handler that awaits it.
function serve(reader: FeatureReader, event: APIGatewayProxyEventV2) {
  if (event.routeKey === ROUTE_KEYS.views) {
    const unknown = Object.keys(event.queryStringParameters ?? {});
    if (unknown.length > 0) throw new InvalidRequestError(`unknown query parameter: ${unknown.join(", ")}`);
    return reader.listViews();
  }
  const route = featureRoute(event);
  if (route.entityId !== undefined) {
    if (route.ids !== undefined) throw new InvalidRequestError("ids is only allowed on /features/{view}");
    return reader.readEntity({
      views: route.view.split(","),
      entityId: route.entityId,
      features: route.features,
    });
  }
  if (route.ids === undefined) throw new InvalidRequestError("ids is required on /features/{view}");
  if (route.view.includes(",")) throw new InvalidRequestError("a batch read takes one view");
  return reader.readBatch({ view: route.view, entityIds: route.ids, features: route.features });
}
