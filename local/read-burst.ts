// A burst of HTTP reads against the local API (closed loop: `concurrency` clients over keep-alive
// connections, random ids), summarised as p50/p99/max and throughput. A sanity check of the local
// serving path, not a benchmark: bench/serve-bench.ts measures the handler properly.
import { Agent, request } from "node:http";
import type { RequestSigner } from "./iam-auth.js";

export interface BurstResult {
  readonly requests: number;
  readonly concurrency: number;
  readonly ok: number;
  readonly statusCounts: Readonly<Record<string, number>>;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly seconds: number;
  readonly perSecond: number;
}

/** One GET; signed with `sign` when the local API runs with IAM auth on. */
export async function httpGet(
  url: string,
  agent?: Agent,
  timeoutMs = 10_000,
  sign?: RequestSigner,
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const headers = sign === undefined ? {} : await sign(url);
  return new Promise((resolvePromise, reject) => {
    const req = request(url, { agent, timeout: timeoutMs, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolvePromise({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString("utf8"),
          headers: res.headers,
        }),
      );
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

export async function readBurst(
  baseUrl: string,
  view: string,
  ids: readonly string[],
  requests: number,
  concurrency: number,
  sign?: RequestSigner,
): Promise<BurstResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  const statusCounts: Record<string, number> = {};
  let next = 0;
  let seed = 42;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        next += 1;
        const id = ids[Math.floor(random() * ids.length)] as string;
        const begin = performance.now();
        let status = "error";
        try {
          status = String(
            (await httpGet(`${baseUrl}/features/${view}/${encodeURIComponent(id)}`, agent, 10_000, sign))
              .status,
          );
        } catch {
          // counted as "error"
        }
        latencies.push(performance.now() - begin);
        statusCounts[status] = (statusCounts[status] ?? 0) + 1;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests,
    concurrency,
    ok: statusCounts["200"] ?? 0,
    statusCounts,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? Number.NaN,
    seconds,
    perSecond: requests / seconds,
  };
}
