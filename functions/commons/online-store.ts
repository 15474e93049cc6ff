// The online store port: what serving code needs from the store holding the latest feature vector
// per entity. getFeatures depends on this interface only; the Cassandra/Keyspaces adapter
// (cassandra-online-store.ts) implements it and unit tests pass a fake.
import type { FeatureView } from "./feature-view.js";

/**
 * A feature value as it leaves the store, JSON-ready: double and int as numbers, bigint as a
 * decimal string (lossless: a 64-bit integer does not fit a JSON number), string as string,
 * and null for a feature that has no value (never 0).
 */
export type FeatureValue = number | string | null;

/** The latest feature vector of one entity in one view. */
export interface OnlineRow {
  readonly entityId: string;
  /** The date the vector describes, "YYYY-MM-DD" (null only if the writer left it unset). */
  readonly featureDate: string | null;
  /** Requested features, in the view's declaration order. */
  readonly features: Readonly<Record<string, FeatureValue>>;
}

export interface OnlineStore {
  /**
   * Reads the latest row of each id. The result is aligned with `entityIds` (same length and
   * order); an id with no row yields `undefined`. `features` must already be validated against
   * the view; omitted means every feature of the view.
   * Throws StoreUnavailableError when the store cannot answer in time.
   */
  getLatest(
    view: FeatureView,
    entityIds: readonly string[],
    features?: readonly string[],
  ): Promise<ReadonlyArray<OnlineRow | undefined>>;
  /** Releases connections; the store cannot be used afterwards. */
  close(): Promise<void>;
}
