// The one place that turns typed domain errors into HTTP responses. Registered as the last middy
// middleware, so its onError runs first and every failure leaves as `{error:{code,message}}`.
// 4xx messages are written for callers; 5xx bodies are fixed texts that never carry internals.
import type { MiddlewareObj } from "@middy/core";
import type { Context } from "aws-lambda";
import { EntityNotFoundError, InvalidRequestError, StoreUnavailableError } from "./errors.js";

export interface JsonResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export interface ErrorLogger {
  warn(message: string, ...extra: unknown[]): void;
  error(message: string, ...extra: unknown[]): void;
}

export function jsonResponse(
  statusCode: number,
  body: unknown,
  headers?: Record<string, string>,
): JsonResponse {
  const common = { "content-type": "application/json", "cache-control": "no-store" };
  return {
    statusCode,
    headers: headers === undefined ? common : { ...common, ...headers },
    body: JSON.stringify(body),
  };
}

/** Maps an error to its response; unknown errors become a bare 500. */
export function errorResponse(error: unknown): JsonResponse {
  const body = (code: string, message: string) => ({ error: { code, message } });
  if (error instanceof InvalidRequestError) return jsonResponse(400, body("BAD_REQUEST", error.message));
  if (error instanceof EntityNotFoundError) return jsonResponse(404, body("NOT_FOUND", error.message));
  if (error instanceof StoreUnavailableError) {
    return jsonResponse(503, body("STORE_UNAVAILABLE", "The feature store is temporarily unavailable"), {
      "retry-after": String(error.retryAfterSeconds),
    });
  }
  return jsonResponse(500, body("INTERNAL", "Internal error"));
}

export interface HttpErrorsOptions<TEvent, TContext extends Context> {
  readonly logger?: ErrorLogger;
  /** Attributes the failure line carries about its request (e.g. request ids). */
  readonly logKeys?: (request: { event: TEvent; context: TContext }) => Record<string, unknown>;
}

/** Middy middleware: sets the error response and logs server-side failures with their cause. */
export function httpErrors<TEvent = unknown, TContext extends Context = Context>(
  options: HttpErrorsOptions<TEvent, TContext> = {},
): MiddlewareObj<TEvent, unknown, Error, TContext> {
  return {
    onError: async (request) => {
      const response = errorResponse(request.error);
      if (response.statusCode >= 500) {
        const log = response.statusCode === 503 ? options.logger?.warn : options.logger?.error;
        log?.call(options.logger, "request failed", {
          ...options.logKeys?.(request),
          statusCode: response.statusCode,
          error: request.error,
        });
      }
      request.response = response;
    },
  };
}
