// The compiled view is the whole contract between the TypeScript side and the Spark job
// (spark/feature_store/feature_view.py reads it and validates nothing): these tests protect that it
// carries every resolved fact the job uses, exactly as the functions and the schema generators see it.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  COMPILED_VIEW_VERSION,
  compiledViewJson,
  compileFeatureView,
  KEYSPACE_PLACEHOLDER,
  writeCompiledViews,
} from "#commons/compiled-view.js";
import { parseFeatureView } from "#commons/feature-view.js";
import { IDENTIFIER_PATTERN, RUN_ID_PATTERN } from "#commons/identifiers.js";
import { createKeyspaceCql, createTableCql, onlineColumns } from "#commons/online-schema.js";
import { fixtureView, fixtureViews } from "../fixtures/feature-views.js";

describe("compileFeatureView", () => {
  const energy = fixtureView("energy");
  const compiled = compileFeatureView(energy);

  it("carries the view's identity, keys, date rule and raw header", () => {
    expect(compiled.compiled_view_version).toBe(COMPILED_VIEW_VERSION);
    expect(compiled.name).toBe("energy");
    expect(compiled.entity).toEqual({ column: "household_id", id_pattern: "^[A-Za-z0-9_.:-]{1,64}$" });
    expect(compiled.event_date).toEqual({ column: "day", format: "yyyy-MM-dd", max_future_days: 1 });
    expect(compiled.raw_header).toEqual([...energy.rawHeader]);
    expect(compiled.raw_header.slice(0, 3)).toEqual(["household_id", "day", "energy_median"]);
  });

  it("types every source column and gives its bounds, null where none is declared", () => {
    expect(compiled.source_columns[3]).toEqual({ name: "energy_count", type: "int", min: 0, max: 1440 });
    const weather = compileFeatureView(fixtureView("weather"));
    expect(weather.source_columns.find((c) => c.name === "summary")).toEqual({
      name: "summary",
      type: "string",
      min: null,
      max: null,
    });
  });

  it("resolves every feature's output type, kind, source, aggregate and window", () => {
    expect(compiled.features).toHaveLength(22);
    expect(compiled.features[0]).toEqual({
      name: "energy_median",
      type: "double",
      kind: "passthrough",
      source: "energy_median",
      aggregate: null,
      window_days: null,
    });
    expect(compiled.features.find((f) => f.name === "energy_count_6m")).toEqual({
      name: "energy_count_6m",
      type: "int",
      kind: "aggregate",
      source: "energy_sum",
      aggregate: "count",
      window_days: 180,
    });
    const weather = compileFeatureView(fixtureView("weather"));
    expect(weather.features.find((f) => f.name === "sunshine_s_7d")?.type).toBe("bigint");
  });

  it("carries the online table as online-schema.ts generates it, in any keyspace", () => {
    expect(compiled.online.table).toBe("energy_features");
    expect(compiled.online.ttl_seconds).toBe(0);
    expect(compiled.online.columns).toEqual(
      onlineColumns(energy).map((c) => ({ name: c.name, cql_type: c.cqlType })),
    );
    const inKeyspace = (cql: string) => cql.replace(compiled.online.keyspace_placeholder, "feature_store");
    expect(inKeyspace(compiled.online.create_table_cql)).toBe(createTableCql(energy, "feature_store"));
    expect(inKeyspace(compiled.online.create_keyspace_cql)).toBe(createKeyspaceCql("feature_store"));
    expect(compiled.online.keyspace_placeholder).toBe(KEYSPACE_PLACEHOLDER);
  });

  it("keeps the placeholder's first occurrence in the statement head even if the description has it", () => {
    const file = {
      name: "notes",
      description: "mentions {keyspace} and it's quoted",
      entity: { column: "id", type: "string", id_pattern: "^[a-z]+$" },
      event_date: { column: "day", format: "yyyy-MM-dd" },
      source: { columns: [{ name: "x", type: "double" }] },
      features: [{ name: "x", passthrough: "x" }],
      online: { table: "notes_features", ttl_days: 1 },
    };
    const cql = compileFeatureView(parseFeatureView(file, "notes.yml")).online.create_table_cql;
    expect(cql.indexOf(KEYSPACE_PLACEHOLDER)).toBe("CREATE TABLE IF NOT EXISTS ".length);
    expect(cql).toContain("comment = 'mentions {keyspace} and it''s quoted'");
  });

  it("carries the shared name rules the job checks its arguments with", () => {
    expect(compiled.patterns).toEqual({
      identifier: IDENTIFIER_PATTERN.source,
      run_id: RUN_ID_PATTERN.source,
    });
    // Python's re reads them the same way: plain character classes and counted repetition only.
    expect(compiled.patterns.run_id).toMatch(/^\^[[\]A-Za-z0-9_.\-{},]+\$$/);
  });

  it("is plain JSON that round-trips, with the same bytes every time", () => {
    const text = compiledViewJson(energy);
    expect(JSON.parse(text)).toEqual(compiled);
    expect(compiledViewJson(fixtureView("energy"))).toBe(text);
  });
});

describe("writeCompiledViews", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("writes <dir>/<view>.json for every view, creating the directory", () => {
    const dir = join(mkdtempSync(join(tmpdir(), "sfs-compiled-")), "nested");
    dirs.push(dir);
    const written = writeCompiledViews(fixtureViews().values(), dir);
    expect(readdirSync(dir).sort()).toEqual(["energy.json", "weather.json"]);
    expect(written.sort()).toEqual([join(dir, "energy.json"), join(dir, "weather.json")]);
    expect(readFileSync(join(dir, "weather.json"), "utf8")).toBe(compiledViewJson(fixtureView("weather")));
  });
});
