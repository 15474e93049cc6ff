// The driver's reconnection after repeated outages, against the real local Cassandra through a TCP
// fault proxy, with the production client options (cassandraClientOptions). In Lambda an unhandled
// promise rejection ends the execution environment (docs/AWS_CONTRACTS.md, "Lambda runtime"): a
// warm getFeatures container must ride out a store blip with nothing escaping the driver's
// background reconnection, and serve again once the store is back.
import { Client } from "cassandra-driver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cassandraClientOptions, onlineStoreConfigSchema } from "#commons/cassandra-online-store.js";
import { localCassandraAuthEnv } from "#scripts/cassandra/local-credentials.js";
import { TcpFaultProxy } from "../fixtures/tcp-fault-proxy.js";

const CASSANDRA_PORT = Number(process.env.CASSANDRA_PORT ?? 9042);

/**
 * Outages of different lengths, each ended while the driver's reconnection schedule (250 ms
 * doubling to 5 s, jittered) is at a different point. From the second outage on, driver 4.10 had
 * two refreshes of its control connection racing (each reconnection added a second set of health
 * listeners); one of them then read the connection the other had reset (NODEJS-681).
 */
const OUTAGES_MS = [300, 700, 1200, 400, 2000, 250, 900, 500];

let proxy: TcpFaultProxy;
const escaped: unknown[] = [];
const onRejection = (reason: unknown) => escaped.push(reason);

beforeAll(async () => {
  proxy = await TcpFaultProxy.start(CASSANDRA_PORT);
  process.on("unhandledRejection", onRejection);
});

afterAll(async () => {
  process.off("unhandledRejection", onRejection);
  await proxy?.stop();
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Reads `system.local` until it answers, bounded by `timeoutMs`. */
async function untilServing(client: Client, timeoutMs: number): Promise<void> {
  const started = performance.now();
  for (;;) {
    try {
      await client.execute("SELECT release_version FROM system.local");
      return;
    } catch (error) {
      if (performance.now() - started > timeoutMs) throw error;
      await sleep(100);
    }
  }
}

describe("the driver's control connection", () => {
  it("reconnects after repeated outages with no unhandled rejection, and serves after each", async () => {
    const config = onlineStoreConfigSchema.parse({
      ONLINE_STORE: "cassandra",
      CASSANDRA_CONTACT_POINTS: "127.0.0.1",
      CASSANDRA_PORT: String(proxy.port),
      ...localCassandraAuthEnv(),
      READ_TIMEOUT_MS: "500",
      CONNECT_TIMEOUT_MS: "500",
    });
    const client = new Client(cassandraClientOptions(config));
    try {
      await client.connect();
      // A slow network (as to a remote endpoint) keeps each refresh in flight long enough for
      // another to start meanwhile.
      proxy.delay(100);
      for (const downMs of OUTAGES_MS) {
        await proxy.refuse();
        await sleep(downMs);
        await proxy.heal();
        await untilServing(client, 15_000);
        // Let the background refreshes that the heal set off finish (or fail) before the next one.
        await sleep(400);
      }
      expect(escaped).toEqual([]);
    } finally {
      await client.shutdown();
    }
    // A shutdown does not leave a refresh behind that fails later.
    await sleep(1000);
    expect(escaped).toEqual([]);
  });
});
