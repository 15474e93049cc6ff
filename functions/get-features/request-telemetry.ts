// What getFeatures records about each request, at a CPU cost that stays small next to the read
// itself (docs/PERFORMANCE.md, "Serving at the floor"): a JSON log line and an EMF record per request
// cost more client CPU than the Cassandra read. What an operator sees (docs/API.md):
// - every failed request: 5xx with its error and stack (http-errors.ts), and a "request served"
//   line for every non-2xx response;
// - a "request served" line for a sampled fraction of the 2xx responses (`sampleRate` in the line
//   says which fraction, so counts scale back);
// - every request's latency in the `latency` EMF metric, published per invocation, or, with a
//   flush interval, for up to 100 requests in one record stamped with the time of its first value;
// - the Lambda and API request ids (`function_request_id`, `correlation_id`) on every line it or
//   httpErrors writes (requestLogKeys). They are put on the lines written, not into a per-request
//   logger context: Powertools' injectLambdaContext did that on every request, at more CPU than
//   the rest of the handler's own work (docs/PERFORMANCE.md, "third round").
import type { Logger } from "@aws-lambda-powertools/logger";
import { type Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { MiddlewareObj } from "@middy/core";
import type { APIGatewayProxyEventV2, Context } from "aws-lambda";
import type { JsonResponse } from "#commons/http-errors.js";

const LATENCY_METRIC = "latency";

/** CloudWatch's limit on the values of one metric in one EMF record (Powertools flushes there too). */
export const MAX_VALUES_PER_RECORD = 100;

export interface RequestTelemetryOptions {
  /** Fraction of 2xx responses that get a "request served" line (non-2xx: always). 1 = all. */
  readonly logSampleRate: number;
  /**
   * 0: one EMF record per invocation. Above 0: latencies are kept across invocations and published
   * when MAX_VALUES_PER_RECORD are held or the oldest is this old (checked at each invocation, so
   * the values of an idle container's last requests go out with its next one, or are lost if
   * Lambda retires it first: at most this interval's worth of one container's requests).
   */
  readonly metricsFlushIntervalMs: number;
  readonly random?: () => number;
  readonly now?: () => number;
}

/** The request ids every line about a request carries (names as Powertools' Lambda context has them). */
export function requestLogKeys(request: { event: APIGatewayProxyEventV2; context: Context }): {
  function_request_id: string;
  correlation_id: string | undefined;
} {
  return {
    function_request_id: request.context.awsRequestId,
    correlation_id: request.event.requestContext?.requestId,
  };
}

/** Where `before` leaves the request's start time for `after`/`onError` (middy's request.internal). */
const STARTED_AT = "requestTelemetryStartedAt";

export function requestTelemetry(
  logger: Logger,
  metrics: Metrics,
  options: RequestTelemetryOptions,
): MiddlewareObj<APIGatewayProxyEventV2, JsonResponse, Error, Context> {
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const pending: number[] = [];
  let oldestAt = 0;
  let coldStartChecked = false;

  // The latency record. Powertools Metrics builds its envelope (namespace, the `service` dimension,
  // the metric's name and unit) once, from one value; each batch then goes out in that envelope with
  // its own timestamp and values, written to stdout as Powertools writes outside dev mode. Adding
  // each value through addMetric (which reads process.env several times per call) was ~2 µs of the
  // handler's ~10 µs per request (docs/PERFORMANCE.md, "third round"). A metric's value in a record
  // may be one number or an array of them: https://docs.aws.amazon.com/AmazonCloudWatch/latest/
  // monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
  let envelope: { _aws: { Timestamp: number }; [key: string]: unknown } | undefined;
  const publish = () => {
    if (envelope === undefined) {
      metrics.addMetric(LATENCY_METRIC, MetricUnit.Milliseconds, 0);
      envelope = metrics.serializeMetrics() as unknown as typeof envelope & object;
      metrics.clearMetrics();
    }
    // The record's timestamp is its first value's, not the flush's (EMF allows 14 days back).
    envelope._aws.Timestamp = oldestAt;
    // One value as a number, several as an array (as Powertools writes them).
    envelope[LATENCY_METRIC] = pending.length === 1 ? pending[0] : pending;
    process.stdout.write(`${JSON.stringify(envelope)}\n`);
    pending.length = 0;
  };
  const due = (at: number) =>
    pending.length > 0 &&
    (pending.length >= MAX_VALUES_PER_RECORD || at - oldestAt >= options.metricsFlushIntervalMs);

  const record = (request: {
    event: APIGatewayProxyEventV2;
    context: Context;
    response?: JsonResponse | null;
    internal: object;
  }) => {
    const at = now();
    const begin = (request.internal as Record<string, unknown>)[STARTED_AT];
    const latencyMs = typeof begin === "number" ? performance.now() - begin : 0;
    if (pending.length === 0) oldestAt = at;
    pending.push(latencyMs);
    if (due(at)) publish();
    const statusCode = request.response?.statusCode;
    const sampled = statusCode !== undefined && statusCode < 300 && statusCode >= 200;
    if (!sampled || options.logSampleRate >= 1 || random() < options.logSampleRate) {
      logger.info("request served", {
        ...requestLogKeys(request),
        statusCode,
        latencyMs: Math.round(latencyMs * 1000) / 1000,
        route: request.event.routeKey,
        ...(sampled && options.logSampleRate < 1 ? { sampleRate: options.logSampleRate } : {}),
      });
    }
  };

  // Plain functions, not async ones: middy awaits whatever they return, and a promise per hook per
  // request is work for nothing. They return nothing (anything else would end the request early).
  return {
    before: (request) => {
      // middy's per-request `internal` object (no WeakMap: its entries cost every scavenge).
      (request.internal as Record<string, unknown>)[STARTED_AT] = performance.now();
      // Only the container's first invocation can be a cold start; Powertools decides whether it
      // was one (not for a provisioned-concurrency sandbox) and emits the ColdStart metric.
      if (!coldStartChecked) {
        coldStartChecked = true;
        metrics.captureColdStartMetric(request.context.functionName);
      }
      // Values left by requests before an idle period go out now, with their own timestamp.
      if (due(now())) publish();
    },
    after: (request) => {
      record(request);
    },
    onError: (request) => {
      record(request);
    },
  };
}
