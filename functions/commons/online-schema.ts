// Generates the online table of a feature view: CQL for the local Cassandra and the
// AWS::Cassandra resources for Keyspaces. One wide row per entity holds the latest vector.
import { type FeatureView, ONLINE_KEY_COLUMN, type SourceType } from "./feature-view.js";

const CQL_TYPES: Record<SourceType, string> = {
  double: "double",
  int: "int",
  bigint: "bigint",
  string: "text",
};

export interface OnlineColumn {
  readonly name: string;
  readonly cqlType: string;
}

/** Every column of the view's online table, key first, in a stable order. */
export function onlineColumns(view: FeatureView): readonly OnlineColumn[] {
  return [
    { name: ONLINE_KEY_COLUMN, cqlType: "text" },
    { name: "feature_date", cqlType: "date" },
    ...view.features.map((f) => ({ name: f.name, cqlType: CQL_TYPES[f.type] })),
    { name: "updated_at", cqlType: "timestamp" },
  ];
}

/** CQL that creates the keyspace (single node, local use) and the view's table, idempotently. */
export function createTableCql(view: FeatureView, keyspace: string): string {
  const columns = onlineColumns(view).map(
    (c) => `  ${c.name} ${c.cqlType}${c.name === "entity_id" ? " PRIMARY KEY" : ""}`,
  );
  return [
    `CREATE TABLE IF NOT EXISTS ${keyspace}.${view.onlineTable} (`,
    columns.join(",\n"),
    `) WITH default_time_to_live = ${view.ttlSeconds}`,
    `  AND comment = '${view.description.replaceAll("'", "''")}';`,
  ].join("\n");
}

export function createKeyspaceCql(keyspace: string, replicationFactor = 1): string {
  return (
    `CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = ` +
    `{'class': 'SimpleStrategy', 'replication_factor': ${replicationFactor}};`
  );
}

/** CloudFormation logical id of a view's table, e.g. `EnergyFeatureTable`. */
export function tableLogicalId(view: FeatureView): string {
  const pascal = view.name
    .split("_")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
  return `${pascal}FeatureTable`;
}

export const KEYSPACE_LOGICAL_ID = "FeatureStoreKeyspace";

/**
 * Keyspaces resources for every view: on-demand capacity, point-in-time recovery, client-side
 * timestamps (the Spark job writes each row with a timestamp derived from its feature date, so an
 * older date can never overwrite a newer one) and retention on stack deletion.
 */
export function keyspacesResources(
  views: Iterable<FeatureView>,
  keyspace: string,
): Record<string, Record<string, unknown>> {
  const resources: Record<string, Record<string, unknown>> = {
    [KEYSPACE_LOGICAL_ID]: {
      Type: "AWS::Cassandra::Keyspace",
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
      Properties: {
        KeyspaceName: keyspace,
        ReplicationSpecification: { ReplicationStrategy: "SINGLE_REGION" },
      },
    },
  };
  for (const view of views) {
    const [key, ...regular] = onlineColumns(view);
    resources[tableLogicalId(view)] = {
      Type: "AWS::Cassandra::Table",
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
      Properties: {
        KeyspaceName: { Ref: KEYSPACE_LOGICAL_ID },
        TableName: view.onlineTable,
        PartitionKeyColumns: [{ ColumnName: key?.name, ColumnType: key?.cqlType }],
        RegularColumns: regular.map((c) => ({ ColumnName: c.name, ColumnType: c.cqlType })),
        BillingMode: { Mode: "ON_DEMAND" },
        PointInTimeRecoveryEnabled: true,
        ClientSideTimestampsEnabled: true,
        EncryptionSpecification: { EncryptionType: "AWS_OWNED_KMS_KEY" },
        ...(view.ttlSeconds > 0 ? { DefaultTimeToLive: view.ttlSeconds } : {}),
      },
    };
  }
  return resources;
}

/** How a live online table must change to match its view; Keyspaces only lets columns be added. */
export type OnlineSchemaPlan =
  | { readonly kind: "create" }
  | { readonly kind: "unchanged" }
  | { readonly kind: "add-columns"; readonly columns: readonly OnlineColumn[] }
  | { readonly kind: "incompatible"; readonly problems: readonly string[] };

// system_schema reports canonical type names; these are the aliases a generator could emit.
const CQL_TYPE_ALIASES: Record<string, string> = { varchar: "text" };
const canonicalCqlType = (type: string): string => {
  const lower = type.trim().toLowerCase();
  return CQL_TYPE_ALIASES[lower] ?? lower;
};

/**
 * Compares a live table's columns (undefined when the table does not exist) with the columns the
 * view wants. Dropping or retyping a column is refused: Keyspaces cannot do either, so the local
 * store must not let a view drift into a shape that would fail on deploy.
 */
export function planOnlineSchemaChange(
  table: string,
  live: readonly OnlineColumn[] | undefined,
  wanted: readonly OnlineColumn[],
): OnlineSchemaPlan {
  if (live === undefined) return { kind: "create" };
  const wantedTypes = new Map(wanted.map((c) => [c.name, canonicalCqlType(c.cqlType)]));
  const liveTypes = new Map(live.map((c) => [c.name, canonicalCqlType(c.cqlType)]));
  const problems: string[] = [];
  for (const [name, liveType] of liveTypes) {
    const wantedType = wantedTypes.get(name);
    if (wantedType === undefined) {
      problems.push(`${table}.${name} (${liveType}) exists in the store but the view no longer declares it`);
    } else if (wantedType !== liveType) {
      problems.push(`${table}.${name} is ${liveType} in the store but ${wantedType} in the view`);
    }
  }
  if (problems.length > 0) return { kind: "incompatible", problems };
  const added = wanted.filter((c) => !liveTypes.has(c.name));
  return added.length === 0 ? { kind: "unchanged" } : { kind: "add-columns", columns: added };
}

/** CQL that adds columns to an existing online table (one statement per column, in view order). */
export function addColumnsCql(keyspace: string, table: string, columns: readonly OnlineColumn[]): string[] {
  return columns.map((c) => `ALTER TABLE ${keyspace}.${table} ADD ${c.name} ${c.cqlType};`);
}
