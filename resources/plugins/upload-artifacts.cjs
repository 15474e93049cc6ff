// Serverless plugin: after `sls deploy`, ships what the EMR step needs to the artifacts bucket
// (the layout docs/SPARK_JOB.md and functions/commons/jobs/artifacts.ts name): the job scripts, the
// feature_store package as a zip, the Keyspaces driver profile, the jars and the feature views,
// compiled to the JSON the job reads (functions/commons/compiled-view.ts; the YAML is not shipped).
// Keys under the managed prefixes that are no longer shipped are deleted, because the step picks
// jars up by glob and a stale jar would end up on the classpath. Before `sls remove` it empties
// the bucket so CloudFormation can delete it. `sls upload-artifacts` re-uploads by hand.
const fs = require("node:fs");
const path = require("node:path");
const { renderKeyspacesProfile } = require("../keyspaces-profile.cjs");

/** What gets uploaded, relative to the project root; `required` ones fail the upload if absent. */
const ARTIFACT_SOURCES = [
  { kind: "file", source: "spark/feature_job.py", key: "spark/feature_job.py" },
  { kind: "file", source: "spark/emr/bootstrap-python.sh", key: "spark/bootstrap-python.sh" },
  // submit's jobType "training-set" runs it (docs/TRAINING_SETS.md).
  { kind: "file", source: "spark/training_set_job.py", key: "spark/training_set_job.py" },
  { kind: "zip", source: "spark/feature_store", key: "spark/feature_store.zip" },
  // A template: uploaded with the stack's region filled in.
  {
    kind: "file",
    source: "spark/conf/keyspaces-application.conf",
    key: "spark/keyspaces-application.conf",
    render: (text, { region }) => renderKeyspacesProfile(region, text),
  },
  { kind: "views", source: "resources/feature-views", prefix: "feature-views/" },
  {
    kind: "dir",
    source: ".local/jars/spark",
    pattern: /\.jar$/,
    prefix: "spark/jars/spark/",
    hint: "scripts/setup-jars.sh",
  },
  {
    kind: "dir",
    source: ".local/jars/emr",
    pattern: /\.jar$/,
    prefix: "spark/jars/emr/",
    hint: "scripts/setup-jars.sh",
  },
];

/** Prefixes this plugin owns in the artifacts bucket (stale keys under them are removed). */
const MANAGED_PREFIXES = ["spark/", "feature-views/"];

/** Files that never belong in the job's zip. */
const ZIP_EXCLUDED =
  /(^|\/)(__pycache__|\.pytest_cache|\.ruff_cache|tests?)(\/|$)|\.py[co]$|(^|\/)\.DS_Store$/;

function listFilesRecursively(dir) {
  const out = [];
  const walk = (current) => {
    for (const entry of fs
      .readdirSync(current, { withFileTypes: true })
      .sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) out.push(full);
    }
  };
  walk(dir);
  return out;
}

/** Validates and compiles every view of a directory, by the TypeScript loader (one set of rules). */
function compileViews(dir) {
  const tsx = require("tsx/cjs/api");
  const { loadFeatureViews } = tsx.require("../../functions/commons/feature-view-files.ts", __filename);
  const { compiledViewFileName, compiledViewJson } = tsx.require(
    "../../functions/commons/compiled-view.ts",
    __filename,
  );
  return [...loadFeatureViews(dir).values()].map((view) => ({
    name: compiledViewFileName(view.name),
    body: compiledViewJson(view),
  }));
}

/**
 * Resolves ARTIFACT_SOURCES against a project root: `uploads` (key <- a local `path`, or a
 * generated `body`), `zips` (key -> files with their names inside the zip) and `missing` (what
 * to fix before deploying).
 */
function selectArtifacts(root) {
  const uploads = [];
  const zips = [];
  const missing = [];
  for (const spec of ARTIFACT_SOURCES) {
    const source = path.join(root, spec.source);
    const hint = spec.hint ? ` (run ${spec.hint})` : "";
    if (spec.kind === "file") {
      if (fs.existsSync(source) && fs.statSync(source).isFile())
        uploads.push({ path: source, key: spec.key, ...(spec.render ? { render: spec.render } : {}) });
      else missing.push(`${spec.source}${hint}`);
    } else if (spec.kind === "dir") {
      const files = fs.existsSync(source)
        ? fs
            .readdirSync(source)
            .filter((name) => spec.pattern.test(name) && fs.statSync(path.join(source, name)).isFile())
            .sort()
        : [];
      if (files.length === 0) missing.push(`${spec.source}/*${hint}`);
      for (const name of files) uploads.push({ path: path.join(source, name), key: `${spec.prefix}${name}` });
    } else if (spec.kind === "views") {
      if (!fs.existsSync(source)) {
        missing.push(`${spec.source}/*.yml`);
        continue;
      }
      try {
        for (const view of compileViews(source))
          uploads.push({ body: view.body, key: `${spec.prefix}${view.name}` });
      } catch (error) {
        missing.push(`${spec.source}: ${error.message}`);
      }
    } else {
      const base = path.basename(source);
      const entries = fs.existsSync(source)
        ? listFilesRecursively(source)
            .map((file) => ({
              path: file,
              name: `${base}/${path.relative(source, file).split(path.sep).join("/")}`,
            }))
            .filter((entry) => !ZIP_EXCLUDED.test(entry.name.slice(base.length + 1)))
        : [];
      if (!entries.some((e) => e.name === `${base}/__init__.py`)) missing.push(`${spec.source}/__init__.py`);
      zips.push({ key: spec.key, entries });
    }
  }
  return { uploads, zips, missing };
}

/** A zip of the entries with fixed timestamps, so an unchanged package gives identical bytes. */
async function buildZip(entries) {
  const JSZip = require("jszip");
  const zip = new JSZip();
  const date = new Date("2000-01-01T00:00:00Z");
  // No folder entries: JSZip would stamp them with the build time, so two builds of the same files would
  // differ. zipimport finds a package by its __init__.py and needs none.
  for (const entry of entries)
    zip.file(entry.name, fs.readFileSync(entry.path), { date, createFolders: false });
  return zip.generateAsync({ type: "nodebuffer", compression: "DEFLATE", platform: "UNIX" });
}

/** Keys under the managed prefixes that the new upload does not contain. */
function staleKeys(existingKeys, uploadedKeys) {
  const keep = new Set(uploadedKeys);
  return existingKeys.filter((key) => MANAGED_PREFIXES.some((p) => key.startsWith(p)) && !keep.has(key));
}

async function listKeys(s3, bucket, prefix) {
  const { ListObjectsV2Command } = require("@aws-sdk/client-s3");
  const keys = [];
  let token;
  for (let page = 0; page < 100; page++) {
    const res = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const item of res.Contents ?? []) keys.push(item.Key);
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
    if (!token) break;
  }
  return keys;
}

async function deleteKeys(s3, bucket, keys) {
  const { DeleteObjectsCommand } = require("@aws-sdk/client-s3");
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000).map((Key) => ({ Key }));
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } }));
  }
}

/**
 * Uploads the selection to the bucket and removes stale managed keys; returns what it did.
 * `context.region` fills the templates (the driver profile).
 */
async function uploadArtifacts(s3, bucket, root, context) {
  const { PutObjectCommand } = require("@aws-sdk/client-s3");
  const selection = selectArtifacts(root);
  if (selection.missing.length > 0) {
    throw new Error(`Cannot upload the Spark job's artifacts; missing: ${selection.missing.join(", ")}`);
  }
  const uploaded = [];
  for (const file of selection.uploads) {
    const body =
      file.body ??
      (file.render
        ? file.render(fs.readFileSync(file.path, "utf8"), context ?? {})
        : fs.readFileSync(file.path));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: file.key, Body: body }));
    uploaded.push(file.key);
  }
  for (const zip of selection.zips) {
    const body = await buildZip(zip.entries);
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: zip.key, Body: body, ContentType: "application/zip" }),
    );
    uploaded.push(zip.key);
  }
  const existing = (await Promise.all(MANAGED_PREFIXES.map((p) => listKeys(s3, bucket, p)))).flat();
  const stale = staleKeys(existing, uploaded);
  await deleteKeys(s3, bucket, stale);
  return { uploaded, deleted: stale };
}

class UploadArtifactsPlugin {
  constructor(serverless, options, { log } = {}) {
    this.serverless = serverless;
    this.options = options;
    this.provider = serverless.getProvider("aws");
    this.log = log ?? { notice: console.log, warning: console.warn };
    this.commands = {
      "upload-artifacts": {
        usage: "Uploads the Spark job, jars, driver profile and feature views to the artifacts bucket",
        lifecycleEvents: ["upload"],
      },
    };
    this.hooks = {
      "after:deploy:deploy": () => this.upload(),
      "upload-artifacts:upload": () => this.upload(),
      "before:remove:remove": () => this.empty(),
    };
  }

  s3Client() {
    const { S3Client } = require("@aws-sdk/client-s3");
    const profile = this.options["aws-profile"] || process.env.AWS_PROFILE;
    return new S3Client({ region: this.provider.getRegion(), ...(profile ? { profile } : {}) });
  }

  async artifactsBucket() {
    try {
      const response = await this.provider.request("CloudFormation", "describeStacks", {
        StackName: this.provider.naming.getStackName(),
      });
      const outputs = response.Stacks?.[0]?.Outputs ?? [];
      return outputs.find((o) => o.OutputKey === "ArtifactsBucketName")?.OutputValue;
    } catch (error) {
      if (/does not exist/.test(String(error?.message))) return undefined;
      throw error;
    }
  }

  async upload() {
    const bucket = await this.artifactsBucket();
    if (!bucket) throw new Error("The stack has no ArtifactsBucketName output; deploy it first");
    const result = await uploadArtifacts(this.s3Client(), bucket, this.serverless.serviceDir, {
      region: this.provider.getRegion(),
    });
    this.log.notice(
      `Artifacts: ${result.uploaded.length} uploaded, ${result.deleted.length} stale removed, in s3://${bucket}/`,
    );
  }

  async empty() {
    const bucket = await this.artifactsBucket();
    if (!bucket) return;
    const s3 = this.s3Client();
    const keys = await listKeys(s3, bucket, "");
    await deleteKeys(s3, bucket, keys);
    this.log.notice(`Artifacts: emptied s3://${bucket}/ (${keys.length} objects) so the stack can delete it`);
  }
}

module.exports = UploadArtifactsPlugin;
module.exports.ARTIFACT_SOURCES = ARTIFACT_SOURCES;
module.exports.MANAGED_PREFIXES = MANAGED_PREFIXES;
module.exports.selectArtifacts = selectArtifacts;
module.exports.buildZip = buildZip;
module.exports.staleKeys = staleKeys;
module.exports.uploadArtifacts = uploadArtifacts;
