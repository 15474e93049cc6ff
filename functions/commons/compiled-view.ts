// The feature view as the Spark job receives it: validated and resolved here, written as JSON
// ("compiled view"), shipped as a job artifact and read by spark/feature_store/feature_view.py,
// which validates nothing again. Every derived fact the job needs is in it (resolved feature types,
// online columns and their CQL, the raw header, the shared name patterns), so no rule has a second
// implementation in Python. Field names are snake_case because Python reads them.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Aggregate, FeatureView, SourceType } from "./feature-view.js";
import { IDENTIFIER_PATTERN, RUN_ID_PATTERN } from "./identifiers.js";
import { createKeyspaceCql, createTableCql, onlineColumns } from "./online-schema.js";

/** Bumped when the JSON changes shape; the Python reader refuses any other version. */
export const COMPILED_VIEW_VERSION = 1;

/**
 * Stands for the keyspace in the compiled CQL: the keyspace is a deployment setting, not part of the
 * view. The reader substitutes it once, in the statement's head (the table comment never sees it).
 */
export const KEYSPACE_PLACEHOLDER = "{keyspace}";

export interface CompiledFeatureView {
  readonly compiled_view_version: number;
  readonly name: string;
  readonly description: string;
  readonly entity: { readonly column: string; readonly id_pattern: string };
  readonly event_date: {
    readonly column: string;
    readonly format: "yyyy-MM-dd";
    readonly max_future_days: number;
  };
  /** The raw CSV header, in order: entity, date, then the source columns. */
  readonly raw_header: readonly string[];
  /** `min`/`max` are inclusive bounds, null when the view declares none. */
  readonly source_columns: ReadonlyArray<{
    readonly name: string;
    readonly type: SourceType;
    readonly min: number | null;
    readonly max: number | null;
  }>;
  readonly features: ReadonlyArray<{
    readonly name: string;
    readonly type: SourceType;
    readonly kind: "passthrough" | "aggregate";
    readonly source: string;
    readonly aggregate: Aggregate | null;
    readonly window_days: number | null;
  }>;
  readonly online: {
    readonly table: string;
    readonly ttl_seconds: number;
    /** Every column of the online table, key first (onlineColumns in online-schema.ts). */
    readonly columns: ReadonlyArray<{ readonly name: string; readonly cql_type: string }>;
    readonly keyspace_placeholder: string;
    readonly create_keyspace_cql: string;
    readonly create_table_cql: string;
  };
  /** Name rules shared with the functions (identifiers.ts), as regular expressions. */
  readonly patterns: { readonly identifier: string; readonly run_id: string };
}

export function compileFeatureView(view: FeatureView): CompiledFeatureView {
  return {
    compiled_view_version: COMPILED_VIEW_VERSION,
    name: view.name,
    description: view.description,
    entity: { column: view.entityColumn, id_pattern: view.entityIdPattern.source },
    event_date: { column: view.eventDateColumn, format: "yyyy-MM-dd", max_future_days: view.maxFutureDays },
    raw_header: [...view.rawHeader],
    source_columns: view.sourceColumns.map((c) => ({
      name: c.name,
      type: c.type,
      min: c.min ?? null,
      max: c.max ?? null,
    })),
    features: view.features.map((f) => ({
      name: f.name,
      type: f.type,
      kind: f.kind,
      source: f.source,
      aggregate: f.aggregate ?? null,
      window_days: f.windowDays ?? null,
    })),
    online: {
      table: view.onlineTable,
      ttl_seconds: view.ttlSeconds,
      columns: onlineColumns(view).map((c) => ({ name: c.name, cql_type: c.cqlType })),
      keyspace_placeholder: KEYSPACE_PLACEHOLDER,
      create_keyspace_cql: createKeyspaceCql(KEYSPACE_PLACEHOLDER),
      create_table_cql: createTableCql(view, KEYSPACE_PLACEHOLDER),
    },
    patterns: { identifier: IDENTIFIER_PATTERN.source, run_id: RUN_ID_PATTERN.source },
  };
}

/** The compiled view as the bytes that are shipped (stable: same view, same bytes). */
export function compiledViewJson(view: FeatureView): string {
  return `${JSON.stringify(compileFeatureView(view), null, 2)}\n`;
}

/** Where `npm run views:compile` and the local stack write compiled views, from the project root. */
export const DEFAULT_COMPILED_VIEWS_DIR = ".local/compiled-views";

/** File name of a view's compiled JSON, locally and under the artifacts' feature-views/ prefix. */
export function compiledViewFileName(viewName: string): string {
  return `${viewName}.json`;
}

/** Writes `<dir>/<view>.json` for every view; returns the paths written. */
export function writeCompiledViews(views: Iterable<FeatureView>, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const view of views) {
    const path = join(dir, compiledViewFileName(view.name));
    writeFileSync(path, compiledViewJson(view));
    written.push(path);
  }
  return written;
}
