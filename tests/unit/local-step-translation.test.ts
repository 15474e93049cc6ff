// The local job runner runs the EMR step the submit function builds, translated for this machine:
// these tests protect that the translation keeps every job argument but the store locations and
// the Keyspaces profile, maps every s3:// URI to its local counterpart and refuses unknown ones.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { s3JobLocations } from "#commons/jobs/artifacts.js";
import { type FeatureJobRun, sparkSubmitArgs } from "#commons/jobs/feature-job-step.js";
import { EMR_PYTHON } from "#commons/jobs/spark-submit-step.js";
import { emrPythonRefusal, emrStepRefusal, extraSparkOptions, jobRequiresPython } from "#local/job-runner.js";
import {
  StepTranslationError,
  translateArgumentsManifest,
  translateStepArgs,
} from "#local/step-translation.js";

const buckets = { raw: "fs-raw", offline: "fs-offline", artifacts: "fs-artifacts" };
const ctx = {
  buckets,
  root: "/repo",
  compiledViewsDir: "/repo/.local/compiled-views",
  jarsDir: "/repo/.local/jars",
  pyFilesZip: "/repo/.local/pipeline/artifacts/spark/feature_store.zip",
  offlineDir: "/repo/.local/pipeline/offline",
  inputsDir: "/repo/.local/pipeline/inputs",
  cassandra: { host: "127.0.0.1", port: 9042, datacenter: "datacenter1" },
};
const run: FeatureJobRun = {
  view: "energy",
  inputs: ["s3://fs-raw/raw/energy/2014-03-01.csv", "s3://fs-raw/raw/energy/a b.csv"],
  mode: "incremental",
  runId: "20261126T190000Z-abc123",
};
const emrArgs = sparkSubmitArgs(
  run,
  s3JobLocations({
    artifactsBucket: buckets.artifacts,
    offlineBucket: buckets.offline,
    keyspace: "feature_store",
  }),
);

describe("translateStepArgs", () => {
  const local = translateStepArgs(emrArgs, ctx);

  it("keeps the job's --timeout-minutes as an argument and tells the runner about it", () => {
    const timed = translateStepArgs(
      sparkSubmitArgs(
        { ...run, inputs: ["s3://fs-raw/staging/energy/0a1b.csv"], timeoutMinutes: 120 },
        s3JobLocations({ artifactsBucket: buckets.artifacts, offlineBucket: buckets.offline, keyspace: "k" }),
      ),
      ctx,
    );
    expect(timed.jobArgs.slice(-2)).toEqual(["--timeout-minutes", "120"]);
    expect(timed.timeoutMinutes).toBe(120);
    expect(timed.downloads).toEqual([
      {
        from: { bucket: "fs-raw", key: "staging/energy/0a1b.csv" },
        to: "/repo/.local/pipeline/inputs/staging/energy/0a1b.csv",
      },
    ]);
    expect(local.timeoutMinutes).toBeUndefined();
  });

  it("runs the repository's job script in client mode with the local jar set and the zipped package", () => {
    expect(local.jobScript).toBe("/repo/spark/feature_job.py");
    expect(local.sparkOptions).toEqual([
      "--deploy-mode",
      "client",
      "--jars",
      "/repo/.local/jars/spark/*.jar",
      "--py-files",
      "/repo/.local/pipeline/artifacts/spark/feature_store.zip",
    ]);
  });

  it("keeps the job arguments, with local paths and the local Cassandra instead of the Keyspaces profile", () => {
    expect(local.jobArgs).toEqual([
      "--view",
      "energy",
      "--input",
      "/repo/.local/pipeline/inputs/raw/energy/2014-03-01.csv",
      "--input",
      "/repo/.local/pipeline/inputs/raw/energy/a b.csv",
      "--mode",
      "incremental",
      "--feature-view",
      "/repo/.local/compiled-views/energy.json",
      "--offline-uri",
      "/repo/.local/pipeline/offline/delta",
      "--rejects-uri",
      `/repo/.local/pipeline/offline/rejects/energy/${run.runId}`,
      "--summary-uri",
      `/repo/.local/pipeline/offline/runs/energy/${run.runId}/summary.json`,
      "--run-id",
      run.runId,
      "--keyspace",
      "feature_store",
      "--cassandra-host",
      "127.0.0.1",
      "--cassandra-port",
      "9042",
      "--cassandra-datacenter",
      "datacenter1",
    ]);
    expect(local.runId).toBe(run.runId);
    expect(local.view).toBe("energy");
  });

  it("downloads each raw input and returns the summary where the EMR job would have written it", () => {
    expect(local.downloads).toEqual([
      {
        from: { bucket: "fs-raw", key: "raw/energy/2014-03-01.csv" },
        to: "/repo/.local/pipeline/inputs/raw/energy/2014-03-01.csv",
      },
      {
        from: { bucket: "fs-raw", key: "raw/energy/a b.csv" },
        to: "/repo/.local/pipeline/inputs/raw/energy/a b.csv",
      },
    ]);
    expect(local.summary).toEqual({
      local: `/repo/.local/pipeline/offline/runs/energy/${run.runId}/summary.json`,
      s3: { bucket: "fs-offline", key: `runs/energy/${run.runId}/summary.json` },
    });
  });

  it("keeps Spark options it does not know, and refuses URIs with no local counterpart", () => {
    const extra = [...emrArgs];
    extra.splice(1, 0, "--conf", "spark.sql.shuffle.partitions=64");
    expect(translateStepArgs(extra, ctx).sparkOptions).toContain("spark.sql.shuffle.partitions=64");

    const foreign = emrArgs.map((a) =>
      a === "s3://fs-raw/raw/energy/2014-03-01.csv" ? "s3://elsewhere/x.csv" : a,
    );
    expect(() => translateStepArgs(foreign, ctx)).toThrow(StepTranslationError);
    const unknownArtifact = emrArgs.map((a) => a.replace("spark/feature_job.py", "spark/other.py"));
    expect(() => translateStepArgs(unknownArtifact, ctx)).toThrow(/No local counterpart/);
    expect(() => translateStepArgs(["command-runner.jar", "x"], ctx)).toThrow(/Not a spark-submit step/);
  });
});

// EMR runs a step's PySpark on /usr/bin/python3, AL2023's Python 3.9, unless the step names another
// (AWS_CONTRACTS E11); here every step runs on the venv's 3.11, so the runner refuses what EMR would
// run on a Python the job cannot import on.
describe("the job's Python on EMR", () => {
  const requires = jobRequiresPython(readFileSync("spark/pyproject.toml", "utf8"));
  const local = translateStepArgs(emrArgs, ctx);
  const without = (args: readonly string[]) => {
    const at = args.indexOf(`spark.pyspark.python=${EMR_PYTHON}`);
    return [...args.slice(0, at - 1), ...args.slice(at + 1)];
  };

  it("reads the job's requirement from spark/pyproject.toml", () => {
    expect(requires).toEqual([3, 11]);
    expect(() => jobRequiresPython("[project]\nname = 'x'\n")).toThrow(/requires-python/);
  });

  it("every step names EMR's Python 3.11, and the translation runs it on the venv's instead", () => {
    expect(EMR_PYTHON).toBe("/usr/bin/python3.11");
    expect(emrArgs).toContain(`spark.pyspark.python=${EMR_PYTHON}`);
    expect(local.emrPython).toBe(EMR_PYTHON);
    expect(local.sparkOptions.join(" ")).not.toContain("spark.pyspark.python");
    expect(local.notes).toContain("--conf spark.pyspark.python=/usr/bin/python3.11 → the venv's Python");
    expect(emrPythonRefusal(local.emrPython, requires)).toBeUndefined();
  });

  it("refuses a step that names no Python, since EMR would run it on 3.9", () => {
    const bare = translateStepArgs(without(emrArgs), ctx);
    expect(bare.emrPython).toBeUndefined();
    expect(emrPythonRefusal(bare.emrPython, requires)).toMatch(
      /names no --conf spark.pyspark.python, so EMR runs it on \/usr\/bin\/python3, Python 3\.9; the job requires Python >=3\.11/,
    );
  });

  it("refuses a Python EMR has not or that is older than the job's", () => {
    expect(emrPythonRefusal("/usr/bin/python3.9", requires)).toMatch(/\/usr\/bin\/python3\.9 is Python 3\.9/);
    expect(emrPythonRefusal("/usr/bin/python3", requires)).toMatch(/Python 3\.9/);
    expect(emrPythonRefusal("/usr/bin/python3.12", requires)).toMatch(/EMR 7 has no \/usr\/bin\/python3\.12/);
    expect(emrPythonRefusal("/usr/bin/python3.11", [3, 12])).toMatch(/requires Python >=3\.12/);
  });
});

describe("extraSparkOptions", () => {
  it("finds nothing in the EMR step beyond what scripts/spark-submit.sh supplies itself", () => {
    expect(extraSparkOptions(translateStepArgs(emrArgs, ctx), ctx)).toEqual([]);
  });

  it("names a Spark option the local launcher would not apply", () => {
    const extra = [...emrArgs];
    extra.splice(1, 0, "--conf", "spark.executor.memory=8g");
    expect(extraSparkOptions(translateStepArgs(extra, ctx), ctx)).toEqual([
      "--conf",
      "spark.executor.memory=8g",
    ]);
  });
});

// EMR refuses a step whose HadoopJarStep strings total more than 10,240 characters (AWS_CONTRACTS
// E10); moto takes any, so the runner refuses it instead, and the local suites fail where EMR would.
describe("the runner's copy of EMR's step limit", () => {
  const config = (characters: number) => ({
    Jar: "command-runner.jar",
    Args: ["spark-submit", "x".repeat(characters - "command-runner.jar".length - "spark-submit".length)],
    Properties: {},
  });

  it("runs a step of exactly 10,240 characters and refuses one of 10,241, naming the count", () => {
    expect(emrStepRefusal(config(10_240))).toBeUndefined();
    expect(emrStepRefusal(config(10_241))).toMatch(/10241 characters, more than 10240 .*E10/);
  });

  it("counts the main class and properties too, as EMR does", () => {
    expect(emrStepRefusal({ ...config(10_230), MainClass: "m".repeat(10) })).toBeUndefined();
    expect(emrStepRefusal({ ...config(10_230), Properties: { k: "v".repeat(10) } })).toMatch(/10241/);
  });
});

describe("a step passing its inputs through an arguments manifest", () => {
  const manifestUri = `s3://fs-offline/runs/energy/${run.runId}/arguments.json`;
  const at = s3JobLocations({ artifactsBucket: "fs-artifacts", offlineBucket: "fs-offline", keyspace: "k" });
  const translated = translateStepArgs(sparkSubmitArgs(run, at, manifestUri), ctx);

  it("points the job at a local copy of the manifest, fetched from the offline bucket", () => {
    const local = `/repo/.local/pipeline/offline/runs/energy/${run.runId}/arguments.json`;
    expect(translated.jobArgs.slice(2, 4)).toEqual(["--mode", "incremental"]);
    expect(translated.jobArgs[translated.jobArgs.indexOf("--arguments-manifest") + 1]).toBe(local);
    expect(translated.argumentsManifest).toEqual({
      from: { bucket: "fs-offline", key: `runs/energy/${run.runId}/arguments.json` },
      to: local,
    });
    expect(translated.downloads).toEqual([]);
  });

  it("rewrites the manifest's inputs to the downloaded paths, and leaves repair entities alone", () => {
    const manifest = translateArgumentsManifest(JSON.stringify({ inputs: run.inputs }), ctx);
    expect(JSON.parse(manifest.text)).toEqual({
      inputs: [
        "/repo/.local/pipeline/inputs/raw/energy/2014-03-01.csv",
        "/repo/.local/pipeline/inputs/raw/energy/a b.csv",
      ],
    });
    expect(manifest.downloads.map((d) => d.from.key)).toEqual([
      "raw/energy/2014-03-01.csv",
      "raw/energy/a b.csv",
    ]);
    const repair = JSON.stringify({ repair_entities: ["MAC000002"] });
    expect(translateArgumentsManifest(repair, ctx)).toEqual({ text: repair, downloads: [] });
    expect(() =>
      translateArgumentsManifest(JSON.stringify({ inputs: ["s3://elsewhere/x.csv"] }), ctx),
    ).toThrow(StepTranslationError);
  });
});
