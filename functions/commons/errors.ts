// Typed domain errors. Domain code throws these; functions/commons/http-errors.ts (the one place
// that knows HTTP) maps them to status codes. Messages of 4xx errors are safe to show callers.

/** The caller asked for something malformed or unknown (bad view, feature, id, batch size). */
export class InvalidRequestError extends Error {
  override name = "InvalidRequestError";
}

/** The requested entity has no row in the online store. */
export class EntityNotFoundError extends Error {
  override name = "EntityNotFoundError";
}

/** The store could not answer in time (unreachable, timed out, overloaded). Retry later. */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
  constructor(
    message: string,
    readonly retryAfterSeconds = 1,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
