// Domain logic of getFeatures: checks a feature request against the feature views and reads the
// latest vectors from the online store. Knows nothing of HTTP or API Gateway; throws typed errors.
import { EntityNotFoundError, InvalidRequestError } from "#commons/errors.js";
import type { FeatureView } from "#commons/feature-view.js";
import { IDENTIFIER_PATTERN } from "#commons/identifiers.js";
import type { FeatureValue, OnlineRow, OnlineStore } from "#commons/online-store.js";
import { describeViews, type ViewDescription } from "./view-catalog.js";

export const MAX_BATCH_IDS = 100;
export const MAX_VIEWS_PER_READ = 10;
const MAX_ENTITY_ID_LENGTH = 64;
// Only names that could be a view or feature (CQL identifiers) are echoed back in error messages.
const NAME = IDENTIFIER_PATTERN;
const IDENTIFIER_BODY = IDENTIFIER_PATTERN.source.slice(1, -1);
const QUALIFIED_FEATURE = new RegExp(`^(${IDENTIFIER_BODY})\\.(${IDENTIFIER_BODY})$`);

const MAX_PROJECTED_FEATURES = 200;

// The request shapes are plain types checked by the few lines below rather than zod schemas: the
// HTTP adapter has already turned the event into these types, so only counts are left to check,
// and zod's parse (a copy of the input, issue objects) ran on every request (docs/PERFORMANCE.md,
// "third round").

/** One entity, one or more views (read in parallel), optionally projected. */
export interface EntityRead {
  readonly views: readonly string[];
  readonly entityId: string;
  readonly features?: readonly string[] | undefined;
}

/** Up to MAX_BATCH_IDS entities of one view, answered in request order. */
export interface BatchRead {
  readonly view: string;
  readonly entityIds: readonly string[];
  readonly features?: readonly string[] | undefined;
}

function checkCount(list: readonly unknown[], min: number, max: number, tooFew: string, tooMany: string) {
  if (list.length < min) throw new InvalidRequestError(tooFew);
  if (list.length > max) throw new InvalidRequestError(tooMany);
}

function checkProjection(features: readonly string[] | undefined): void {
  if (features === undefined) return;
  checkCount(
    features,
    1,
    MAX_PROJECTED_FEATURES,
    "features must name at least one feature",
    `features may name at most ${MAX_PROJECTED_FEATURES} features`,
  );
}

/** A view's vector for one entity. `featureDate` is the day the vector describes. */
export interface FeatureVector {
  readonly view: string;
  readonly entityId: string;
  readonly featureDate: string | null;
  readonly features: Readonly<Record<string, FeatureValue>>;
}

export interface ViewVector {
  readonly found: boolean;
  readonly featureDate?: string | null;
  readonly features?: Readonly<Record<string, FeatureValue>>;
}

/** Several views of one entity, keyed by view name in request order. */
export interface MultiViewVector {
  readonly entityId: string;
  readonly views: Readonly<Record<string, ViewVector>>;
}

export type BatchItem =
  | {
      readonly entityId: string;
      readonly found: true;
      readonly featureDate: string | null;
      readonly features: Readonly<Record<string, FeatureValue>>;
    }
  | { readonly entityId: string; readonly found: false };

export interface BatchVectors {
  readonly view: string;
  readonly results: readonly BatchItem[];
}

/** The answer of `GET /views`. */
export interface ViewCatalog {
  readonly views: readonly ViewDescription[];
}

export class FeatureReader {
  readonly #catalog: ViewCatalog;

  constructor(
    private readonly views: ReadonlyMap<string, FeatureView>,
    private readonly store: OnlineStore,
  ) {
    this.#catalog = { views: describeViews(views) };
  }

  /** Every view callers may read, from the same definitions the reads are checked against. */
  listViews(): ViewCatalog {
    return this.#catalog;
  }

  /** One view: the flat vector, or EntityNotFoundError. Several views: one entry per view. */
  async readEntity(request: EntityRead): Promise<FeatureVector | MultiViewVector> {
    checkCount(
      request.views,
      1,
      MAX_VIEWS_PER_READ,
      "at least one view is required",
      `at most ${MAX_VIEWS_PER_READ} views per read`,
    );
    checkProjection(request.features);
    const views = this.resolveViews(request.views);
    for (const view of views) checkEntityId(view, request.entityId);
    if (views.length === 1) {
      // One view (nearly every request): one read, no parallel bookkeeping.
      const [view] = views as [FeatureView];
      const features =
        request.features === undefined
          ? undefined
          : resolveProjection(views, request.features).get(view.name);
      const [row] = await this.store.getLatest(view, [request.entityId], features);
      if (row === undefined) throw new EntityNotFoundError(`No ${view.name} features for this entity`);
      return {
        view: view.name,
        entityId: request.entityId,
        featureDate: row.featureDate,
        features: row.features,
      };
    }
    const projection = resolveProjection(views, request.features);
    const rows = await Promise.all(
      views.map(async (view) => {
        const [row] = await this.store.getLatest(view, [request.entityId], projection.get(view.name));
        return row;
      }),
    );
    if (rows.every((row) => row === undefined)) {
      throw new EntityNotFoundError(`No features for this entity in any requested view`);
    }
    const byView: Record<string, ViewVector> = {};
    views.forEach((view, index) => {
      byView[view.name] = toViewVector(rows[index]);
    });
    return { entityId: request.entityId, views: byView };
  }

  /** Many entities of one view; missing ids are marked `found: false`, order is kept. */
  async readBatch(request: BatchRead): Promise<BatchVectors> {
    checkCount(
      request.entityIds,
      1,
      MAX_BATCH_IDS,
      "ids must list at least one id",
      `ids may list at most ${MAX_BATCH_IDS} ids`,
    );
    checkProjection(request.features);
    const [view] = this.resolveViews([request.view]) as [FeatureView];
    for (const id of request.entityIds) checkEntityId(view, id);
    const features = resolveProjection([view], request.features).get(view.name);

    const rows = await this.store.getLatest(view, request.entityIds, features);
    const results = request.entityIds.map((entityId, index): BatchItem => {
      const row = rows[index];
      return row === undefined
        ? { entityId, found: false }
        : { entityId, found: true, featureDate: row.featureDate, features: row.features };
    });
    return { view: view.name, results };
  }

  private resolveViews(names: readonly string[]): FeatureView[] {
    if (new Set(names).size !== names.length) throw new InvalidRequestError("a view is listed twice");
    return names.map((name) => {
      const view = this.views.get(name);
      if (view === undefined) {
        throw new InvalidRequestError(NAME.test(name) ? `unknown view "${name}"` : "malformed view name");
      }
      return view;
    });
  }
}

function checkEntityId(view: FeatureView, entityId: string): void {
  if (entityId.length === 0 || entityId.length > MAX_ENTITY_ID_LENGTH) {
    throw new InvalidRequestError(`entity id must be 1 to ${MAX_ENTITY_ID_LENGTH} characters long`);
  }
  if (!view.entityIdPattern.test(entityId)) {
    throw new InvalidRequestError(
      `entity id does not match ${view.entityIdPattern.source} (view ${view.name})`,
    );
  }
}

/**
 * Maps requested feature names to each view's projection (undefined = all features). A name is
 * either bare (applies to every requested view that declares it) or qualified `view.feature`.
 * A name no requested view declares is an error, so typos never silently return less.
 */
function resolveProjection(
  views: readonly FeatureView[],
  names: readonly string[] | undefined,
): ReadonlyMap<string, string[] | undefined> {
  const projection = new Map<string, string[] | undefined>();
  if (names === undefined) {
    for (const view of views) projection.set(view.name, undefined);
    return projection;
  }
  for (const view of views) projection.set(view.name, []);
  for (const name of names) {
    const qualified = QUALIFIED_FEATURE.exec(name);
    const [viewName, featureName] =
      qualified === null ? [undefined, name] : [qualified[1], qualified[2] as string];
    if (!NAME.test(featureName)) throw new InvalidRequestError("malformed feature name");
    let matched = false;
    for (const view of views) {
      if ((viewName === undefined || viewName === view.name) && view.featureNames.has(featureName)) {
        const list = projection.get(view.name) as string[];
        if (!list.includes(featureName)) list.push(featureName);
        matched = true;
      }
    }
    if (!matched) throw new InvalidRequestError(`unknown feature "${name}"`);
  }
  return projection;
}

function toViewVector(row: OnlineRow | undefined): ViewVector {
  return row === undefined
    ? { found: false }
    : { found: true, featureDate: row.featureDate, features: row.features };
}
