// Brings a Cassandra keyspace in line with the feature views: creates the keyspace and missing
// tables, adds new feature columns, and refuses drops or retypes (which Keyspaces cannot do).
// The CLI is scripts/apply-online-schema.ts; integration tests call applyOnlineSchema directly.
import type { Client } from "cassandra-driver";
import type { FeatureView } from "#commons/feature-view.js";
import {
  addColumnsCql,
  createKeyspaceCql,
  createTableCql,
  type OnlineColumn,
  onlineColumns,
  planOnlineSchemaChange,
} from "#commons/online-schema.js";

export class IncompatibleOnlineSchemaError extends Error {
  override name = "IncompatibleOnlineSchemaError";
  constructor(readonly problems: readonly string[]) {
    super(
      `Incompatible online schema change:\n  - ${problems.join("\n  - ")}\n` +
        "Keyspaces cannot drop or retype online columns; add a new feature instead.",
    );
  }
}

/** What happened to one view's table. */
export interface TableOutcome {
  readonly table: string;
  readonly action: "created" | "unchanged" | "added-columns";
  readonly addedColumns: readonly string[];
  /** Set when the table's default TTL was changed to the view's (Keyspaces allows that). */
  readonly ttlChangedTo?: number;
}

async function liveDefaultTtl(client: Client, keyspace: string, table: string): Promise<number | undefined> {
  const result = await client.execute(
    "SELECT default_time_to_live FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?",
    [keyspace, table],
    { prepare: true },
  );
  const ttl = result.first()?.get("default_time_to_live");
  return ttl === undefined || ttl === null ? undefined : Number(ttl);
}

/** The live columns of a table, or undefined when it does not exist. */
export async function liveColumns(
  client: Client,
  keyspace: string,
  table: string,
): Promise<OnlineColumn[] | undefined> {
  const result = await client.execute(
    "SELECT column_name, type FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?",
    [keyspace, table],
    { prepare: true },
  );
  if (result.rows.length === 0) return undefined;
  return result.rows.map((row) => ({ name: String(row.column_name), cqlType: String(row.type) }));
}

/**
 * Applies every view's online table to `keyspace`. All views are checked before anything is
 * altered, so one incompatible view leaves the whole keyspace untouched.
 */
export async function applyOnlineSchema(
  client: Client,
  views: Iterable<FeatureView>,
  keyspace: string,
  replicationFactor = 1,
): Promise<TableOutcome[]> {
  await client.execute(createKeyspaceCql(keyspace, replicationFactor));
  const plans = [];
  for (const view of views) {
    const live = await liveColumns(client, keyspace, view.onlineTable);
    plans.push({ view, plan: planOnlineSchemaChange(view.onlineTable, live, onlineColumns(view)) });
  }
  const problems = plans.flatMap(({ plan }) => (plan.kind === "incompatible" ? plan.problems : []));
  if (problems.length > 0) throw new IncompatibleOnlineSchemaError(problems);

  const outcomes: TableOutcome[] = [];
  for (const { view, plan } of plans) {
    const table = view.onlineTable;
    if (plan.kind === "create") {
      await client.execute(createTableCql(view, keyspace));
      outcomes.push({ table, action: "created", addedColumns: [] });
      continue;
    }
    if (plan.kind === "add-columns") {
      for (const statement of addColumnsCql(keyspace, table, plan.columns)) await client.execute(statement);
    }
    const addedColumns = plan.kind === "add-columns" ? plan.columns.map((c) => c.name) : [];
    const action = plan.kind === "add-columns" ? "added-columns" : "unchanged";
    // A changed ttl_days must reach the live table too, or new writes would keep the old expiry.
    if ((await liveDefaultTtl(client, keyspace, table)) !== view.ttlSeconds) {
      await client.execute(`ALTER TABLE ${keyspace}.${table} WITH default_time_to_live = ${view.ttlSeconds}`);
      outcomes.push({ table, action, addedColumns, ttlChangedTo: view.ttlSeconds });
    } else {
      outcomes.push({ table, action, addedColumns });
    }
  }
  return outcomes;
}
