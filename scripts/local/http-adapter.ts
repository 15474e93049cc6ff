// The local HTTP API in front of getFeatures: a thin node:http server that turns each request into
// the API Gateway HTTP API (payload v2) event the deployed route delivers and calls the same handler
// module in-process. Only the two routes of serverless.yml exist; there is no IAM auth locally.
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { APIGatewayProxyEventV2, Context } from "aws-lambda";
import { lambdaContext } from "./lambda-context.js";

export interface HandlerResponse {
  readonly statusCode: number;
  readonly headers?: Record<string, string | number | boolean>;
  readonly body?: string;
}

export type HttpHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<HandlerResponse>;

const ROUTE = /^\/features\/([^/]+)(?:\/([^/]+))?\/?$/;

/** The v2 event for a request, or undefined when no route matches. Pure, for tests. */
export function apiGatewayEvent(
  method: string,
  url: string,
  headers: Record<string, string>,
  sourceIp: string,
  requestId: string,
  now: Date,
): APIGatewayProxyEventV2 | undefined {
  const parsed = new URL(url, "http://localhost");
  const match = ROUTE.exec(parsed.pathname);
  if (method !== "GET" || !match) return undefined;
  const view = decodeURIComponent(match[1] as string);
  const entityId = match[2] === undefined ? undefined : decodeURIComponent(match[2]);
  const routeKey = entityId === undefined ? "GET /features/{view}" : "GET /features/{view}/{entityId}";
  const query: Record<string, string> = {};
  // API Gateway joins repeated parameters with commas.
  for (const [key, value] of parsed.searchParams)
    query[key] = key in query ? `${query[key]},${value}` : value;
  return {
    version: "2.0",
    routeKey,
    rawPath: parsed.pathname,
    rawQueryString: parsed.search.replace(/^\?/, ""),
    headers,
    isBase64Encoded: false,
    pathParameters: entityId === undefined ? { view } : { view, entityId },
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

export class LocalHttpApi {
  #server: Server | undefined;

  constructor(private readonly handler: HttpHandler) {}

  async listen(port: number): Promise<string> {
    const server = createServer((request, response) => {
      const requestId = randomBytes(8).toString("hex");
      const event = apiGatewayEvent(
        request.method ?? "GET",
        request.url ?? "/",
        plainHeaders(request),
        request.socket.remoteAddress ?? "127.0.0.1",
        requestId,
        new Date(),
      );
      if (event === undefined) {
        response.writeHead(404, { "content-type": "application/json" });
        response.end(JSON.stringify({ message: "Not Found" }));
        return;
      }
      this.handler(event, lambdaContext("feature-store-local-getFeatures", requestId)).then(
        (result) => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(result.headers ?? {})) headers[k] = String(v);
          response.writeHead(result.statusCode, headers);
          response.end(result.body ?? "");
        },
        () => {
          // API Gateway's answer when the integration itself fails.
          response.writeHead(500, { "content-type": "application/json" });
          response.end(JSON.stringify({ message: "Internal Server Error" }));
        },
      );
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
