// Creates or updates the online tables of every feature view in the local Cassandra (run by
// `scripts/cassandra.sh start|schema`). Exits 1, naming table, column and types, when a view would
// drop or retype an online column. Usage: npx tsx scripts/apply-online-schema.ts
import { Client } from "cassandra-driver";
import { z } from "zod";
import { readConfig } from "#commons/config.js";
import { DEFAULT_FEATURE_VIEWS_DIR } from "#commons/feature-view.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { identifierSchema } from "#commons/identifiers.js";
import { localCassandraAuthProvider } from "./cassandra/local-credentials.js";
import { applyOnlineSchema, IncompatibleOnlineSchemaError } from "./cassandra/online-schema-migration.js";

const config = readConfig(
  z.object({
    CASSANDRA_CONTACT_POINTS: z.string().default("127.0.0.1"),
    CASSANDRA_PORT: z.coerce.number().int().min(1).max(65_535).default(9042),
    CASSANDRA_LOCAL_DC: z.string().min(1).default("datacenter1"),
    KEYSPACE: z._default(identifierSchema, "feature_store"),
    FEATURE_VIEWS_DIR: z.string().min(1).default(DEFAULT_FEATURE_VIEWS_DIR),
    CASSANDRA_REPLICATION_FACTOR: z.coerce.number().int().min(1).default(1),
  }),
);

async function main(): Promise<number> {
  const views = loadFeatureViews(config.FEATURE_VIEWS_DIR);
  const client = new Client({
    contactPoints: config.CASSANDRA_CONTACT_POINTS.split(",").map((p) => p.trim()),
    localDataCenter: config.CASSANDRA_LOCAL_DC,
    protocolOptions: { port: config.CASSANDRA_PORT },
    // As the project's login role (not a superuser): the same role the tests and the job use.
    authProvider: localCassandraAuthProvider(),
  });
  try {
    await client.connect();
    const outcomes = await applyOnlineSchema(
      client,
      views.values(),
      config.KEYSPACE,
      config.CASSANDRA_REPLICATION_FACTOR,
    );
    for (const o of outcomes) {
      const added = o.action === "added-columns" ? ` (${o.addedColumns.join(", ")})` : "";
      const ttl = o.ttlChangedTo === undefined ? "" : `, default TTL set to ${o.ttlChangedTo} s`;
      console.error(`[online-schema] ${config.KEYSPACE}.${o.table}: ${o.action}${added}${ttl}`);
    }
    return 0;
  } catch (error) {
    if (error instanceof IncompatibleOnlineSchemaError) {
      console.error(`[online-schema] ${error.message}`);
      return 1;
    }
    throw error;
  } finally {
    await client.shutdown();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`[online-schema] failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 2;
  },
);
