// The TypeScript client's transport rules against a scripted HTTP server (no AWS, no store): a 503
// is retried after its Retry-After and at most maxRetries times; a Retry-After above the cap is not
// waited for; other errors are never retried; an attempt that gets no answer fails with TIMEOUT
// within timeoutMs; every request carries a SigV4 Authorization for execute-api; connections are
// kept alive across calls.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FeatureStoreClient } from "#clients/typescript/src/index.js";

type Script = (request: IncomingMessage, response: ServerResponse) => void;

let server: Server;
let baseUrl: string;
let script: Script;
const seen: IncomingMessage[] = [];
const sockets = new Set<unknown>();

const unavailable =
  (retryAfter: string): Script =>
  (_req, res) => {
    res.writeHead(503, { "content-type": "application/json", "retry-after": retryAfter });
    res.end(JSON.stringify({ error: { code: "STORE_UNAVAILABLE", message: "down" } }));
  };
const ok: Script = (_req, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ view: "energy", entityId: "MAC000002", featureDate: null, features: {} }));
};

function client(options: Partial<ConstructorParameters<typeof FeatureStoreClient>[0]> = {}) {
  return new FeatureStoreClient({
    endpoint: baseUrl,
    region: "eu-west-1",
    credentials: { accessKeyId: "AKIATEST", secretAccessKey: "secret" },
    ...options,
  });
}

beforeEach(async () => {
  seen.length = 0;
  sockets.clear();
  server = createServer((req, res) => {
    seen.push(req);
    sockets.add(req.socket);
    script(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe("TypeScript client transport", () => {
  it("retries a 503 after Retry-After, then returns the answer", async () => {
    let calls = 0;
    script = (req, res) => (++calls <= 2 ? unavailable("1")(req, res) : ok(req, res));
    const c = client({ maxRetries: 3 });
    const started = performance.now();
    await expect(c.getFeatures("energy", "MAC000002")).resolves.toMatchObject({ entityId: "MAC000002" });
    expect(calls).toBe(3);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1900);
    c.close();
  });

  it("gives up after maxRetries, and does not wait for a Retry-After above the cap", async () => {
    script = unavailable("0");
    const bounded = client({ maxRetries: 2 });
    await expect(bounded.getFeatures("energy", "MAC000002")).rejects.toMatchObject({ status: 503 });
    expect(seen).toHaveLength(3);
    bounded.close();

    seen.length = 0;
    script = unavailable("120");
    const capped = client({ maxRetries: 5, maxRetryAfterMs: 10_000 });
    const started = performance.now();
    await expect(capped.getFeatures("energy", "MAC000002")).rejects.toMatchObject({
      status: 503,
      retryAfterSeconds: 120,
    });
    expect(seen).toHaveLength(1);
    expect(performance.now() - started).toBeLessThan(1000);
    capped.close();
  });

  it("never retries other errors", async () => {
    script = (_req, res) => {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "INTERNAL", message: "Internal error" } }));
    };
    const c = client();
    await expect(c.getFeatures("energy", "MAC000002")).rejects.toMatchObject({
      status: 500,
      code: "INTERNAL",
    });
    expect(seen).toHaveLength(1);
    c.close();
  });

  it("sends nothing for an empty batch", async () => {
    script = ok;
    const c = client();
    expect(await c.getBatch("energy", [])).toEqual([]);
    expect(seen).toHaveLength(0);
    c.close();
  });

  it("fails an attempt that gets no answer with TIMEOUT, within timeoutMs", async () => {
    script = () => undefined; // never answers
    const c = client({ timeoutMs: 300 });
    const started = performance.now();
    await expect(c.getFeatures("energy", "MAC000002")).rejects.toMatchObject({ code: "TIMEOUT" });
    expect(performance.now() - started).toBeLessThan(1500);
    c.close();
  });

  it("signs every request for execute-api and reuses one keep-alive connection", async () => {
    script = ok;
    const c = client();
    for (let i = 0; i < 3; i++) await c.getFeatures("energy", "MAC000002", { features: ["energy_sum"] });
    for (const req of seen) {
      expect(req.headers.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIATEST\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=accept;host;x-amz-date, Signature=[0-9a-f]{64}$/,
      );
      expect(req.url).toBe("/features/energy/MAC000002?features=energy_sum");
    }
    expect(sockets.size).toBe(1);
    c.close();
  });
});
