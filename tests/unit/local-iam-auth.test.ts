// Protects the local HTTP API's IAM authorization (local/iam-auth.ts) over real HTTP: a
// request signed by the AWS SDK's SigV4 signer with the local credentials is served; unsigned,
// wrongly signed, tampered, foreign-region and stale requests get API Gateway's 403 in its own
// shape; routing still comes first (no route is 404 whatever the signature).
import { request } from "node:http";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { Hash } from "@smithy/core/serde";
import { SignatureV4 } from "@smithy/signature-v4";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FeatureReader } from "#functions/get-features/feature-reader.js";
import { createGetFeaturesHandler } from "#functions/get-features/http-handler.js";
import { LocalHttpApi } from "#local/http-adapter.js";
import { IAM_MESSAGES, IamVerifier, LOCAL_IAM_CREDENTIALS, localRequestSigner } from "#local/iam-auth.js";
import { httpGet } from "#local/read-burst.js";
import { FakeOnlineStore } from "../fixtures/fake-online-store.js";
import { energyRow, fixtureViews, weatherRow } from "../fixtures/feature-views.js";

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly json: Record<string, unknown>;
}

interface SignOptions {
  readonly secretAccessKey?: string;
  readonly accessKeyId?: string;
  readonly region?: string;
  readonly service?: string;
  readonly signingDate?: Date;
  /** The SDK signs x-amz-content-sha256 by default; botocore's SigV4Auth does not. */
  readonly applyChecksum?: boolean;
}

let api: LocalHttpApi;
let baseUrl: string;

/** Signs GET `path?query` as an SDK v3 caller would (host header, decoded query map). */
async function signedHeaders(path: string, query: Record<string, string>, options: SignOptions = {}) {
  const { host } = new URL(baseUrl);
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: options.accessKeyId ?? LOCAL_IAM_CREDENTIALS.accessKeyId,
      secretAccessKey: options.secretAccessKey ?? LOCAL_IAM_CREDENTIALS.secretAccessKey,
    },
    region: options.region ?? "eu-west-1",
    service: options.service ?? "execute-api",
    sha256: Hash.bind(null, "sha256"),
    applyChecksum: options.applyChecksum ?? true,
  });
  const signed = await signer.sign(
    { method: "GET", protocol: "http:", hostname: host, path, query, headers: { host } },
    options.signingDate ? { signingDate: options.signingDate } : {},
  );
  return signed.headers as Record<string, string>;
}

function send(target: string, headers: Record<string, string> = {}): Promise<Reply> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: hostname, port, method: "GET", path: target, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolvePromise({
          status: res.statusCode ?? 0,
          headers: res.headers,
          json: JSON.parse(Buffer.concat(chunks).toString("utf8")),
        }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

function target(path: string, query: Record<string, string>): string {
  const search = new URLSearchParams(query).toString().replace(/\+/g, "%20");
  return search === "" ? path : `${path}?${search}`;
}

beforeEach(async () => {
  for (const stream of [process.stdout, process.stderr]) vi.spyOn(stream, "write").mockReturnValue(true);
  const handler = createGetFeaturesHandler({
    reader: new FeatureReader(
      fixtureViews(),
      new FakeOnlineStore().put("energy", energyRow("MAC000002", 2)).put("weather", weatherRow("MAC000002")),
    ),
    logger: new Logger({ serviceName: "feature-store-test", logLevel: "ERROR" }),
    metrics: new Metrics({ namespace: "FeatureStoreTest", serviceName: "feature-store-test" }),
  });
  api = new LocalHttpApi(handler, { log: () => undefined, auth: new IamVerifier() });
  baseUrl = await api.listen(0);
});

afterEach(async () => {
  await api.close();
  vi.restoreAllMocks();
});

describe("local HTTP API with IAM authorization", () => {
  it("serves requests signed with the local credentials on every route", async () => {
    const cases: Array<[string, Record<string, string>]> = [
      ["/features/energy/MAC000002", { features: "energy_sum,energy_mean_3m" }],
      ["/features/energy,weather/MAC000002", { features: "energy_sum,weather.summary" }],
      ["/features/energy", { ids: "MAC000002,MAC404" }],
      ["/views", {}],
    ];
    for (const applyChecksum of [true, false]) {
      for (const [path, query] of cases) {
        const reply = await send(target(path, query), await signedHeaders(path, query, { applyChecksum }));
        expect(reply.status, `${path} applyChecksum=${applyChecksum}`).toBe(200);
      }
    }
  });

  it("verifies paths with percent-escapes (signed double-encoded, as for every service but S3)", async () => {
    const path = "/features/energy/MAC%3A000002";
    const reply = await send(path, await signedHeaders(path, {}));
    expect(reply.status).toBe(404); // authorized; the id just has no row
    expect(reply.json).toMatchObject({ error: { code: "NOT_FOUND" } });
  });

  it("answers an unsigned request 403 Missing Authentication Token, in API Gateway's shape", async () => {
    const reply = await send("/features/energy/MAC000002");
    expect(reply.status).toBe(403);
    expect(reply.headers["content-type"]).toBe("application/json");
    expect(reply.json).toEqual({ message: IAM_MESSAGES.missing });
  });

  it("answers 403 for a wrong secret, an unknown key, another region or service", async () => {
    const path = "/features/energy/MAC000002";
    const wrong: Array<[SignOptions, string]> = [
      [{ secretAccessKey: "not-the-secret" }, IAM_MESSAGES.mismatch],
      [{ accessKeyId: "AKIAUNKNOWN" }, IAM_MESSAGES.unknownKey],
      [{ region: "us-east-1" }, IAM_MESSAGES.mismatch],
      [{ service: "s3" }, IAM_MESSAGES.mismatch],
    ];
    for (const [options, message] of wrong) {
      const reply = await send(path, await signedHeaders(path, {}, options));
      expect(reply.status, JSON.stringify(options)).toBe(403);
      expect(reply.json).toEqual({ message });
    }
  });

  it("answers 403 when what was signed is not what was sent (path, query, signed header)", async () => {
    const signed = await signedHeaders("/features/energy/MAC000002", { features: "energy_sum" });
    expect((await send("/features/energy/MAC000002?features=energy_sum", signed)).status).toBe(200);
    for (const tampered of [
      "/features/energy/MAC000003?features=energy_sum",
      "/features/energy/MAC000002?features=energy_max",
      "/features/energy/MAC000002",
    ]) {
      const reply = await send(tampered, signed);
      expect(reply.status, tampered).toBe(403);
      expect(reply.json).toEqual({ message: IAM_MESSAGES.mismatch });
    }
  });

  it("refuses a signature older than the 5-minute skew", async () => {
    const path = "/features/energy/MAC000002";
    const stale = await signedHeaders(path, {}, { signingDate: new Date(Date.now() - 6 * 60_000) });
    const reply = await send(path, stale);
    expect(reply.status).toBe(403);
    expect(String(reply.json.message)).toMatch(/^Signature expired: \d{8}T\d{6}Z is now earlier than/);
    const recent = await signedHeaders(path, {}, { signingDate: new Date(Date.now() - 4 * 60_000) });
    expect((await send(path, recent)).status).toBe(200);
  });

  it("npm run local's own reads sign with localRequestSigner and are served", async () => {
    const url = `${baseUrl}/features/energy?ids=MAC000002,MAC404&features=energy_sum`;
    expect((await httpGet(url, undefined, 5000, localRequestSigner())).status).toBe(200);
    expect((await httpGet(url)).status).toBe(403);
  });

  it("matches the route before authorizing: no route is 404 even unsigned", async () => {
    const reply = await send("/nothing/here");
    expect(reply.status).toBe(404);
    expect(reply.json).toEqual({ message: "Not Found" });
  });
});
