// The local HTTP API in front of getFeatures: a thin node:http server that turns each request into
// the API Gateway HTTP API (payload v2) event the deployed route delivers and calls the same handler
// module in-process. Only the routes of serverless.yml exist. With an IamVerifier (iam-auth.ts;
// `LOCAL_HTTP_AUTH=iam npm run local`) every route requires a SigV4 signature, as on AWS; without
// one (the default) requests need no signature, so plain curl works.
// No request can stop the server (and with it the local stack): every failure becomes a response.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { APIGatewayProxyEventV2, Context } from "aws-lambda";
import { InvalidRequestError } from "#commons/errors.js";
import { errorResponse } from "#commons/http-errors.js";
import type { IamVerifier } from "./iam-auth.js";
import { lambdaContext } from "./lambda-context.js";

export interface HandlerResponse {
  readonly statusCode: number;
  readonly headers?: Record<string, string | number | boolean>;
  readonly body?: string;
}

export type HttpHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<HandlerResponse>;

const ROUTE = /^\/features\/([^/]+)(?:\/([^/]+))?\/?$/;
const VIEWS_ROUTE = "/views";

// API Gateway's own answers, which never reach the function. When no route matches (another path,
// or any method but GET): "If no routes match a request, API Gateway returns {"message":"Not Found"}
// to the client" (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html,
// "Routing API requests"). When the function itself fails: a 500 "Internal Server Error".
const NO_ROUTE: HandlerResponse = {
  statusCode: 404,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ message: "Not Found" }),
};
const INTEGRATION_FAILED: HandlerResponse = {
  statusCode: 500,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ message: "Internal Server Error" }),
};

/** A path parameter as API Gateway passes it, decoded; a malformed escape is the caller's error. */
function pathParameter(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new InvalidRequestError("Malformed percent-encoding in the request path");
  }
}

/**
 * The v2 event for a request, or undefined when no route matches. Throws InvalidRequestError for a
 * malformed percent-encoding in a path parameter. Pure, for tests.
 */
export function apiGatewayEvent(
  method: string,
  url: string,
  headers: Record<string, string>,
  sourceIp: string,
  requestId: string,
  now: Date,
): APIGatewayProxyEventV2 | undefined {
  // The request target is a path ("//x" included), never a reference to another host.
  const parsed = new URL(url.startsWith("/") ? `http://localhost${url}` : url, "http://localhost");
  if (method !== "GET") return undefined;
  const query: Record<string, string> = {};
  // API Gateway joins repeated parameters with commas.
  for (const [key, value] of parsed.searchParams)
    query[key] = key in query ? `${query[key]},${value}` : value;
  if (parsed.pathname === VIEWS_ROUTE) {
    return event("GET /views", parsed, query, undefined, { method, headers, sourceIp, requestId, now });
  }
  const match = ROUTE.exec(parsed.pathname);
  if (!match) return undefined;
  const view = pathParameter(match[1] as string);
  const entityId = match[2] === undefined ? undefined : pathParameter(match[2]);
  const routeKey = entityId === undefined ? "GET /features/{view}" : "GET /features/{view}/{entityId}";
  const pathParameters: Record<string, string> = entityId === undefined ? { view } : { view, entityId };
  return event(routeKey, parsed, query, pathParameters, { method, headers, sourceIp, requestId, now });
}

function event(
  routeKey: string,
  parsed: URL,
  query: Record<string, string>,
  pathParameters: Record<string, string> | undefined,
  request: {
    method: string;
    headers: Record<string, string>;
    sourceIp: string;
    requestId: string;
    now: Date;
  },
): APIGatewayProxyEventV2 {
  const { method, headers, sourceIp, requestId, now } = request;
  return {
    version: "2.0",
    routeKey,
    rawPath: parsed.pathname,
    rawQueryString: parsed.search.replace(/^\?/, ""),
    headers,
    isBase64Encoded: false,
    ...(pathParameters === undefined ? {} : { pathParameters }),
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: "123456789012",
      apiId: "local",
      domainName: headers.host ?? "127.0.0.1",
      domainPrefix: "local",
      http: {
        method,
        path: parsed.pathname,
        protocol: "HTTP/1.1",
        sourceIp,
        userAgent: headers["user-agent"] ?? "",
      },
      requestId,
      routeKey,
      stage: "$default",
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
  };
}

function plainHeaders(request: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  return headers;
}

function writeResponse(response: ServerResponse, result: HandlerResponse): void {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(result.headers ?? {})) headers[k] = String(v);
  response.writeHead(result.statusCode, headers);
  response.end(result.body ?? "");
}

export interface LocalHttpApiOptions {
  /** Where failures are reported (the terminal of `npm run local`); stderr by default. */
  readonly log?: (message: string) => void;
  /** IAM authorization of every route (SigV4); none by default. */
  readonly auth?: Pick<IamVerifier, "verify">;
}

/** API Gateway's answer to a request that fails IAM authorization (see iam-auth.ts). */
function forbidden(message: string): HandlerResponse {
  return {
    statusCode: 403,
    headers: { "content-type": "application/json", "x-amzn-errortype": "ForbiddenException" },
    body: JSON.stringify({ message }),
  };
}

export class LocalHttpApi {
  #server: Server | undefined;
  readonly #log: (message: string) => void;
  readonly #auth: Pick<IamVerifier, "verify"> | undefined;

  constructor(
    private readonly handler: HttpHandler,
    options: LocalHttpApiOptions = {},
  ) {
    this.#log = options.log ?? ((message) => process.stderr.write(`${message}\n`));
    this.#auth = options.auth;
  }

  /** The response API Gateway and the function would give; throws only if the adapter fails. */
  async #answer(request: IncomingMessage, requestId: string): Promise<HandlerResponse> {
    let event: APIGatewayProxyEventV2 | undefined;
    let malformed: InvalidRequestError | undefined;
    const headers = plainHeaders(request);
    try {
      event = apiGatewayEvent(
        request.method ?? "GET",
        request.url ?? "/",
        headers,
        request.socket.remoteAddress ?? "127.0.0.1",
        requestId,
        new Date(),
      );
    } catch (error) {
      if (!(error instanceof InvalidRequestError)) throw error;
      malformed = error;
    }
    // As API Gateway: the route is matched first, then authorized, then the request is passed on.
    if (event === undefined && malformed === undefined) return NO_ROUTE;
    if (this.#auth !== undefined) {
      const denied = await this.#auth.verify({
        method: request.method ?? "GET",
        target: request.url ?? "/",
        headers,
      });
      if (denied !== undefined) return forbidden(denied);
    }
    if (malformed !== undefined || event === undefined) return errorResponse(malformed);
    try {
      return await this.handler(event, lambdaContext("feature-store-local-getFeatures", requestId));
    } catch (error) {
      this.#log(`HTTP API: the getFeatures handler failed: ${(error as Error).stack ?? String(error)}`);
      return INTEGRATION_FAILED;
    }
  }

  async listen(port: number): Promise<string> {
    const server = createServer((request, response) => {
      // randomUUID draws from a buffered entropy pool: ~0.2 µs against ~3–8 µs for randomBytes(8).
      const requestId = randomUUID();
      response.on("error", (error) => this.#log(`HTTP API: writing a response failed: ${error.message}`));
      this.#answer(request, requestId)
        .then((result) => writeResponse(response, result))
        .catch((error: unknown) => {
          // A fault of the adapter itself: logged with its cause, answered in the API's own shape
          // (a fixed 500 body), and the server goes on serving.
          this.#log(
            `HTTP API: ${request.method} ${request.url} failed in the local adapter: ` +
              `${(error as Error).stack ?? String(error)}`,
          );
          if (response.headersSent) response.destroy();
          else writeResponse(response, errorResponse(error));
        })
        .catch(() => response.destroy());
    });
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolvePromise, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolvePromise());
    });
    this.#server = server;
    const address = server.address() as AddressInfo;
    return `http://127.0.0.1:${address.port}`;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}
