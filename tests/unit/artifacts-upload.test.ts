// Protects what `sls deploy` ships to the artifacts bucket: the file selection (job scripts, the
// feature_store package as a zip without tests or caches, driver profile, both jar sets, the
// feature views compiled to the job's JSON), refusing to ship an incomplete set or an invalid view,
// and removing stale jars the step's globs would otherwise pick up.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import JSZip from "jszip";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { compiledViewJson } from "#commons/compiled-view.js";
import { loadFeatureViewFile } from "#commons/feature-view-files.js";
import { ARTIFACT_KEYS } from "#commons/jobs/artifacts.js";

interface Selection {
  uploads: Array<{ path?: string; body?: string; key: string }>;
  zips: Array<{ key: string; entries: Array<{ path: string; name: string }> }>;
  missing: string[];
}
interface FakeCommand {
  constructor: { name: string };
  input: Record<string, unknown>;
}
const plugin = createRequire(resolve("package.json"))("./resources/plugins/upload-artifacts.cjs") as {
  ARTIFACT_SOURCES: Array<{ kind: string; key?: string }>;
  selectArtifacts(root: string): Selection;
  buildZip(entries: Selection["zips"][number]["entries"]): Promise<Buffer>;
  staleKeys(existing: string[], uploaded: string[]): string[];
  uploadArtifacts(
    s3: { send(command: FakeCommand): Promise<unknown> },
    bucket: string,
    root: string,
    context?: { region: string },
  ): Promise<{ uploaded: string[]; deleted: string[] }>;
};

let root: string;

function write(relative: string, content = "x") {
  const file = join(root, relative);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
}

function completeProject() {
  write("spark/feature_job.py", "print('job')");
  write("spark/emr/bootstrap-python.sh", "pip install");
  write("spark/training_set_job.py", "print('training set')");
  write("spark/feature_store/__init__.py", "");
  write("spark/feature_store/transforms.py", "def f(): pass");
  write("spark/feature_store/io/delta.py", "");
  write("spark/feature_store/__pycache__/transforms.cpython-311.pyc");
  write("spark/feature_store/tests/test_transforms.py");
  write("spark/tests/test_job.py");
  write(
    "spark/conf/keyspaces-application.conf",
    'contact-points = [ "cassandra.@AWS_REGION@.amazonaws.com:9142" ]',
  );
  write("resources/feature-views/energy.yml", readFileSync("resources/feature-views/energy.yml", "utf8"));
  write("resources/feature-views/README.md");
  write(".local/jars/spark/delta-spark_2.12-3.3.2.jar");
  write(".local/jars/spark/.pom.sha256");
  write(".local/jars/emr/aws-sigv4-auth-cassandra-java-driver-plugin-4.0.9.jar");
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "sfs-artifacts-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("artifact selection", () => {
  it("maps the project's files to the layout docs/SPARK_JOB.md names", () => {
    completeProject();
    const selection = plugin.selectArtifacts(root);
    expect(selection.missing).toEqual([]);
    expect(selection.uploads.map((u) => u.key)).toEqual([
      "spark/feature_job.py",
      "spark/bootstrap-python.sh",
      "spark/training_set_job.py",
      "spark/keyspaces-application.conf",
      "feature-views/energy.json",
      "spark/jars/spark/delta-spark_2.12-3.3.2.jar",
      "spark/jars/emr/aws-sigv4-auth-cassandra-java-driver-plugin-4.0.9.jar",
    ]);
    expect(selection.zips.map((z) => z.key)).toEqual(["spark/feature_store.zip"]);
    expect(selection.zips[0]?.entries.map((e) => e.name)).toEqual([
      "feature_store/__init__.py",
      "feature_store/io/delta.py",
      "feature_store/transforms.py",
    ]);
  });

  it("names everything that is missing, with the script that provides the jars", () => {
    write("spark/feature_store/transforms.py");
    const { missing } = plugin.selectArtifacts(root);
    expect(missing).toEqual([
      "spark/feature_job.py",
      "spark/emr/bootstrap-python.sh",
      "spark/training_set_job.py",
      "spark/feature_store/__init__.py",
      "spark/conf/keyspaces-application.conf",
      "resources/feature-views/*.yml",
      ".local/jars/spark/* (run scripts/setup-jars.sh)",
      ".local/jars/emr/* (run scripts/setup-jars.sh)",
    ]);
  });

  it("ships each view compiled, byte for byte what the compiler writes, and never the YAML", () => {
    completeProject();
    const { uploads } = plugin.selectArtifacts(root);
    const views = uploads.filter((u) => u.key.startsWith(ARTIFACT_KEYS.featureViewsPrefix));
    expect(views.map((u) => u.key)).toEqual(["feature-views/energy.json"]);
    expect(views[0]?.body).toBe(compiledViewJson(loadFeatureViewFile("resources/feature-views/energy.yml")));
    expect(JSON.parse(views[0]?.body ?? "{}").compiled_view_version).toBe(1);
  });

  it("refuses to ship an invalid view, naming the file and the rule", () => {
    completeProject();
    const text = readFileSync("resources/feature-views/energy.yml", "utf8");
    write(
      "resources/feature-views/energy.yml",
      text.replace("energy_count, type: int, min: 0,", "energy_count, type: int, min: 2000,"),
    );
    const { missing } = plugin.selectArtifacts(root);
    expect(missing).toHaveLength(1);
    expect(missing[0]).toMatch(
      /^resources\/feature-views: Invalid feature view .*energy\.yml: .*min 2000 is greater than max 1440/,
    );
  });

  it("ships both job scripts at the keys the EMR steps run", () => {
    const keys = plugin.ARTIFACT_SOURCES.map((spec) => spec.key);
    expect(keys).toContain(ARTIFACT_KEYS.jobScript);
    expect(keys).toContain(ARTIFACT_KEYS.trainingSetScript);
    expect(keys).toContain(ARTIFACT_KEYS.pyFiles);
  });

  it("builds a zip with the package at its root and identical bytes for identical files", async () => {
    completeProject();
    const [zip] = plugin.selectArtifacts(root).zips;
    const first = await plugin.buildZip(zip?.entries ?? []);
    const second = await plugin.buildZip(zip?.entries ?? []);
    expect(first.equals(second)).toBe(true);
    const read = await JSZip.loadAsync(first);
    expect(await read.file("feature_store/transforms.py")?.async("string")).toBe("def f(): pass");
  });

  it("builds identical bytes whatever the clock reads: no entry carries the build time", async () => {
    completeProject();
    const [zip] = plugin.selectArtifacts(root).zips;
    // JSZip adds the folder entries itself, stamped with the current time unless told otherwise: two
    // builds a second apart differed (the test above failed when its builds straddled a zip timestamp).
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(new Date("2026-01-01T00:00:00Z"));
      const first = await plugin.buildZip(zip?.entries ?? []);
      vi.setSystemTime(new Date("2026-06-01T12:34:56Z"));
      const second = await plugin.buildZip(zip?.entries ?? []);
      expect(first.equals(second)).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it("treats keys under the managed prefixes that were not uploaded as stale, and nothing else", () => {
    expect(
      plugin.staleKeys(
        [
          "spark/jars/spark/old.jar",
          "spark/jars/spark/new.jar",
          "emr-logs/j-1/x.gz",
          "ingest-claims/energy/a.json",
        ],
        ["spark/jars/spark/new.jar"],
      ),
    ).toEqual(["spark/jars/spark/old.jar"]);
  });
});

describe("uploadArtifacts", () => {
  it("puts every artifact and deletes stale managed keys", async () => {
    completeProject();
    const commands: FakeCommand[] = [];
    const s3 = {
      send: async (command: FakeCommand) => {
        commands.push(command);
        if (command.constructor.name === "ListObjectsV2Command") {
          const prefix = command.input.Prefix;
          return prefix === "spark/"
            ? {
                Contents: [
                  { Key: "spark/jars/spark/delta-spark_2.12-3.2.0.jar" },
                  { Key: "spark/feature_job.py" },
                ],
              }
            : { Contents: [] };
        }
        return {};
      },
    };
    const result = await plugin.uploadArtifacts(s3, "fs-artifacts", root, { region: "eu-west-1" });
    expect(result.uploaded).toHaveLength(8);
    const profile = commands.find((c) => c.input.Key === "spark/keyspaces-application.conf");
    // The stack's region is filled in: the job must reach the keyspace of the region it was deployed to.
    expect(profile?.input.Body).toBe('contact-points = [ "cassandra.eu-west-1.amazonaws.com:9142" ]');
    expect(result.deleted).toEqual(["spark/jars/spark/delta-spark_2.12-3.2.0.jar"]);
    const puts = commands.filter((c) => c.constructor.name === "PutObjectCommand").map((c) => c.input.Key);
    expect(puts).toContain("spark/feature_store.zip");
    const deletes = commands.filter((c) => c.constructor.name === "DeleteObjectsCommand");
    expect(deletes.map((c) => c.input)).toEqual([
      {
        Bucket: "fs-artifacts",
        Delete: { Objects: [{ Key: "spark/jars/spark/delta-spark_2.12-3.2.0.jar" }], Quiet: true },
      },
    ]);
  });

  it("uploads nothing when the set is incomplete", async () => {
    write("spark/feature_job.py");
    const commands: FakeCommand[] = [];
    const s3 = { send: async (c: FakeCommand) => commands.push(c) };
    await expect(plugin.uploadArtifacts(s3, "fs-artifacts", root, { region: "eu-west-1" })).rejects.toThrow(
      /missing: .*feature_store/,
    );
    expect(commands).toEqual([]);
  });
});
