// A typed, SigV4-signing client of the getFeatures HTTP API (docs/API.md, docs/openapi.json).
// Requests are signed with the AWS SDK v3 signer and the standard credential chain, sent over
// keep-alive connections with a per-attempt timeout, and retried (bounded) on 503 after the
// server's Retry-After. Batches above the server's 100-id limit are split and reassembled in order.
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { defaultProvider } from "@aws-sdk/credential-provider-node";
import { Hash } from "@smithy/core/serde";
import { SignatureV4 } from "@smithy/signature-v4";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@smithy/types";
import type { GeneratedViews } from "./views.generated.js";

/** The server's batch limit (MAX_BATCH_IDS); larger batches are split by the client. */
export const MAX_IDS_PER_REQUEST = 100;

/** View name → its features' types, as an interface (views.generated.ts has this store's). */
export type ViewMap = object;

export interface FeatureVector<V extends string, F> {
  readonly view: V;
  readonly entityId: string;
  /** The day the vector describes, "YYYY-MM-DD". */
  readonly featureDate: string | null;
  readonly features: F;
}

export type BatchItem<F> =
  | {
      readonly entityId: string;
      readonly found: true;
      readonly featureDate: string | null;
      readonly features: F;
    }
  | { readonly entityId: string; readonly found: false };

export type ViewVector<F> =
  | { readonly found: true; readonly featureDate: string | null; readonly features: F }
  | { readonly found: false };

export interface ViewCatalog {
  readonly views: ReadonlyArray<{
    readonly name: string;
    readonly description: string;
    readonly entity: { readonly column: string; readonly idPattern: string };
    readonly features: ReadonlyArray<{
      readonly name: string;
      readonly type: "number" | "integer" | "string";
      readonly viewType: string;
      readonly nullable: true;
    }>;
  }>;
}

/** An error answer: the API's `{error:{code,message}}` or API Gateway's `{message}` (403, 404, 500). */
export class FeatureStoreError extends Error {
  override name = "FeatureStoreError";
  constructor(
    readonly status: number,
    /** BAD_REQUEST, NOT_FOUND, STORE_UNAVAILABLE, INTERNAL; FORBIDDEN/GATEWAY for API Gateway's own answers; TIMEOUT. */
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export interface FeatureStoreClientOptions {
  /** The HTTP API's base URL, e.g. https://abc123.execute-api.eu-west-1.amazonaws.com. */
  readonly endpoint: string;
  /** The API's region (signing scope); default AWS_REGION or AWS_DEFAULT_REGION. */
  readonly region?: string;
  /** Credentials or a provider; default the SDK's standard chain (env, SSO, profile, IMDS, ...). */
  readonly credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** Per-attempt timeout (connect to last byte). Default 3000 ms. */
  readonly timeoutMs?: number;
  /** Retries after a 503; default 3. */
  readonly maxRetries?: number;
  /** A Retry-After above this is not waited for: the 503 is thrown. Default 10 s. */
  readonly maxRetryAfterMs?: number;
  /** Concurrent requests of one split batch. Default 4. */
  readonly batchConcurrency?: number;
  /** Keep-alive sockets per host. Default 16. */
  readonly maxSockets?: number;
}

interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

type Names<Views extends ViewMap, V extends keyof Views> = keyof Views[V] & string;

export class FeatureStoreClient<Views extends ViewMap = GeneratedViews> {
  readonly #url: URL;
  readonly #signer: SignatureV4;
  readonly #agent: HttpAgent;
  readonly #timeoutMs: number;
  readonly #maxRetries: number;
  readonly #maxRetryAfterMs: number;
  readonly #batchConcurrency: number;

  constructor(options: FeatureStoreClientOptions) {
    this.#url = new URL(options.endpoint);
    if (this.#url.protocol !== "https:" && this.#url.protocol !== "http:") {
      throw new Error(`endpoint must be an http(s) URL: ${options.endpoint}`);
    }
    const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
    if (region === undefined) throw new Error("region is required (or set AWS_REGION)");
    this.#signer = new SignatureV4({
      credentials: options.credentials ?? defaultProvider(),
      region,
      service: "execute-api",
      sha256: Hash.bind(null, "sha256"),
      // No x-amz-content-sha256 header: a GET has no body, and API Gateway does not need it.
      applyChecksum: false,
    });
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 16 };
    this.#agent =
      this.#url.protocol === "https:" ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.#timeoutMs = options.timeoutMs ?? 3000;
    this.#maxRetries = options.maxRetries ?? 3;
    this.#maxRetryAfterMs = options.maxRetryAfterMs ?? 10_000;
    this.#batchConcurrency = Math.max(1, options.batchConcurrency ?? 4);
  }

  /** The latest vector of one entity (a FeatureStoreError with status 404 when it has none). */
  async getFeatures<V extends keyof Views & string, K extends Names<Views, V> = Names<Views, V>>(
    view: V,
    entityId: string,
    options: { readonly features?: readonly K[] } = {},
  ): Promise<FeatureVector<V, Pick<Views[V], K>>> {
    return this.#get(`/features/${encodeURIComponent(view)}/${encodeURIComponent(entityId)}`, {
      ...(options.features === undefined ? {} : { features: options.features.join(",") }),
    });
  }

  /**
   * The latest vectors of any number of entities of one view, in the order of `entityIds`
   * (duplicates kept; a missing id is `found: false`). Split into requests of at most 100 ids.
   */
  async getBatch<V extends keyof Views & string, K extends Names<Views, V> = Names<Views, V>>(
    view: V,
    entityIds: readonly string[],
    options: { readonly features?: readonly K[] } = {},
  ): Promise<Array<BatchItem<Pick<Views[V], K>>>> {
    if (entityIds.length === 0) return [];
    const chunks: string[][] = [];
    for (let i = 0; i < entityIds.length; i += MAX_IDS_PER_REQUEST) {
      chunks.push(entityIds.slice(i, i + MAX_IDS_PER_REQUEST));
    }
    const results: Array<Array<BatchItem<Pick<Views[V], K>>>> = new Array(chunks.length);
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const index = next++;
        const ids = chunks[index] as string[];
        const answer = await this.#get<{ results: Array<BatchItem<Pick<Views[V], K>>> }>(
          `/features/${encodeURIComponent(view)}`,
          {
            ids: ids.join(","),
            ...(options.features === undefined ? {} : { features: options.features.join(",") }),
          },
        );
        results[index] = answer.results;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#batchConcurrency, chunks.length) }, worker));
    return results.flat();
  }

  /**
   * Several views of one entity, read in parallel by the server. Names in `features` may be
   * qualified (`weather.rain_mm`). A 404 only when no view has the entity.
   */
  async getViews<V extends keyof Views & string>(
    views: readonly V[],
    entityId: string,
    options: { readonly features?: readonly string[] } = {},
  ): Promise<{
    readonly entityId: string;
    readonly views: { readonly [P in V]: ViewVector<Partial<Views[P]>> };
  }> {
    const path = `/features/${views.map(encodeURIComponent).join(",")}/${encodeURIComponent(entityId)}`;
    const query: Record<string, string> = {};
    if (options.features !== undefined) query.features = options.features.join(",");
    if (views.length === 1) {
      // The server answers one view in the single-view shape; normalise to the multi-view one.
      const vector = await this.#get<FeatureVector<V, Partial<Views[V]>>>(path, query);
      const single = { found: true, featureDate: vector.featureDate, features: vector.features } as const;
      return { entityId, views: { [vector.view]: single } as { [P in V]: ViewVector<Partial<Views[P]>> } };
    }
    return this.#get(path, query);
  }

  /** The catalog: every view, its entity and its features with their JSON types. */
  listViews(): Promise<ViewCatalog> {
    return this.#get("/views", {});
  }

  /** Closes the keep-alive sockets. */
  close(): void {
    this.#agent.destroy();
  }

  async #get<T>(path: string, query: Record<string, string>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const response = await this.#send(path, query);
      if (response.status === 200) return JSON.parse(response.body) as T;
      const error = toError(response);
      const waitMs = (error.retryAfterSeconds ?? 1) * 1000;
      if (response.status !== 503 || attempt >= this.#maxRetries || waitMs > this.#maxRetryAfterMs)
        throw error;
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }

  /** One signed attempt. The signer sees exactly the path and query that go on the wire. */
  async #send(path: string, query: Record<string, string>): Promise<RawResponse> {
    const basePath = this.#url.pathname.replace(/\/$/, "");
    const fullPath = `${basePath}${path}`;
    const search = Object.entries(query)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join("&");
    const signed = await this.#signer.sign({
      method: "GET",
      protocol: this.#url.protocol,
      hostname: this.#url.hostname,
      ...(this.#url.port === "" ? {} : { port: Number(this.#url.port) }),
      path: fullPath,
      query,
      headers: { host: this.#url.host, accept: "application/json" },
    });
    const send = this.#url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise<RawResponse>((resolve, reject) => {
      const req = send(
        {
          protocol: this.#url.protocol,
          hostname: this.#url.hostname,
          port: this.#url.port,
          method: "GET",
          path: search === "" ? fullPath : `${fullPath}?${search}`,
          headers: signed.headers,
          agent: this.#agent,
          timeout: this.#timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString("utf8"),
            }),
          );
          res.on("error", reject);
        },
      );
      // `timeout` covers idle sockets; the deadline covers the whole attempt.
      const deadline = setTimeout(() => req.destroy(timeoutError(this.#timeoutMs)), this.#timeoutMs);
      req.on("timeout", () => req.destroy(timeoutError(this.#timeoutMs)));
      req.on("close", () => clearTimeout(deadline));
      req.on("error", reject);
      req.end();
    });
  }
}

function timeoutError(ms: number): FeatureStoreError {
  return new FeatureStoreError(0, "TIMEOUT", `no answer within ${ms} ms`);
}

function toError(response: RawResponse): FeatureStoreError {
  const retryAfter = Number(response.headers["retry-after"]);
  const retryAfterSeconds = Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined;
  let body: { error?: { code?: string; message?: string }; message?: string } = {};
  try {
    body = JSON.parse(response.body);
  } catch {
    // not JSON: keep the status
  }
  if (body.error?.code !== undefined) {
    return new FeatureStoreError(
      response.status,
      body.error.code,
      body.error.message ?? "",
      retryAfterSeconds,
    );
  }
  const code = response.status === 403 ? "FORBIDDEN" : "GATEWAY";
  return new FeatureStoreError(
    response.status,
    code,
    body.message ?? `HTTP ${response.status}`,
    retryAfterSeconds,
  );
}
