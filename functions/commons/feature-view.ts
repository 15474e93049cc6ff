// Feature views: the one source of truth for what a view's features are, their types, the value rules of
// its raw rows, and the online table that holds them. Validated here, and only here, from the parsed
// contents of resources/feature-views/<view>.yml (read by feature-view-files.ts, or embedded in
// getFeatures' bundle at build time): the functions and the schema generators use the result directly,
// the Spark job gets it compiled to JSON (compiled-view.ts). No file or YAML reading here, so a bundle
// that embeds the views carries no YAML parser; zod/mini, so it carries ~30 kB of zod instead of 443
// (docs/PERFORMANCE.md, "Serving at the floor: cold init under 200 ms").
import * as z from "zod/mini";
import { identifierSchema } from "./identifiers.js";

/** Column types a raw file may declare. */
export const SOURCE_TYPES = ["double", "int", "bigint", "string"] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

/** Aggregate functions a feature may apply over a window of days. */
export const AGGREGATES = ["sum", "count", "max", "mean", "stddev"] as const;
export type Aggregate = (typeof AGGREGATES)[number];

/** Online-table columns that every view has besides its features. */
export const RESERVED_COLUMNS = ["entity_id", "feature_date", "updated_at"] as const;

/** The online table's partition key; every other online column is a regular column. */
export const ONLINE_KEY_COLUMN = "entity_id";

/**
 * Regular columns Amazon Keyspaces lets one INSERT or UPDATE set: 225, or 166 when the table's TTL
 * is on (quotas, "Max number of columns in INSERT and UPDATE statements", "225/166":
 * https://docs.aws.amazon.com/keyspaces/latest/devguide/quotas.html; docs/AWS_CONTRACTS.md K6).
 * The job publishes a whole online row in one INSERT, so a view's row may not be wider.
 */
export const KEYSPACES_MAX_REGULAR_COLUMNS = { ttlOff: 225, ttlOn: 166 } as const;

const identifier = identifierSchema;

/** Days after the job's today (UTC) a row may be dated when a view does not say. */
export const DEFAULT_MAX_FUTURE_DAYS = 1;

// `min`/`max` bound the values of a numeric column (inclusive); rows outside are rejected
// `out_of_range` by the job. zod 4's number() refuses NaN and ±Infinity.
const sourceColumnSchema = z
  .strictObject({
    name: identifier,
    type: z.enum(SOURCE_TYPES),
    min: z.optional(z.number()),
    max: z.optional(z.number()),
  })
  .check(
    z.superRefine((column, ctx) => {
      const bounded = column.min !== undefined || column.max !== undefined;
      if (bounded && column.type === "string") {
        ctx.addIssue({
          code: "custom",
          message: `min/max apply to numeric columns only, not ${column.type}`,
        });
      }
      if (column.min !== undefined && column.max !== undefined && column.min > column.max) {
        ctx.addIssue({ code: "custom", message: `min ${column.min} is greater than max ${column.max}` });
      }
    }),
  );

const passthroughFeatureSchema = z.strictObject({ name: identifier, passthrough: identifier });
const aggregateFeatureSchema = z.strictObject({
  name: identifier,
  aggregate: z.enum(AGGREGATES),
  source: identifier,
  window_days: z.number().check(z.int(), z.minimum(1), z.maximum(3660)),
});

const featureViewFileSchema = z.strictObject({
  name: identifier,
  description: z.string().check(z.minLength(1)),
  entity: z.strictObject({
    column: identifier,
    type: z.literal("string"),
    id_pattern: z.string().check(z.minLength(1)),
  }),
  event_date: z.strictObject({
    column: identifier,
    format: z.literal("yyyy-MM-dd"),
    max_future_days: z._default(z.number().check(z.int(), z.minimum(0)), DEFAULT_MAX_FUTURE_DAYS),
  }),
  source: z.strictObject({ columns: z.array(sourceColumnSchema).check(z.minLength(1)) }),
  features: z.array(z.union([passthroughFeatureSchema, aggregateFeatureSchema])).check(z.minLength(1)),
  online: z.strictObject({
    table: identifier,
    ttl_days: z.number().check(z.int(), z.minimum(0), z.maximum(3650)),
  }),
});

export type FeatureViewFile = z.infer<typeof featureViewFileSchema>;

/** A raw column with its declared bounds (inclusive; absent = unbounded). */
export interface SourceColumn {
  readonly name: string;
  readonly type: SourceType;
  readonly min?: number;
  readonly max?: number;
}

/** A feature with its resolved output type. */
export interface FeatureDefinition {
  readonly name: string;
  readonly type: SourceType;
  readonly kind: "passthrough" | "aggregate";
  readonly source: string;
  readonly aggregate?: Aggregate;
  readonly windowDays?: number;
}

export interface FeatureView {
  readonly name: string;
  readonly description: string;
  readonly entityColumn: string;
  readonly entityIdPattern: RegExp;
  readonly eventDateColumn: string;
  /** Rows dated after the job's today (UTC) plus this many days are rejected `future_date`. */
  readonly maxFutureDays: number;
  /** Raw CSV header, in order: entity, date, then the source columns. */
  readonly rawHeader: readonly string[];
  readonly sourceColumns: readonly SourceColumn[];
  readonly features: readonly FeatureDefinition[];
  readonly featureNames: ReadonlySet<string>;
  readonly onlineTable: string;
  readonly ttlSeconds: number;
}

export class FeatureViewError extends Error {
  override name = "FeatureViewError";
}

/** The type an aggregate produces from its input type. */
export function aggregateOutputType(aggregate: Aggregate, input: SourceType): SourceType {
  switch (aggregate) {
    case "count":
      return "int";
    case "mean":
    case "stddev":
      return "double";
    case "sum":
      return input === "double" ? "double" : "bigint";
    case "max":
      return input;
  }
}

/** Validates a parsed view file and resolves feature types; `origin` names the file in errors. */
export function parseFeatureView(raw: unknown, origin: string): FeatureView {
  const result = featureViewFileSchema.safeParse(raw);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new FeatureViewError(`Invalid feature view ${origin}: ${issues.join("; ")}`);
  }
  const file = result.data;
  const fail = (message: string): never => {
    throw new FeatureViewError(`Invalid feature view ${origin}: ${message}`);
  };

  let idPattern: RegExp;
  try {
    idPattern = new RegExp(file.entity.id_pattern);
  } catch {
    return fail(`entity.id_pattern is not a valid regular expression`);
  }
  if (!file.entity.id_pattern.startsWith("^") || !file.entity.id_pattern.endsWith("$")) {
    fail("entity.id_pattern must be anchored with ^ and $");
  }

  const sourceTypes = new Map<string, SourceType>();
  for (const column of file.source.columns) {
    if (sourceTypes.has(column.name)) fail(`source column ${column.name} is declared twice`);
    if (column.name === file.entity.column || column.name === file.event_date.column) {
      fail(`source column ${column.name} repeats the entity or date column`);
    }
    sourceTypes.set(column.name, column.type);
  }

  const features: FeatureDefinition[] = [];
  const seen = new Set<string>();
  for (const feature of file.features) {
    if (seen.has(feature.name)) fail(`feature ${feature.name} is declared twice`);
    if ((RESERVED_COLUMNS as readonly string[]).includes(feature.name)) {
      fail(`feature name ${feature.name} is reserved for the online table`);
    }
    seen.add(feature.name);
    if ("passthrough" in feature) {
      const type = sourceTypes.get(feature.passthrough);
      if (type === undefined)
        fail(`feature ${feature.name} copies unknown source column ${feature.passthrough}`);
      features.push({
        name: feature.name,
        type: type as SourceType,
        kind: "passthrough",
        source: feature.passthrough,
      });
    } else {
      const input = sourceTypes.get(feature.source);
      if (input === undefined)
        fail(`feature ${feature.name} aggregates unknown source column ${feature.source}`);
      if (input === "string") fail(`feature ${feature.name} aggregates non-numeric column ${feature.source}`);
      features.push({
        name: feature.name,
        type: aggregateOutputType(feature.aggregate, input as SourceType),
        kind: "aggregate",
        source: feature.source,
        aggregate: feature.aggregate,
        windowDays: feature.window_days,
      });
    }
  }

  // The online row: the key, then feature_date, the features and updated_at (online-schema.ts).
  const reservedRegular = RESERVED_COLUMNS.filter((c) => c !== ONLINE_KEY_COLUMN);
  const regularColumns = features.length + reservedRegular.length;
  const ttlOn = file.online.ttl_days > 0;
  const maxRegular = ttlOn ? KEYSPACES_MAX_REGULAR_COLUMNS.ttlOn : KEYSPACES_MAX_REGULAR_COLUMNS.ttlOff;
  if (regularColumns > maxRegular) {
    fail(
      `view ${file.name}'s online row has ${regularColumns} regular columns (${features.length} features, ` +
        `${reservedRegular.join(", ")}); Amazon Keyspaces writes at most ${maxRegular} in one INSERT when ` +
        `the table's TTL is ${ttlOn ? "on" : "off"} (online.ttl_days ${file.online.ttl_days}; ` +
        `${ttlOn ? KEYSPACES_MAX_REGULAR_COLUMNS.ttlOff : KEYSPACES_MAX_REGULAR_COLUMNS.ttlOn} when it is ` +
        `${ttlOn ? "off" : "on"}); split the features into two views`,
    );
  }

  return {
    name: file.name,
    description: file.description,
    entityColumn: file.entity.column,
    entityIdPattern: idPattern,
    eventDateColumn: file.event_date.column,
    maxFutureDays: file.event_date.max_future_days,
    rawHeader: [file.entity.column, file.event_date.column, ...file.source.columns.map((c) => c.name)],
    sourceColumns: file.source.columns.map(({ name, type, min, max }) => ({
      name,
      type,
      ...(min !== undefined ? { min } : {}),
      ...(max !== undefined ? { max } : {}),
    })),
    features,
    featureNames: new Set(features.map((f) => f.name)),
    onlineTable: file.online.table,
    ttlSeconds: file.online.ttl_days * 86_400,
  };
}

/** A view file's parsed contents and where they came from (`path` names the file in errors). */
export interface FeatureViewSource {
  readonly path: string;
  readonly content: unknown;
}

/** Validates one view file's contents; the view's name must be the file's name. */
export function featureViewFromSource({ path, content }: FeatureViewSource): FeatureView {
  const view = parseFeatureView(content, path);
  const fileName = path.slice(path.lastIndexOf("/") + 1);
  const expected = fileName.replace(/\.(ya?ml|json)$/, "");
  if (view.name !== expected) {
    throw new FeatureViewError(
      `Feature view ${path} declares name "${view.name}"; the file must be ${view.name}.yml`,
    );
  }
  return view;
}

/** Validates every view of a directory's files, keyed by name. Two views may not share an online table. */
export function featureViewsFromSources(
  sources: readonly FeatureViewSource[],
  origin: string,
): ReadonlyMap<string, FeatureView> {
  if (sources.length === 0) throw new FeatureViewError(`No feature views found in ${origin}`);
  const views = new Map<string, FeatureView>();
  const tables = new Map<string, string>();
  for (const source of sources) {
    const view = featureViewFromSource(source);
    const owner = tables.get(view.onlineTable);
    if (owner !== undefined) {
      throw new FeatureViewError(
        `Feature views ${owner} and ${view.name} both use online table ${view.onlineTable}`,
      );
    }
    tables.set(view.onlineTable, view.name);
    views.set(view.name, view);
  }
  return views;
}

/** Default location of the view files, relative to the project (or Lambda task) root. */
export const DEFAULT_FEATURE_VIEWS_DIR = "resources/feature-views";
