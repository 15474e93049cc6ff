// Where getFeatures gets its feature views. Run from source (tests, the local stack): the view files
// of FEATURE_VIEWS_DIR, read and validated at init. In the packaged bundle this module is replaced
// (resources/esbuild-plugins.cjs) by the same files parsed at build time and validated at init by
// the same code (featureViewsFromSources), so the bundle carries no YAML parser (docs/PERFORMANCE.md,
// "Serving at the floor, third round").
import type { FeatureView } from "#commons/feature-view.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";

/** Every view of `dir` (absolute), keyed by name; throws FeatureViewError on an invalid view. */
export function featureViewsIn(dir: string): ReadonlyMap<string, FeatureView> {
  return loadFeatureViews(dir);
}
