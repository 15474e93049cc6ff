// The deployable stack as CloudFormation: `sls package` runs offline (dummy credentials) and the
// template is checked with cfn-lint and against what the stack promises: private encrypted
// TLS-only buckets, the S3 -> ingest trigger, least-privilege IAM, the Keyspaces table of each
// feature view, an IAM-authorised API with provisioned concurrency, and small bundles.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import JSZip from "jszip";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFeatureViews } from "../../functions/commons/feature-view.js";
import { onlineColumns, tableLogicalId } from "../../functions/commons/online-schema.js";
import { localCassandraAuthEnv } from "../../scripts/cassandra/local-credentials.js";

const run = promisify(execFile);
const { RESOURCELESS_ACTIONS } = createRequire(resolve("package.json"))("./resources/iam.cjs") as {
  RESOURCELESS_ACTIONS: string[];
};
const views = loadFeatureViews("resources/feature-views");

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation JSON is untyped
type Json = Record<string, any>;
interface Packaged {
  dir: string;
  template: { Resources: Record<string, Json>; Outputs: Record<string, Json> };
}

const workDir = mkdtempSync(join(tmpdir(), "sfs-template-"));

/** Runs `sls package` into a fresh directory, one at a time (the build dirs are shared). */
async function slsPackage(name: string, args: string[]): Promise<Packaged> {
  const dir = join(workDir, name);
  await run("flock", ["/tmp/sfs-sls-package.lock", "npx", "sls", "package", "--package", dir, ...args], {
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: "offline-packaging",
      AWS_SECRET_ACCESS_KEY: "dummy-secret-for-offline-packaging",
      AWS_REGION: "eu-west-1",
      SLS_TELEMETRY_DISABLED: "1",
      SLS_NOTIFICATIONS_MODE: "off",
    },
    timeout: 240_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const template = JSON.parse(readFileSync(join(dir, "cloudformation-template-update-stack.json"), "utf8"));
  return { dir, template };
}

/** Flattens Fn::Join / Ref / GetAtt into a readable string, e.g. arn:<AWS::Partition>:s3:::x. */
function flat(value: unknown): string {
  if (typeof value === "string") return value;
  const v = value as Json;
  if (v?.Ref) return `<${v.Ref}>`;
  if (v?.["Fn::GetAtt"]) return `<${v["Fn::GetAtt"].join(".")}>`;
  if (v?.["Fn::Join"]) return v["Fn::Join"][1].map(flat).join(v["Fn::Join"][0]);
  return JSON.stringify(value);
}

function resourcesOfType(p: Packaged, type: string): Array<[string, Json]> {
  return Object.entries(p.template.Resources).filter(([, r]) => r.Type === type);
}

function statements(role: Json): Json[] {
  return role.Properties.Policies.flatMap((policy: Json) => policy.PolicyDocument.Statement);
}

function asList<T>(value: T | T[]): T[] {
  return Array.isArray(value) ? value : [value];
}

let ci: Packaged;
let prod: Packaged;

beforeAll(async () => {
  ci = await slsPackage("ci", ["--stage", "ci"]);
  prod = await slsPackage("prod", [
    "--stage",
    "ci",
    "--param",
    "provisionedConcurrency=2",
    "--param",
    "emrClusterId=j-1K48XXXXXXHCB",
  ]);
});

afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe("packaged template", () => {
  it("passes cfn-lint with no errors", async () => {
    for (const p of [ci, prod]) {
      const file = join(p.dir, "cloudformation-template-update-stack.json");
      const result = await run(".local/venv/bin/cfn-lint", ["--format", "parseable", file]).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
      );
      // cfn-lint's exit code is a bit set: 2 = errors, 4 = warnings, 8 = informational.
      const errors = result.out.split("\n").filter((line) => /:E\d{4}:/.test(line));
      expect(errors).toEqual([]);
      expect(result.code & 2).toBe(0);
    }
  });

  it("triggers ingest for raw/**.csv in the raw bucket only, without a dependency cycle", () => {
    const raw = ci.template.Resources.RawBucket as Json;
    expect(raw.Properties.NotificationConfiguration.LambdaConfigurations).toEqual([
      {
        Event: "s3:ObjectCreated:*",
        Function: { "Fn::GetAtt": ["IngestLambdaFunction", "Arn"] },
        Filter: {
          S3Key: {
            Rules: [
              { Name: "prefix", Value: "raw/" },
              { Name: "suffix", Value: ".csv" },
            ],
          },
        },
      },
    ]);
    expect(raw.DependsOn).toContain("IngestRawBucketInvokePermission");
    const permission = ci.template.Resources.IngestRawBucketInvokePermission as Json;
    expect(permission.Properties).toMatchObject({
      Principal: "s3.amazonaws.com",
      Action: "lambda:InvokeFunction",
    });
    expect(flat(permission.Properties.SourceArn)).toBe(
      "arn:<AWS::Partition>:s3:::feature-store-ci-raw-<AWS::AccountId>-<AWS::Region>",
    );
    // The function names its bucket by name, not by Ref, so it does not depend on the bucket.
    const env = (ci.template.Resources.IngestLambdaFunction as Json).Properties.Environment.Variables;
    expect(flat(env.RAW_BUCKET)).toBe("feature-store-ci-raw-<AWS::AccountId>-<AWS::Region>");
    // Events still failing after the retries are kept, not dropped.
    const invokeConfig = ci.template.Resources.IngestLambdaEvConf as Json;
    expect(invokeConfig.Properties).toMatchObject({
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { "Fn::GetAtt": ["IngestFailedEventsQueue", "Arn"] } } },
    });
  });

  it("keeps every bucket private, encrypted and reachable over TLS only; raw is versioned", () => {
    const buckets = resourcesOfType(ci, "AWS::S3::Bucket").filter(
      ([id]) => id !== "ServerlessDeploymentBucket",
    );
    expect(buckets.map(([id]) => id).sort()).toEqual(["ArtifactsBucket", "OfflineBucket", "RawBucket"]);
    const policies = resourcesOfType(ci, "AWS::S3::BucketPolicy").map(([, p]) => p.Properties);
    for (const [id, bucket] of buckets) {
      expect(bucket.Properties.PublicAccessBlockConfiguration, id).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      const sse = bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0];
      expect(["AES256", "aws:kms"], id).toContain(sse.ServerSideEncryptionByDefault.SSEAlgorithm);
      const policy = policies.find((p) => p.Bucket.Ref === id);
      expect(policy?.PolicyDocument.Statement, id).toContainEqual(
        expect.objectContaining({
          Effect: "Deny",
          Principal: "*",
          Action: "s3:*",
          Condition: { Bool: { "aws:SecureTransport": "false" } },
        }),
      );
    }
    const raw = (ci.template.Resources.RawBucket as Json).Properties;
    expect(raw.VersioningConfiguration).toEqual({ Status: "Enabled" });
    expect(raw.LifecycleConfiguration.Rules).toContainEqual(
      expect.objectContaining({ Prefix: "quarantine/", ExpirationInDays: 90, Status: "Enabled" }),
    );
    expect((ci.template.Resources.RawBucket as Json).DeletionPolicy).toBe("Retain");
    expect((ci.template.Resources.OfflineBucket as Json).DeletionPolicy).toBe("Retain");
  });

  it("gives every function its own role and uses '*' only for actions without resource-level permissions", () => {
    expect(ci.template.Resources.IamRoleLambdaExecution).toBeUndefined();
    for (const [fn, role] of [
      ["IngestLambdaFunction", "IngestRole"],
      ["SubmitLambdaFunction", "SubmitRole"],
      ["GetFeaturesLambdaFunction", "GetFeaturesRole"],
    ]) {
      expect((ci.template.Resources[fn as string] as Json).Properties.Role).toEqual({
        "Fn::GetAtt": [role, "Arn"],
      });
    }
    for (const p of [ci, prod]) {
      for (const [id, role] of resourcesOfType(p, "AWS::IAM::Role")) {
        for (const statement of statements(role)) {
          expect(statement.Effect, id).toBe("Allow");
          const actions = asList(statement.Action as string | string[]);
          expect(
            actions.some((a) => a.endsWith(":*") || a === "*"),
            `${id} ${statement.Sid}`,
          ).toBe(false);
          if (asList(statement.Resource).includes("*")) {
            expect(RESOURCELESS_ACTIONS, `${id} ${statement.Sid}`).toEqual(expect.arrayContaining(actions));
          }
        }
      }
    }
  });

  it("limits PassRole to the two EMR roles, and only where a transient cluster is started", () => {
    const passRoles = (p: Packaged) =>
      resourcesOfType(p, "AWS::IAM::Role").flatMap(([id, role]) =>
        statements(role)
          .filter((s) => asList(s.Action).includes("iam:PassRole"))
          .map((s) => [id, asList(s.Resource).map(flat).sort()]),
      );
    const both = ["<EmrInstanceRole.Arn>", "<EmrServiceRole.Arn>"];
    expect(passRoles(ci)).toEqual([
      ["IngestRole", both],
      ["SubmitRole", both],
      ["EmrServiceRole", ["<EmrInstanceRole.Arn>"]],
    ]);
    // With a configured cluster, functions add steps to that cluster only and pass no role.
    expect(passRoles(prod)).toEqual([["EmrServiceRole", ["<EmrInstanceRole.Arn>"]]]);
    for (const id of ["IngestRole", "SubmitRole"]) {
      const emr = statements(prod.template.Resources[id] as Json).filter((s) =>
        asList(s.Action).some((a: string) => a.startsWith("elasticmapreduce:")),
      );
      expect(emr.map((s) => [s.Action, asList(s.Resource).map(flat)])).toEqual([
        [
          ["elasticmapreduce:AddJobFlowSteps", "elasticmapreduce:ListSteps"],
          ["arn:<AWS::Partition>:elasticmapreduce:<AWS::Region>:<AWS::AccountId>:cluster/j-1K48XXXXXXHCB"],
        ],
      ]);
    }
  });

  it("lets ingest read raw/, write quarantine/ and its claims, and nothing else in S3", () => {
    const s3 = statements(ci.template.Resources.IngestRole as Json)
      .filter((s) => asList(s.Action).some((a: string) => a.startsWith("s3:")))
      .map((s) => [asList(s.Action).join(","), asList(s.Resource).map(flat).join(",")]);
    expect(s3).toEqual([
      [
        "s3:GetObject,s3:GetObjectVersion",
        "arn:<AWS::Partition>:s3:::feature-store-ci-raw-<AWS::AccountId>-<AWS::Region>/raw/*",
      ],
      [
        "s3:PutObject",
        "arn:<AWS::Partition>:s3:::feature-store-ci-raw-<AWS::AccountId>-<AWS::Region>/quarantine/*",
      ],
      [
        "s3:GetObject,s3:PutObject,s3:DeleteObject",
        "arn:<AWS::Partition>:s3:::feature-store-ci-artifacts-<AWS::AccountId>-<AWS::Region>/ingest-claims/*",
      ],
    ]);
  });

  it("lets the EMR instances read raw/ and labels/ (training-set events), the job's artifacts, and the offline bucket", () => {
    const bucket = (purpose: string, suffix = "") =>
      `arn:<AWS::Partition>:s3:::feature-store-ci-${purpose}-<AWS::AccountId>-<AWS::Region>${suffix}`;
    const s3 = statements(ci.template.Resources.EmrInstanceRole as Json)
      .filter((s) => asList(s.Action).some((a: string) => a.startsWith("s3:")))
      .map((s) => [asList(s.Action).join(","), asList(s.Resource).map(flat).join(",")]);
    expect(s3).toEqual([
      ["s3:ListBucket", [bucket("raw"), bucket("offline"), bucket("artifacts")].join(",")],
      ["s3:GetObject", bucket("raw", "/raw/*")],
      ["s3:GetObject", bucket("raw", "/labels/*")],
      ["s3:GetObject", [bucket("artifacts", "/spark/*"), bucket("artifacts", "/feature-views/*")].join(",")],
      ["s3:PutObject", bucket("artifacts", "/emr-logs/*")],
      // Delta tables, training sets (training-sets/*) and their manifests.
      ["s3:GetObject,s3:PutObject,s3:DeleteObject", bucket("offline", "/*")],
    ]);
  });

  it("lets getFeatures and the EMR instances reach exactly the feature tables and the system keyspaces", () => {
    const arn = (suffix: string) => `arn:<AWS::Partition>:cassandra:<AWS::Region>:<AWS::AccountId>:${suffix}`;
    const tables = [...views.values()].map((v) => arn(`/keyspace/feature_store/table/${v.onlineTable}`));
    const cassandra = (id: string) =>
      statements(ci.template.Resources[id] as Json)
        .filter((s) => asList(s.Action).some((a: string) => a.startsWith("cassandra:")))
        .map((s) => [asList(s.Action).join(","), asList(s.Resource).map(flat)]);
    expect(cassandra("GetFeaturesRole")).toEqual([
      ["cassandra:Select", tables],
      ["cassandra:Select", [arn("/keyspace/system*")]],
    ]);
    expect(cassandra("EmrInstanceRole")).toEqual([
      ["cassandra:Select,cassandra:Modify", tables],
      ["cassandra:Select", [arn("/keyspace/system*")]],
    ]);
  });

  it("creates one Keyspaces table per feature view with exactly the view's online columns", () => {
    for (const view of views.values()) {
      const table = (ci.template.Resources[tableLogicalId(view)] as Json).Properties;
      const columns = [...table.PartitionKeyColumns, ...table.RegularColumns].map((c: Json) => ({
        name: c.ColumnName,
        cqlType: c.ColumnType,
      }));
      expect(columns).toEqual(onlineColumns(view));
      expect(table.TableName).toBe(view.onlineTable);
    }
  });

  it("serves getFeatures behind AWS_IAM routes, with provisioned concurrency when configured", () => {
    const routes = resourcesOfType(ci, "AWS::ApiGatewayV2::Route").map(([, r]) => r.Properties);
    expect(routes.length).toBeGreaterThanOrEqual(2);
    for (const route of routes) expect(route.AuthorizationType, route.RouteKey).toBe("AWS_IAM");
    const aliases = resourcesOfType(prod, "AWS::Lambda::Alias").map(([, a]) => a.Properties);
    expect(aliases).toContainEqual(
      expect.objectContaining({
        FunctionName: { Ref: "GetFeaturesLambdaFunction" },
        ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 2 },
      }),
    );
  });

  it("outputs the API URL, bucket names, keyspace and table names", () => {
    expect(Object.keys(ci.template.Outputs)).toEqual(
      expect.arrayContaining([
        "HttpApiUrl",
        "FeaturesApiUrl",
        "RawBucketName",
        "OfflineBucketName",
        "ArtifactsBucketName",
        "KeyspaceName",
        ...[...views.values()].map((v) => `${tableLogicalId(v)}Name`),
      ]),
    );
  });

  it("keeps each function bundle under 2 MB", () => {
    for (const fn of ["getFeatures", "ingest", "submit"]) {
      const size = statSync(join(ci.dir, `${fn}.zip`)).size;
      expect(size, `${fn}.zip is ${size} bytes`).toBeLessThan(2 * 1024 * 1024);
    }
  });

  it("ships getFeatures as an ES module whose init waits for the Cassandra session, then serves", async () => {
    // Provisioned concurrency is only warm if init ends with the session open: the bundle's
    // top-level await must hold the import until connect settles. Run the real bundle on Node.
    const unpacked = join(workDir, "getFeatures-unpacked");
    const zip = await JSZip.loadAsync(readFileSync(join(ci.dir, "getFeatures.zip")));
    for (const [name, entry] of Object.entries(zip.files)) {
      if (entry.dir) continue;
      mkdirSync(dirname(join(unpacked, name)), { recursive: true });
      writeFileSync(join(unpacked, name), await entry.async("nodebuffer"));
    }
    const handlerPath = ci.template.Resources.GetFeaturesLambdaFunction?.Properties.Handler;
    expect(handlerPath).toBe("functions/get-features/warm-handler.handler");
    const probe = `
      const m = await import(${JSON.stringify(join(unpacked, "functions/get-features/warm-handler.mjs"))});
      const state = await Promise.race([
        m.connected.then((ok) => (ok ? "connected" : "unreachable")),
        new Promise((r) => setImmediate(() => r("pending"))),
      ]);
      const event = { version: "2.0", rawPath: "/features/energy/no-such-household-0", rawQueryString: "",
        headers: {}, requestContext: { requestId: "probe", http: { method: "GET", path: "/features/energy/no-such-household-0" } },
        pathParameters: { view: "energy", entityId: "no-such-household-0" }, isBase64Encoded: false };
      const res = await m.handler(event, { awsRequestId: "probe", functionName: "getFeatures", getRemainingTimeInMillis: () => 5000 });
      process.stdout.write("PROBE " + JSON.stringify({ state, status: res.statusCode }) + "\\n");
      process.exit(0);`;
    const { stdout } = await run("node", ["--input-type=module", "-e", probe], {
      cwd: unpacked,
      env: {
        ...process.env,
        LAMBDA_TASK_ROOT: unpacked,
        ONLINE_STORE: "cassandra",
        // The local node requires the project's login (Keyspaces would take SigV4 instead).
        ...localCassandraAuthEnv(),
        KEYSPACE: "feature_store",
        FEATURE_VIEWS_DIR: "resources/feature-views",
        POWERTOOLS_LOG_LEVEL: "ERROR",
      },
      timeout: 60_000,
    });
    const line = stdout.split("\n").find((l) => l.startsWith("PROBE "));
    // 404: a real read reached the table and found no such entity (a cold session would be 503).
    expect(JSON.parse(line?.slice("PROBE ".length) ?? "{}")).toEqual({ state: "connected", status: 404 });
  });
});
