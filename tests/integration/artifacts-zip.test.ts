// The feature_store.zip that `sls deploy` uploads for the EMR step's --py-files, built from this checkout
// by the deploy plugin, imports in the job's Python (3.11, as on EMR: docs/AWS_CONTRACTS.md E11) from the
// zip alone: every module of the package, found by zipimport without folder entries in the zip.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = join(__dirname, "../..");
const plugin = createRequire(resolve(ROOT, "package.json"))("./resources/plugins/upload-artifacts.cjs") as {
  selectArtifacts(root: string): {
    zips: Array<{ key: string; entries: Array<{ path: string; name: string }> }>;
  };
  buildZip(entries: Array<{ path: string; name: string }>): Promise<Buffer>;
};
const work = mkdtempSync(join(tmpdir(), "artifacts-zip-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("the deployed feature_store.zip", () => {
  it("imports every module of the package from the zip alone", async () => {
    const zip = plugin.selectArtifacts(ROOT).zips.find((z) => z.key === "spark/feature_store.zip");
    expect(zip).toBeDefined();
    const modules = (zip?.entries ?? [])
      .map((e) => e.name)
      .filter((name) => name.endsWith(".py"))
      .map((name) =>
        name
          .replace(/\.py$/, "")
          .replace(/\/__init__$/, "")
          .replaceAll("/", "."),
      );
    expect(modules).toContain("feature_store.job");
    const file = join(work, "feature_store.zip");
    writeFileSync(file, await plugin.buildZip(zip?.entries ?? []));

    const script = [
      "import importlib, sys",
      "for name in sys.argv[1:]:",
      "    print(name, importlib.import_module(name).__file__)",
    ].join("\n");
    const output = await new Promise<string>((done, fail) => {
      execFile(
        join(ROOT, ".local/venv/bin/python"),
        ["-c", script, ...modules],
        // Run outside the checkout: the package may come from the zip only, never from spark/.
        {
          cwd: work,
          timeout: 60_000,
          env: { ...process.env, PYTHONPATH: file, PYTHONDONTWRITEBYTECODE: "1" },
        },
        (error, stdout, stderr) => (error ? fail(new Error(`${error.message}\n${stderr}`)) : done(stdout)),
      );
    });
    const loaded = output.trim().split("\n");
    expect(loaded).toHaveLength(modules.length);
    const inZip = new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/feature_store/`);
    for (const line of loaded) expect(line.split(" ")[1]).toMatch(inZip);
  });
});
