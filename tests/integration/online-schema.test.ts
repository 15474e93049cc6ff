// The schema applier against the real local Cassandra (scripts/cassandra.sh start): the live table
// has exactly the generated columns and types, re-applying changes nothing, a new feature becomes a
// new column, and a dropped or retyped column is refused (by the function and by the CLI's exit
// code) without touching the table. It works in its own scratch keyspace.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "cassandra-driver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import type { FeatureView } from "#commons/feature-view.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { onlineColumns } from "#commons/online-schema.js";
import { localCassandraAuthProvider } from "#scripts/cassandra/local-credentials.js";
import {
  applyOnlineSchema,
  IncompatibleOnlineSchemaError,
  liveColumns,
} from "#scripts/cassandra/online-schema-migration.js";

const KEYSPACE = "feature_store_it_schema";
const CASSANDRA_PORT = Number(process.env.CASSANDRA_PORT ?? 9042);
const VIEW_FILE = "resources/feature-views/energy.yml";

type ViewFile = {
  source: { columns: Array<{ name: string; type: string }> };
  features: Array<Record<string, unknown>>;
};

const scratchDirs: string[] = [];

/** Writes a variant of the energy view into a fresh directory and returns that directory. */
function energyVariantDir(edit: (file: ViewFile) => void): string {
  const file = parseYaml(readFileSync(VIEW_FILE, "utf8")) as ViewFile;
  edit(file);
  const dir = mkdtempSync(join(tmpdir(), "sfs-views-"));
  scratchDirs.push(dir);
  writeFileSync(join(dir, "energy.yml"), stringifyYaml(file));
  return dir;
}

const loadEnergy = (dir: string): FeatureView => loadFeatureViews(dir).get("energy") as FeatureView;
const energy = loadEnergy("resources/feature-views");
const withNewFeature = loadEnergy(
  energyVariantDir((file) => {
    file.features.push({ name: "energy_min_3m", aggregate: "max", source: "energy_min", window_days: 90 });
  }),
);

let client: Client;

/** Live columns as name → type, with the kind of key each column is. */
async function liveSchema(table: string): Promise<Map<string, { type: string; kind: string }>> {
  const result = await client.execute(
    "SELECT column_name, type, kind FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?",
    [KEYSPACE, table],
    { prepare: true },
  );
  return new Map(
    result.rows.map((r) => [String(r.column_name), { type: String(r.type), kind: String(r.kind) }]),
  );
}

beforeAll(async () => {
  client = new Client({
    contactPoints: ["127.0.0.1"],
    localDataCenter: "datacenter1",
    protocolOptions: { port: CASSANDRA_PORT },
    authProvider: localCassandraAuthProvider(),
  });
  await client.connect();
  await client.execute(`DROP KEYSPACE IF EXISTS ${KEYSPACE}`);
});

afterAll(async () => {
  await client?.execute(`DROP KEYSPACE IF EXISTS ${KEYSPACE}`);
  await client?.shutdown();
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

describe("applyOnlineSchema on a real Cassandra", () => {
  it("creates the keyspace and a table with exactly the generated columns and types", async () => {
    const outcomes = await applyOnlineSchema(client, [energy], KEYSPACE);
    expect(outcomes).toEqual([{ table: "energy_features", action: "created", addedColumns: [] }]);

    const live = await liveSchema("energy_features");
    const expected = onlineColumns(energy);
    expect([...live.keys()].sort()).toEqual(expected.map((c) => c.name).sort());
    for (const column of expected) expect(live.get(column.name)?.type).toBe(column.cqlType);
    expect(live.get("entity_id")?.kind).toBe("partition_key");
    expect([...live.values()].filter((c) => c.kind !== "regular")).toHaveLength(1);
  });

  it("changes nothing when applied again", async () => {
    const before = await liveSchema("energy_features");
    const outcomes = await applyOnlineSchema(client, [energy], KEYSPACE);
    expect(outcomes).toEqual([{ table: "energy_features", action: "unchanged", addedColumns: [] }]);
    expect(await liveSchema("energy_features")).toEqual(before);
  });

  it("adds a new feature as a new column and keeps existing rows", async () => {
    await client.execute(
      `INSERT INTO ${KEYSPACE}.energy_features (entity_id, energy_mean) VALUES ('h1', 1.5)`,
    );
    const outcomes = await applyOnlineSchema(client, [withNewFeature], KEYSPACE);
    expect(outcomes).toEqual([
      { table: "energy_features", action: "added-columns", addedColumns: ["energy_min_3m"] },
    ]);
    expect((await liveSchema("energy_features")).get("energy_min_3m")?.type).toBe("double");
    const row = (
      await client.execute(
        `SELECT energy_mean, energy_min_3m FROM ${KEYSPACE}.energy_features WHERE entity_id = 'h1'`,
      )
    ).first();
    expect(row?.get("energy_mean")).toBe(1.5);
    expect(row?.get("energy_min_3m")).toBeNull();
  });

  it("applies a changed ttl_days as the table's default TTL", async () => {
    const shorterTtl = loadEnergy(
      energyVariantDir((file) => {
        file.features.push({
          name: "energy_min_3m",
          aggregate: "max",
          source: "energy_min",
          window_days: 90,
        });
        (file as unknown as { online: { ttl_days: number } }).online.ttl_days = 30;
      }),
    );
    const outcomes = await applyOnlineSchema(client, [shorterTtl], KEYSPACE);
    expect(outcomes).toEqual([
      { table: "energy_features", action: "unchanged", addedColumns: [], ttlChangedTo: 30 * 86_400 },
    ]);
    const table = await client.execute(
      "SELECT default_time_to_live FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?",
      [KEYSPACE, "energy_features"],
      { prepare: true },
    );
    expect(table.first()?.get("default_time_to_live")).toBe(30 * 86_400);
  });

  it("refuses a view that drops an online column, and leaves the table as it was", async () => {
    const before = await liveColumns(client, KEYSPACE, "energy_features");
    // `energy` no longer declares energy_min_3m, which the previous test added.
    const attempt = applyOnlineSchema(client, [energy], KEYSPACE);
    await expect(attempt).rejects.toBeInstanceOf(IncompatibleOnlineSchemaError);
    await expect(attempt).rejects.toThrow(
      /energy_features\.energy_min_3m \(double\) exists in the store but the view no longer declares it/,
    );
    await expect(attempt).rejects.toThrow(
      /Keyspaces cannot drop or retype online columns; add a new feature instead/,
    );
    expect(await liveColumns(client, KEYSPACE, "energy_features")).toEqual(before);
  });

  it("makes the CLI exit non-zero on a retyped column, naming table, column and both types", () => {
    // energy_count becomes a double source column, so its passthrough feature is retyped int → double.
    const dir = energyVariantDir((file) => {
      file.features.push({ name: "energy_min_3m", aggregate: "max", source: "energy_min", window_days: 90 });
      const count = file.source.columns.find((c) => c.name === "energy_count");
      if (count) count.type = "double";
    });
    const cli = spawnSync("npx", ["--no-install", "tsx", "scripts/apply-online-schema.ts"], {
      env: {
        ...process.env,
        KEYSPACE,
        FEATURE_VIEWS_DIR: dir,
        CASSANDRA_PORT: String(CASSANDRA_PORT),
      },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(cli.status).toBe(1);
    expect(cli.stderr).toContain("energy_features.energy_count is int in the store but double in the view");
    expect(cli.stderr).toContain("Keyspaces cannot drop or retype online columns; add a new feature instead");
  });

  it("leaves the retyped column's live type untouched after the refusal", async () => {
    expect((await liveSchema("energy_features")).get("energy_count")?.type).toBe("int");
  });
});
