// Compiles every feature view into the JSON the Spark job reads (functions/commons/compiled-view.ts):
//   npm run views:compile                      # resources/feature-views -> .local/compiled-views/<view>.json
//   npx tsx scripts/compile-views.ts --out DIR [--views DIR]
// The deploy plugin compiles the same way in-process; spark/tests' conftest runs this once per session.
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_COMPILED_VIEWS_DIR, writeCompiledViews } from "#commons/compiled-view.js";
import { DEFAULT_FEATURE_VIEWS_DIR, FeatureViewError } from "#commons/feature-view.js";
import { loadFeatureViews } from "#commons/feature-view-files.js";

function main(): number {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: DEFAULT_COMPILED_VIEWS_DIR },
      views: { type: "string", default: DEFAULT_FEATURE_VIEWS_DIR },
    },
  });
  const root = resolve(__dirname, "..");
  try {
    const views = loadFeatureViews(resolve(root, values.views));
    for (const path of writeCompiledViews(views.values(), resolve(root, values.out))) console.log(path);
    return 0;
  } catch (error) {
    if (error instanceof FeatureViewError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }
}

process.exitCode = main();
