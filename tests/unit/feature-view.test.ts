// The feature-view rules, in the one place they are validated (functions/commons/feature-view.ts):
// every broken variant of the energy view is refused with a message naming the file and the rule,
// the declared value rules (bounds, max_future_days) are checked and resolved, and sound variants load.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { DEFAULT_MAX_FUTURE_DAYS, FeatureViewError, parseFeatureView } from "#commons/feature-view.js";
import { loadFeatureViewFile } from "#commons/feature-view-files.js";
import { onlineColumns } from "#commons/online-schema.js";

type ViewFile = {
  name: string;
  entity: Record<string, unknown>;
  event_date: Record<string, unknown>;
  source: { columns: Array<Record<string, unknown>> };
  features: Array<Record<string, unknown>>;
  online?: Record<string, unknown>;
  [key: string]: unknown;
};

const ENERGY_FILE = "resources/feature-views/energy.yml";
const energyFile = (): ViewFile => parseYaml(readFileSync(ENERGY_FILE, "utf8")) as ViewFile;
const column = (file: ViewFile, name: string): Record<string, unknown> => {
  const found = file.source.columns.find((c) => c.name === name);
  if (!found) throw new Error(`no column ${name}`);
  return found;
};

function variant(edit: (file: ViewFile) => void): ViewFile {
  const file = energyFile();
  edit(file);
  return file;
}

const refused = (file: unknown) => () => parseFeatureView(file, "views/energy.yml");

describe("declared value rules", () => {
  it("resolves the energy view's bounds and future-date allowance", () => {
    const view = loadFeatureViewFile(ENERGY_FILE);
    expect(view.maxFutureDays).toBe(1);
    expect(view.sourceColumns).toEqual([
      { name: "energy_median", type: "double", min: 0, max: 100 },
      { name: "energy_mean", type: "double", min: 0, max: 100 },
      { name: "energy_max", type: "double", min: 0, max: 100 },
      { name: "energy_count", type: "int", min: 0, max: 1440 },
      { name: "energy_std", type: "double", min: 0, max: 100 },
      { name: "energy_sum", type: "double", min: 0, max: 2000 },
      { name: "energy_min", type: "double", min: 0, max: 100 },
    ]);
  });

  it("defaults max_future_days to 1 and leaves undeclared bounds out", () => {
    const view = parseFeatureView(
      variant((f) => {
        delete f.event_date.max_future_days;
        delete column(f, "energy_sum").min;
        delete column(f, "energy_sum").max;
      }),
      "energy.yml",
    );
    expect(DEFAULT_MAX_FUTURE_DAYS).toBe(1);
    expect(view.maxFutureDays).toBe(1);
    expect(view.sourceColumns.find((c) => c.name === "energy_sum")).toEqual({
      name: "energy_sum",
      type: "double",
    });
  });

  it("accepts a one-sided bound and max_future_days 0", () => {
    const view = parseFeatureView(
      variant((f) => {
        f.event_date.max_future_days = 0;
        delete column(f, "energy_count").max;
      }),
      "energy.yml",
    );
    expect(view.maxFutureDays).toBe(0);
    expect(view.sourceColumns.find((c) => c.name === "energy_count")).toEqual({
      name: "energy_count",
      type: "int",
      min: 0,
    });
  });

  it("refuses min greater than max", () => {
    expect(refused(variant((f) => Object.assign(column(f, "energy_sum"), { min: 10, max: 5 })))).toThrow(
      /^Invalid feature view views\/energy\.yml: source\.columns\.5: min 10 is greater than max 5$/,
    );
  });

  it("refuses bounds on a string column", () => {
    const file = variant((f) => f.source.columns.push({ name: "tariff", type: "string", max: 3 }));
    expect(refused(file)).toThrow(/source\.columns\.7: min\/max apply to numeric columns only, not string/);
  });

  it.each([
    ["a bound that is not a number", (f: ViewFile) => Object.assign(column(f, "energy_sum"), { min: "0" })],
    ["a negative max_future_days", (f: ViewFile) => Object.assign(f.event_date, { max_future_days: -1 })],
    ["a fractional max_future_days", (f: ViewFile) => Object.assign(f.event_date, { max_future_days: 1.5 })],
  ])("refuses %s", (_, edit) => {
    expect(refused(variant(edit))).toThrow(FeatureViewError);
  });
});

describe("view rules", () => {
  it.each<[string, (f: ViewFile) => void, RegExp]>([
    ["an unknown key", (f) => Object.assign(f, { owner: "me" }), /\(root\): Unrecognized key: "owner"/],
    ["the removed version field", (f) => Object.assign(f, { version: 1 }), /Unrecognized key: "version"/],
    ["a missing online section", (f) => delete f.online, /online: /],
    ["an upper-case name", (f) => Object.assign(f, { name: "Energy" }), /name: must be lower-case/],
    [
      "an unanchored id pattern",
      (f) => Object.assign(f.entity, { id_pattern: "[A-Z]+" }),
      /anchored with \^ and \$/,
    ],
    [
      "an invalid id pattern",
      (f) => Object.assign(f.entity, { id_pattern: "^[A-Z+$" }),
      /not a valid regular expression/,
    ],
    [
      "another date format",
      (f) => Object.assign(f.event_date, { format: "dd/MM/yyyy" }),
      /event_date\.format/,
    ],
    ["an unknown column type", (f) => Object.assign(column(f, "energy_sum"), { type: "float" }), /type/],
    [
      "a column declared twice",
      (f) => f.source.columns.push({ name: "energy_sum", type: "double" }),
      /energy_sum is declared twice/,
    ],
    [
      "a column repeating the entity",
      (f) => f.source.columns.push({ name: "household_id", type: "string" }),
      /repeats the entity or date column/,
    ],
    [
      "a feature declared twice",
      (f) => f.features.push({ name: "energy_sum", passthrough: "energy_sum" }),
      /feature energy_sum is declared twice/,
    ],
    [
      "a reserved feature name",
      (f) => f.features.push({ name: "updated_at", passthrough: "energy_sum" }),
      /reserved/,
    ],
    [
      "a passthrough of an unknown column",
      (f) => f.features.push({ name: "x", passthrough: "nope" }),
      /copies unknown source column nope/,
    ],
    [
      "an aggregate of an unknown column",
      (f) => f.features.push({ name: "x", aggregate: "sum", source: "nope", window_days: 3 }),
      /aggregates unknown source column nope/,
    ],
    [
      "an unknown aggregate",
      (f) => f.features.push({ name: "x", aggregate: "median", source: "energy_sum", window_days: 3 }),
      /features\.22/,
    ],
    [
      "a zero window",
      (f) => f.features.push({ name: "x", aggregate: "sum", source: "energy_sum", window_days: 0 }),
      /features\.22/,
    ],
    [
      "a fractional window",
      (f) => f.features.push({ name: "x", aggregate: "sum", source: "energy_sum", window_days: 2.5 }),
      /features\.22/,
    ],
    [
      "an aggregate of a string column",
      (f) => {
        f.source.columns.push({ name: "tariff", type: "string" });
        f.features.push({ name: "x", aggregate: "max", source: "tariff", window_days: 3 });
      },
      /aggregates non-numeric column tariff/,
    ],
    ["a negative ttl", (f) => Object.assign(f.online ?? {}, { ttl_days: -1 }), /online\.ttl_days/],
    ["no features", (f) => Object.assign(f, { features: [] }), /features/],
  ])("refuses %s", (_, edit, message) => {
    expect(refused(variant(edit))).toThrow(message);
    expect(refused(variant(edit))).toThrow(/^Invalid feature view views\/energy\.yml: /);
  });

  it("resolves aggregate output types from the input column", () => {
    const view = parseFeatureView(
      variant((f) =>
        f.features.push(
          { name: "count_sum_1w", aggregate: "sum", source: "energy_count", window_days: 7 },
          { name: "count_max_1w", aggregate: "max", source: "energy_count", window_days: 7 },
        ),
      ),
      "energy.yml",
    );
    const types = Object.fromEntries(view.features.map((f) => [f.name, f.type]));
    expect(types).toMatchObject({
      count_sum_1w: "bigint",
      count_max_1w: "int",
      energy_count_3m: "int",
      energy_mean_3m: "double",
    });
  });

  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a file whose name is not the view's name", () => {
    const dir = mkdtempSync(join(tmpdir(), "sfs-view-"));
    dirs.push(dir);
    writeFileSync(join(dir, "power.yml"), stringifyYaml(energyFile()));
    expect(() => loadFeatureViewFile(join(dir, "power.yml"))).toThrow(
      /declares name "energy"; the file must be energy\.yml/,
    );
  });
});

// Keyspaces sets at most 225 regular (non-key) columns in one INSERT, 166 when the table's TTL is on
// (docs/AWS_CONTRACTS.md K6). The online row's regular columns are feature_date, the features and
// updated_at; entity_id is the partition key. A wider view would load, deploy and fail at every publish.
describe("columns one online write may set on Keyspaces", () => {
  /** The energy view with `regular` regular online columns: `regular - 2` features. */
  const wide = (regular: number, ttlDays: number): ViewFile =>
    variant((f) => {
      f.features = Array.from({ length: regular - 2 }, (_, i) => ({
        name: `energy_sum_${i + 1}d`,
        aggregate: "sum",
        source: "energy_sum",
        window_days: i + 1,
      }));
      Object.assign(f.online ?? {}, { ttl_days: ttlDays });
    });

  it.each([165, 166])("accepts %i regular columns with a TTL", (regular) => {
    const view = parseFeatureView(wide(regular, 30), "views/energy.yml");
    // The count the rule uses is the generated table's: every column but the partition key.
    expect(onlineColumns(view).filter((c) => c.name !== "entity_id")).toHaveLength(regular);
  });

  it("refuses 167 regular columns with a TTL, naming the view, the count and the limit", () => {
    expect(refused(wide(167, 30))).toThrow(FeatureViewError);
    expect(refused(wide(167, 30))).toThrow(
      /^Invalid feature view views\/energy\.yml: view energy's online row has 167 regular columns \(165 features, feature_date, updated_at\); Amazon Keyspaces writes at most 166 in one INSERT when the table's TTL is on/,
    );
  });

  it("allows up to 225 without a TTL and refuses 226", () => {
    expect(onlineColumns(parseFeatureView(wide(225, 0), "views/energy.yml"))).toHaveLength(226);
    expect(refused(wide(226, 0))).toThrow(
      /view energy's online row has 226 regular columns .*at most 225 in one INSERT when the table's TTL is off/,
    );
    expect(refused(wide(167, 0))).not.toThrow();
  });
});
