// The online-table generators and the compatibility check: the CQL and the Keyspaces resources
// carry exactly the view's features with their types, and a view may add online columns but never
// drop or retype one (Keyspaces cannot, so the local store must refuse too).
import { describe, expect, it } from "vitest";
import type { FeatureView } from "#commons/feature-view.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import {
  addColumnsCql,
  createKeyspaceCql,
  createTableCql,
  keyspacesResources,
  type OnlineColumn,
  onlineColumns,
  planOnlineSchemaChange,
} from "#commons/online-schema.js";

const energy = loadFeatureViews("resources/feature-views").get("energy") as FeatureView;

/** Column name → type as written in a CREATE TABLE statement. */
function columnsOfCreateTable(cql: string): Map<string, string> {
  const body = cql.slice(cql.indexOf("(") + 1, cql.lastIndexOf(")"));
  return new Map(
    body
      .split(",\n")
      .map((line) => line.trim().split(/\s+/))
      .map(([name, type]) => [name as string, type as string]),
  );
}

describe("onlineColumns", () => {
  it("holds the key, the feature date, every feature with its type, then updated_at", () => {
    const columns = onlineColumns(energy);
    expect(columns.map((c) => c.name)).toEqual([
      "entity_id",
      "feature_date",
      ...energy.features.map((f) => f.name),
      "updated_at",
    ]);
    const types = new Map(columns.map((c) => [c.name, c.cqlType]));
    expect(types.get("energy_mean")).toBe("double");
    expect(types.get("energy_count")).toBe("int");
    expect(types.get("energy_count_3m")).toBe("int");
    expect(types.get("energy_sum_12m")).toBe("double");
    expect(types.get("feature_date")).toBe("date");
    expect(types.get("updated_at")).toBe("timestamp");
  });
});

describe("createTableCql", () => {
  it("declares exactly the online columns, entity_id as the only primary key", () => {
    const cql = createTableCql(energy, "ks");
    expect(cql).toMatch(/^CREATE TABLE IF NOT EXISTS ks\.energy_features \(/);
    const declared = columnsOfCreateTable(cql);
    expect([...declared.keys()]).toEqual(onlineColumns(energy).map((c) => c.name));
    for (const column of onlineColumns(energy)) expect(declared.get(column.name)).toBe(column.cqlType);
    expect(cql.match(/PRIMARY KEY/g)).toHaveLength(1);
    expect(cql).toMatch(/entity_id text PRIMARY KEY/);
  });

  it("escapes quotes in the description so the comment cannot break the statement", () => {
    const cql = createTableCql({ ...energy, description: "it's daily" }, "ks");
    expect(cql).toContain("comment = 'it''s daily'");
  });

  it("creates the keyspace with the given replication factor", () => {
    expect(createKeyspaceCql("ks", 3)).toBe(
      "CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3};",
    );
  });
});

describe("keyspacesResources", () => {
  const resources = keyspacesResources([energy], "feature_store");

  it("emits the keyspace and one retained table per view, keyed by stable logical ids", () => {
    expect(Object.keys(resources).sort()).toEqual(["EnergyFeatureTable", "FeatureStoreKeyspace"]);
    expect(resources.FeatureStoreKeyspace).toMatchObject({
      Type: "AWS::Cassandra::Keyspace",
      DeletionPolicy: "Retain",
      Properties: { KeyspaceName: "feature_store" },
    });
    expect(resources.EnergyFeatureTable).toMatchObject({
      Type: "AWS::Cassandra::Table",
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
    });
  });

  it("gives the table the same columns and types as the CQL generator", () => {
    const properties = resources.EnergyFeatureTable?.Properties as {
      KeyspaceName: unknown;
      TableName: string;
      PartitionKeyColumns: Array<{ ColumnName: string; ColumnType: string }>;
      RegularColumns: Array<{ ColumnName: string; ColumnType: string }>;
      DefaultTimeToLive?: number;
    };
    expect(properties.KeyspaceName).toEqual({ Ref: "FeatureStoreKeyspace" });
    expect(properties.TableName).toBe("energy_features");
    expect(properties.PartitionKeyColumns).toEqual([{ ColumnName: "entity_id", ColumnType: "text" }]);
    const all = [...properties.PartitionKeyColumns, ...properties.RegularColumns].map((c) => ({
      name: c.ColumnName,
      cqlType: c.ColumnType,
    }));
    expect(all).toEqual(onlineColumns(energy));
    // ttl_days 0 means rows never expire: no DefaultTimeToLive at all.
    expect(properties.DefaultTimeToLive).toBeUndefined();
  });

  it("sets DefaultTimeToLive from the view's ttl", () => {
    const withTtl = keyspacesResources([{ ...energy, ttlSeconds: 86_400 }], "ks");
    expect(withTtl.EnergyFeatureTable?.Properties).toMatchObject({ DefaultTimeToLive: 86_400 });
  });
});

describe("planOnlineSchemaChange", () => {
  const wanted: OnlineColumn[] = [
    { name: "entity_id", cqlType: "text" },
    { name: "a", cqlType: "double" },
    { name: "b", cqlType: "int" },
  ];

  it("creates a table that does not exist", () => {
    expect(planOnlineSchemaChange("t", undefined, wanted)).toEqual({ kind: "create" });
  });

  it("leaves a matching table alone, whatever the column order and type spelling", () => {
    const live = [
      { name: "b", cqlType: "int" },
      { name: "entity_id", cqlType: "varchar" },
      { name: "a", cqlType: "DOUBLE" },
    ];
    expect(planOnlineSchemaChange("t", live, wanted)).toEqual({ kind: "unchanged" });
  });

  it("adds the columns the view declares and the table lacks, in view order", () => {
    const live = [{ name: "entity_id", cqlType: "text" }];
    expect(planOnlineSchemaChange("t", live, wanted)).toEqual({
      kind: "add-columns",
      columns: [
        { name: "a", cqlType: "double" },
        { name: "b", cqlType: "int" },
      ],
    });
  });

  it("refuses a column the view no longer declares, naming table, column and type", () => {
    const live = [...wanted, { name: "old", cqlType: "bigint" }];
    const plan = planOnlineSchemaChange("t", live, wanted);
    expect(plan).toEqual({
      kind: "incompatible",
      problems: ["t.old (bigint) exists in the store but the view no longer declares it"],
    });
  });

  it("refuses a retyped column even when other columns are new, naming both types", () => {
    const live = [
      { name: "entity_id", cqlType: "text" },
      { name: "a", cqlType: "int" },
    ];
    const plan = planOnlineSchemaChange("t", live, wanted);
    expect(plan).toEqual({
      kind: "incompatible",
      problems: ["t.a is int in the store but double in the view"],
    });
  });

  it("reports every problem at once", () => {
    const live = [
      { name: "entity_id", cqlType: "int" },
      { name: "a", cqlType: "double" },
      { name: "gone", cqlType: "text" },
    ];
    const plan = planOnlineSchemaChange("t", live, wanted);
    expect(plan.kind).toBe("incompatible");
    expect(plan.kind === "incompatible" && plan.problems).toHaveLength(2);
  });
});

describe("addColumnsCql", () => {
  it("adds one column per statement", () => {
    expect(
      addColumnsCql("ks", "t", [
        { name: "a", cqlType: "double" },
        { name: "b", cqlType: "int" },
      ]),
    ).toEqual(["ALTER TABLE ks.t ADD a double;", "ALTER TABLE ks.t ADD b int;"]);
  });
});
