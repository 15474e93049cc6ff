// Reads feature view files (YAML, or JSON, which is YAML too) from disk and validates them with
// feature-view.ts. Kept apart from the rules so a bundle that embeds its views at build time
// (getFeatures: resources/esbuild-plugins.cjs) carries no YAML parser.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import {
  type FeatureView,
  FeatureViewError,
  type FeatureViewSource,
  featureViewFromSource,
  featureViewsFromSources,
} from "./feature-view.js";

/** The view files of a directory (`*.yml`, `*.yaml`, `*.json`), in name order. */
export function featureViewFileNames(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort();
}

/** A view file parsed, not yet validated. */
export function readFeatureViewSource(path: string): FeatureViewSource {
  try {
    return { path, content: parseYaml(readFileSync(path, "utf8")) };
  } catch (error) {
    throw new FeatureViewError(`Cannot read feature view ${path}: ${(error as Error).message}`);
  }
}

/** Loads one view file (YAML or JSON). */
export function loadFeatureViewFile(path: string): FeatureView {
  return featureViewFromSource(readFeatureViewSource(path));
}

/** Loads every view in a directory, keyed by name. Two views may not share an online table. */
export function loadFeatureViews(dir: string): ReadonlyMap<string, FeatureView> {
  return featureViewsFromSources(
    featureViewFileNames(dir).map((file) => readFeatureViewSource(join(dir, file))),
    dir,
  );
}
