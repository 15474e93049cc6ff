// The local Cassandra refuses what Amazon Keyspaces refuses (scripts/cassandra/cassandra.yaml.template),
// so a suite that passes here does not fail on its first real deployment:
// - client-side write timestamps only between 2 days in the past and 5 minutes in the future
//   (https://docs.aws.amazon.com/keyspaces/latest/devguide/client-side-timestamps-how-to-queries.html);
// - no session without a login (Keyspaces always authenticates), and the project's role is not a
//   superuser, which Cassandra's guardrails would let through;
// - no value over 1 MiB, whose row could not fit Keyspaces' 1 MB row limit
//   (https://docs.aws.amazon.com/keyspaces/latest/devguide/quotas.html).
// Runs against the node of CASSANDRA_PORT in its own keyspace, as the project role.
import { auth, Client, errors, types } from "cassandra-driver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CassandraClock, CLOCK_ENTITY_ID } from "#local/cassandra-clock.js";
import {
  localCassandraAuthProvider,
  localCassandraCredentials,
} from "#scripts/cassandra/local-credentials.js";

const KEYSPACE = "feature_store_it_guardrails";
const CASSANDRA_PORT = Number(process.env.CASSANDRA_PORT ?? 9042);
const MICROS_PER_MINUTE = 60_000_000;
const MICROS_PER_DAY = 24 * 60 * MICROS_PER_MINUTE;

function clientAs(authProvider?: auth.AuthProvider): Client {
  return new Client({
    contactPoints: ["127.0.0.1"],
    localDataCenter: "datacenter1",
    protocolOptions: { port: CASSANDRA_PORT },
    ...(authProvider === undefined ? {} : { authProvider }),
  });
}

/** The connect error's own cause: the driver wraps a per-host failure in NoHostAvailableError. */
async function connectError(client: Client): Promise<Error> {
  try {
    await client.connect();
  } catch (error) {
    const inner = error instanceof errors.NoHostAvailableError ? Object.values(error.innerErrors)[0] : error;
    return inner as Error;
  } finally {
    await client.shutdown();
  }
  throw new Error("the node accepted the connection");
}

let app: Client;

/** Microseconds since the epoch, as USING TIMESTAMP takes them (from this machine's clock, the node's too). */
const nowMicros = (): bigint => BigInt(Date.now()) * 1000n;

async function insertAt(id: string, timestampMicros: bigint): Promise<void> {
  await app.execute(
    `INSERT INTO ${KEYSPACE}.cells (id, value) VALUES (?, ?) USING TIMESTAMP ?`,
    [id, 1, types.Long.fromString(timestampMicros.toString())],
    { prepare: true, consistency: types.consistencies.localQuorum },
  );
}

async function writetimeOf(id: string): Promise<bigint | undefined> {
  const result = await app.execute(
    `SELECT WRITETIME(value) AS wt FROM ${KEYSPACE}.cells WHERE id = ?`,
    [id],
    {
      prepare: true,
    },
  );
  const value = result.first()?.get("wt") as types.Long | undefined;
  return value === undefined ? undefined : BigInt(value.toString());
}

beforeAll(async () => {
  app = clientAs(localCassandraAuthProvider());
  // Waits for a node another suite or scripts/test.sh may still be starting (bounded).
  for (let attempt = 1; ; attempt++) {
    try {
      await app.connect();
      break;
    } catch (error) {
      if (attempt >= 60) throw new Error(`Cassandra not reachable on 127.0.0.1:${CASSANDRA_PORT}: ${error}`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  await app.execute(
    `CREATE KEYSPACE IF NOT EXISTS ${KEYSPACE} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
  );
  await app.execute(
    `CREATE TABLE IF NOT EXISTS ${KEYSPACE}.cells (id text PRIMARY KEY, value int, payload blob)`,
  );
  await app.execute(`TRUNCATE ${KEYSPACE}.cells`);
});

afterAll(async () => {
  await app?.execute(`DROP KEYSPACE IF EXISTS ${KEYSPACE}`);
  await app?.shutdown();
});

describe("logins, as on Keyspaces", () => {
  it("refuses a session without credentials", async () => {
    const error = await connectError(clientAs());
    expect(error).toBeInstanceOf(errors.AuthenticationError);
    expect(error.message).toMatch(/requires authentication/);
  });

  it("refuses a wrong password, and the default superuser's well-known one", async () => {
    const { username } = localCassandraCredentials();
    const wrong = await connectError(clientAs(new auth.PlainTextAuthProvider(username, "not-the-password")));
    expect(wrong).toBeInstanceOf(errors.AuthenticationError);
    expect(wrong.message).toMatch(/Provided username \S+ and\/or password are incorrect/);
    const defaultSuperuser = await connectError(
      clientAs(new auth.PlainTextAuthProvider("cassandra", "cassandra")),
    );
    expect(defaultSuperuser).toBeInstanceOf(errors.AuthenticationError);
  });

  it("connects the project as a login role that is not a superuser (guardrails skip superusers)", async () => {
    const { username } = localCassandraCredentials();
    const roles = await app.execute(`LIST ROLES OF ${username}`);
    const own = roles.rows.find((row) => row.get("role") === username);
    expect(own?.get("login")).toBe(true);
    expect(own?.get("super")).toBe(false);
    // And it cannot read the role table, which only a superuser (or a granted role) can.
    await expect(app.execute("SELECT role, is_superuser FROM system_auth.roles")).rejects.toThrow(
      /has no SELECT permission/,
    );
  });

  it("lets the project role see the node's running compactions (bench:serve waits for them) and no other virtual table", async () => {
    const tasks = await app.execute("SELECT keyspace_name, kind, progress FROM system_views.sstable_tasks");
    expect(tasks.columns?.map((column) => column.name)).toEqual(["keyspace_name", "kind", "progress"]);
    // The grant names the one table: the node's settings (paths, ports) and client list stay closed.
    for (const table of ["settings", "clients"]) {
      await expect(app.execute(`SELECT * FROM system_views.${table}`)).rejects.toThrow(
        /has no SELECT permission/,
      );
    }
  });
});

describe("client-side timestamps: 2 days back to 5 minutes ahead, as on Keyspaces", () => {
  it.each([
    ["3 days ago", -3n * BigInt(MICROS_PER_DAY), /Guardrail minimum_timestamp violated/],
    [
      "2 days and 5 minutes ago",
      -2n * BigInt(MICROS_PER_DAY) - 5n * BigInt(MICROS_PER_MINUTE),
      /minimum_timestamp/,
    ],
    ["10 minutes ahead", 10n * BigInt(MICROS_PER_MINUTE), /Guardrail maximum_timestamp violated/],
  ])("refuses a write stamped %s", async (label, offset, message) => {
    const id = `refused ${label}`;
    await expect(insertAt(id, nowMicros() + offset)).rejects.toThrow(message);
    expect(await writetimeOf(id)).toBeUndefined();
  });

  it("refuses the old code's backfill stamps: a 2011 feature date, and one in 2104", async () => {
    // writetime = epoch_day(feature_date) × 86.4e9 µs + job start seconds (issue 9, before the fix).
    const stamp = (isoDate: string) =>
      BigInt(Date.parse(isoDate) / 1000 / 86_400) * BigInt(MICROS_PER_DAY) + 1_764_000_000n;
    await expect(insertAt("2011", stamp("2011-11-23"))).rejects.toThrow(
      /Guardrail minimum_timestamp violated/,
    );
    await expect(insertAt("2104", stamp("2104-01-01"))).rejects.toThrow(
      /Guardrail maximum_timestamp violated/,
    );
  });

  it.each([
    ["now", 0n],
    ["1 day ago", -1n * BigInt(MICROS_PER_DAY)],
    ["2 minutes ahead", 2n * BigInt(MICROS_PER_MINUTE)],
  ])("accepts a write stamped %s and keeps its timestamp", async (label, offset) => {
    const id = `accepted ${label}`;
    const stamp = nowMicros() + offset;
    await insertAt(id, stamp);
    expect(await writetimeOf(id)).toBe(stamp);
  });
});

describe("value size: Keyspaces rows are at most 1 MB", () => {
  it("refuses a value over 1 MiB and accepts half of it", async () => {
    const write = (id: string, bytes: number) =>
      app.execute(`INSERT INTO ${KEYSPACE}.cells (id, payload) VALUES (?, ?)`, [id, Buffer.alloc(bytes, 7)], {
        prepare: true,
      });
    await expect(write("too large", 1024 * 1024 + 1)).rejects.toThrow(/Guardrail column_value_size violated/);
    await write("half", 512 * 1024);
    const stored = await app.execute(`SELECT payload FROM ${KEYSPACE}.cells WHERE id = ?`, ["half"], {
      prepare: true,
    });
    expect((stored.first()?.get("payload") as Buffer | undefined)?.length).toBe(512 * 1024);
  });
});

describe("the node's clock: its timestamp window follows the wall clock, as Keyspaces' does", () => {
  // Cassandra measures the window from the last timestamp it generated itself, which every client here
  // leaves behind by sending its own (docs/AWS_CONTRACTS.md G7); the local stack ticks it.
  const AHEAD = 4n * BigInt(MICROS_PER_MINUTE) + 55_000_000n; // 4 min 55 s: inside a fresh 5-minute window

  it("refuses a stamp Keyspaces would take after a quiet spell, and takes it again after a tick", async () => {
    await app.execute(
      `CREATE TABLE IF NOT EXISTS ${KEYSPACE}.clock_probe (entity_id text PRIMARY KEY, feature_date date)`,
    );
    const clock = new CassandraClock(app, { keyspace: KEYSPACE, table: "clock_probe" });
    await clock.tick();
    await new Promise((resolve) => setTimeout(resolve, 11_000)); // nothing generates a server timestamp
    await expect(insertAt("quiet", nowMicros() + AHEAD)).rejects.toThrow(/maximum_timestamp/);

    await clock.tick();
    await insertAt("ticked", nowMicros() + AHEAD);
    expect(await writetimeOf("ticked")).toBeGreaterThan(nowMicros());
    // The tick itself wrote nothing.
    const probe = await app.execute(`SELECT entity_id FROM ${KEYSPACE}.clock_probe WHERE entity_id = ?`, [
      CLOCK_ENTITY_ID,
    ]);
    expect(probe.rowLength).toBe(0);
  }, 30_000);
});
