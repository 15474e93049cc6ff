// What callers may learn about the feature views: each view's entity, id pattern and features with
// the JSON type their values take on the wire. One definition, used by `GET /views`, the OpenAPI
// generator (scripts/openapi.ts) and the clients' generated types, so none of them can disagree.
import type { FeatureView, SourceType } from "#commons/feature-view.js";

/** The JSON type of a feature value; every feature may also be null (no value, never 0). */
export type JsonType = "number" | "integer" | "string";

export interface FeatureDescription {
  readonly name: string;
  /** JSON type on the wire (nullable). bigint travels as a decimal string: it does not fit a double. */
  readonly type: JsonType;
  /** The type the view file declares. */
  readonly viewType: SourceType;
  readonly nullable: true;
}

export interface ViewDescription {
  readonly name: string;
  readonly description: string;
  readonly entity: { readonly column: string; readonly idPattern: string };
  readonly features: readonly FeatureDescription[];
}

/** The JSON type a view type is served as (see online-store.ts FeatureValue). */
export function jsonTypeOf(type: SourceType): JsonType {
  switch (type) {
    case "double":
      return "number";
    case "int":
      return "integer";
    case "bigint":
    case "string":
      return "string";
  }
}

/** Every view, in name order, with its features in declaration order. */
export function describeViews(views: ReadonlyMap<string, FeatureView>): ViewDescription[] {
  return [...views.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((view) => ({
      name: view.name,
      description: view.description,
      entity: { column: view.entityColumn, idPattern: view.entityIdPattern.source },
      features: view.features.map((feature) => ({
        name: feature.name,
        type: jsonTypeOf(feature.type),
        viewType: feature.type,
        nullable: true as const,
      })),
    }));
}
