// A tiny stand-in for cqlsh (not shipped with cassandra-all): runs the CQL statements given as
// arguments against the local node, as the project's login role, and prints result rows as JSON lines.
// Usage: scripts/cassandra.sh cql "SELECT * FROM feature_store.energy_features LIMIT 3"
import { Client } from "cassandra-driver";
import { localCassandraAuthProvider } from "./local-credentials.js";

// Driver values such as Long, LocalDate and Uuid serialise as their CQL text, not as their fields.
const driverValueAsText = (_key: string, value: unknown): unknown =>
  typeof value === "object" && value !== null && !Array.isArray(value) && value.constructor !== Object
    ? String(value)
    : value;

async function main(statements: readonly string[]): Promise<void> {
  const client = new Client({
    contactPoints: (process.env.CASSANDRA_CONTACT_POINTS ?? "127.0.0.1").split(","),
    localDataCenter: process.env.CASSANDRA_LOCAL_DC ?? "datacenter1",
    protocolOptions: { port: Number(process.env.CASSANDRA_PORT ?? 9042) },
    authProvider: localCassandraAuthProvider(),
  });
  try {
    await client.connect();
    for (const statement of statements) {
      const result = await client.execute(statement);
      for (const row of result.rows ?? []) {
        const values = Object.fromEntries(row.keys().map((k) => [k, row.get(k)]));
        console.log(JSON.stringify(values, driverValueAsText));
      }
    }
  } finally {
    await client.shutdown();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`cql: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
