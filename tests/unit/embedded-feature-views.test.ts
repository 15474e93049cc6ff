// getFeatures' bundle gets its feature views parsed at build time (resources/esbuild-plugins.cjs)
// instead of reading YAML at init: the embedded views must be exactly what the view files say,
// validated by the same rules, and the bundle must carry no YAML parser.
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { build, type Plugin } from "esbuild";
import { afterAll, describe, expect, it } from "vitest";
import type { FeatureView } from "#commons/feature-view.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";

const ROOT = resolve(__dirname, "../..");
const plugins = createRequire(__filename)(join(ROOT, "resources/esbuild-plugins.cjs")) as Plugin[];
const work = mkdtempSync(join(tmpdir(), "embedded-views-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function bundleViewSource(withPlugins: Plugin[]) {
  const outfile = join(work, `views-${withPlugins.length}.mjs`);
  const { metafile } = await build({
    entryPoints: [join(ROOT, "functions/get-features/feature-view-source.ts")],
    bundle: true,
    format: "esm",
    platform: "node",
    outfile,
    plugins: withPlugins,
    metafile: true,
    logLevel: "silent",
    banner: {
      js: 'import { createRequire as __r } from "node:module"; const require = __r(import.meta.url);',
    },
  });
  const inputs = Object.keys(metafile.inputs);
  const module = (await import(pathToFileURL(outfile).href)) as {
    featureViewsIn(dir: string): ReadonlyMap<string, FeatureView>;
  };
  return { inputs, featureViewsIn: module.featureViewsIn };
}

describe("feature views embedded in getFeatures' bundle", () => {
  it("are the views of resources/feature-views, validated as from the files, with no YAML parser bundled", async () => {
    const embedded = await bundleViewSource(plugins);
    expect(embedded.inputs.some((input) => input.includes("node_modules/yaml/"))).toBe(false);
    // The directory is what handler.ts passes in Lambda: the task root + FEATURE_VIEWS_DIR.
    const views = embedded.featureViewsIn("/var/task/resources/feature-views");
    expect(views).toEqual(loadFeatureViews(join(ROOT, "resources/feature-views")));
    expect(views.get("energy")?.entityIdPattern).toBeInstanceOf(RegExp);

    // Without the plugin (as from source) the bundle reads the files with yaml.
    const fromFiles = await bundleViewSource([]);
    expect(fromFiles.inputs.some((input) => input.includes("node_modules/yaml/"))).toBe(true);
  });

  it("refuses at init a FEATURE_VIEWS_DIR other than the directory it embeds", async () => {
    const embedded = await bundleViewSource(plugins);
    expect(() => embedded.featureViewsIn("/var/task/other-views")).toThrow(
      /embeds the feature views of resources\/feature-views.*other-views cannot be read/,
    );
  });
});
