// `npm run openapi`: writes docs/openapi.json and the TypeScript client's generated view types
// from resources/feature-views. `--check` writes nothing and fails if either file is stale.
import { readFileSync, writeFileSync } from "node:fs";
import { relative } from "node:path";
import {
  CLIENT_TYPES_FILE,
  OPENAPI_FILE,
  projectViews,
  ROOT,
  renderClientTypes,
  renderOpenApi,
} from "./contract.js";

const check = process.argv.includes("--check");
const views = projectViews();
let stale = 0;
for (const [file, text] of [
  [OPENAPI_FILE, renderOpenApi(views)],
  [CLIENT_TYPES_FILE, renderClientTypes(views)],
] as const) {
  const current = (() => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return undefined;
    }
  })();
  if (current === text) continue;
  if (check) {
    process.stderr.write(`${relative(ROOT, file)} is stale: run npm run openapi\n`);
    stale++;
  } else {
    writeFileSync(file, text);
    process.stdout.write(`wrote ${relative(ROOT, file)}\n`);
  }
}
process.exit(stale > 0 ? 1 : 0);
