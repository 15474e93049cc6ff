// The deployable stack as CloudFormation: `sls package` runs offline (dummy credentials) and the
// template is checked with cfn-lint and against what the stack promises: private encrypted
// TLS-only buckets, the S3 -> ingest trigger, least-privilege IAM, the Keyspaces table of each
// feature view, an IAM-authorised API with provisioned concurrency, small bundles, and the run
// orchestration's stack side: the run ledger, the EMR event rules, alerts, alarms and dashboard.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import JSZip from "jszip";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { onlineColumns, tableLogicalId } from "#commons/online-schema.js";
import { localCassandraAuthEnv } from "#scripts/cassandra/local-credentials.js";

const run = promisify(execFile);
const { RESOURCELESS_ACTIONS, LEDGER_READ_ACTIONS, LEDGER_WRITE_ACTIONS } = createRequire(
  resolve("package.json"),
)("./resources/iam.cjs") as {
  RESOURCELESS_ACTIONS: string[];
  LEDGER_READ_ACTIONS: string[];
  LEDGER_WRITE_ACTIONS: string[];
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
  try {
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
  } catch (error) {
    // execFile's message names only the command: say what sls printed.
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`sls package ${args.join(" ")} failed:\n${stderr ?? ""}\n${(stdout ?? "").slice(-4000)}`);
  }
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
    "--param",
    "alertEmail=ops@example.com",
    "--param",
    "stalenessAlarmHours=24",
    "--param",
    "latencyAlarmP99Ms=30",
    "--param",
    "maxRunAttempts=5",
    // As in prod: the customer-managed key (serverless.yml turns it on for the prod stage) and the
    // account's S3 access-log bucket.
    "--param",
    "customerManagedKey=true",
    "--param",
    "accessLogsBucket=acme-s3-access-logs",
    "--param",
    "ingestReservedConcurrency=20",
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
      ["RunEventsLambdaFunction", "RunEventsRole"],
      ["StatusLambdaFunction", "StatusRole"],
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
      ["RunEventsRole", both],
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

  it("lets ingest read raw/, write quarantine/, staging/ and runs' arguments manifests, and nothing else in S3", () => {
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
        "s3:PutObject",
        "arn:<AWS::Partition>:s3:::feature-store-ci-raw-<AWS::AccountId>-<AWS::Region>/staging/*",
      ],
      // A run whose inputs would pass EMR's 10,240 step characters passes them in this manifest.
      [
        "s3:PutObject",
        "arn:<AWS::Partition>:s3:::feature-store-ci-offline-<AWS::AccountId>-<AWS::Region>/runs/*/arguments.json",
      ],
    ]);
  });

  it("lets the EMR instances read raw/, staging/ and labels/ (training-set events), the job's artifacts, and the offline bucket", () => {
    const bucket = (purpose: string, suffix = "") =>
      `arn:<AWS::Partition>:s3:::feature-store-ci-${purpose}-<AWS::AccountId>-<AWS::Region>${suffix}`;
    const s3 = statements(ci.template.Resources.EmrInstanceRole as Json)
      .filter((s) => asList(s.Action).some((a: string) => a.startsWith("s3:")))
      .map((s) => [asList(s.Action).join(","), asList(s.Resource).map(flat).join(",")]);
    expect(s3).toEqual([
      ["s3:ListBucket", [bucket("raw"), bucket("offline"), bucket("artifacts")].join(",")],
      ["s3:GetObject", bucket("raw", "/raw/*")],
      // Staged copies: the exact object versions ingest checked.
      ["s3:GetObject", bucket("raw", "/staging/*")],
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

  it("creates one Keyspaces table per feature view with exactly the view's online columns and client-side timestamps", () => {
    for (const view of views.values()) {
      const table = (ci.template.Resources[tableLogicalId(view)] as Json).Properties;
      const columns = [...table.PartitionKeyColumns, ...table.RegularColumns].map((c: Json) => ({
        name: c.ColumnName,
        cqlType: c.ColumnType,
      }));
      expect(columns).toEqual(onlineColumns(view));
      expect(table.TableName).toBe(view.onlineTable);
      // The job writes USING TIMESTAMP, which Keyspaces accepts only on such tables (AWS_CONTRACTS K2).
      expect(table.ClientSideTimestampsEnabled).toBe(true);
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
        "RunLedgerTableName",
        "AlertsTopicArn",
        "DashboardUrl",
        ...[...views.values()].map((v) => `${tableLogicalId(v)}Name`),
      ]),
    );
  });

  it("keeps each function bundle under 2 MB", () => {
    for (const fn of ["getFeatures", "ingest", "submit", "runEvents", "status"]) {
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

describe("run orchestration in the packaged template", () => {
  const viewNames = [...views.keys()].sort();
  const fnEnv = (p: Packaged, fn: string): Json =>
    (p.template.Resources[fn] as Json).Properties.Environment.Variables;
  const alarms = (p: Packaged) =>
    resourcesOfType(p, "AWS::CloudWatch::Alarm").map(([id, a]) => [id, a.Properties]);
  const rulesTargeting = (p: Packaged, fn: string) =>
    resourcesOfType(p, "AWS::Events::Rule").filter(([, r]) =>
      r.Properties.Targets.some(
        (t: Json) => JSON.stringify(t.Arn) === JSON.stringify({ "Fn::GetAtt": [fn, "Arn"] }),
      ),
    );
  const pascal = (name: string) =>
    name
      .split(/[^A-Za-z0-9]+/)
      .filter(Boolean)
      .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
      .join("");

  it("keeps the run ledger in one retained, encrypted, recoverable on-demand table with pk/sk and a TTL", () => {
    const table = ci.template.Resources.RunLedgerTable as Json;
    expect(table.Type).toBe("AWS::DynamoDB::Table");
    expect(table.DeletionPolicy).toBe("Retain");
    expect(table.UpdateReplacePolicy).toBe("Retain");
    expect(table.Properties).toMatchObject({
      TableName: "feature-store-ci-run-ledger",
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      AttributeDefinitions: [
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "S" },
      ],
      BillingMode: "PAY_PER_REQUEST",
      TimeToLiveSpecification: { AttributeName: "expiresAt", Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
    });
    expect(table.Properties.ProvisionedThroughput).toBeUndefined();
    for (const fn of [
      "IngestLambdaFunction",
      "SubmitLambdaFunction",
      "RunEventsLambdaFunction",
      "StatusLambdaFunction",
    ]) {
      expect(fnEnv(ci, fn).RUN_LEDGER_TABLE, fn).toEqual({ Ref: "RunLedgerTable" });
    }
    expect(fnEnv(ci, "GetFeaturesLambdaFunction").RUN_LEDGER_TABLE).toBeUndefined();
  });

  it("gives runEvents the feature-job environment, the alerts topic and the run limits from params", () => {
    const env = fnEnv(ci, "RunEventsLambdaFunction");
    expect(env).toMatchObject({
      ALERTS_TOPIC_ARN: { Ref: "AlertsTopic" },
      MAX_RUN_ATTEMPTS: "3",
      RUN_TIMEOUT_MINUTES: "120",
      MAX_FILES_PER_RUN: "100",
      EMR_CLUSTER_ID: "",
      EMR_SERVICE_ROLE: { Ref: "EmrServiceRole" },
      STACK_NAME: "feature-store-ci",
    });
    // Every feature-job setting ingest has, runEvents has too: it starts the next batch itself.
    const ingest = fnEnv(ci, "IngestLambdaFunction");
    for (const [name, value] of Object.entries(ingest)) expect(env[name], name).toEqual(value);
    expect(fnEnv(prod, "RunEventsLambdaFunction")).toMatchObject({
      MAX_RUN_ATTEMPTS: "5",
      EMR_CLUSTER_ID: "j-1K48XXXXXXHCB",
    });
    expect(fnEnv(ci, "StatusLambdaFunction").ALERTS_TOPIC_ARN).toBeUndefined();
  });

  it("invokes runEvents on feature-job step events, on its clusters' state changes and every 5 minutes", () => {
    const rules = rulesTargeting(ci, "RunEventsLambdaFunction").map(([id, r]) => [id, r.Properties]);
    const patterns = rules.map(([, r]) => r.EventPattern).filter(Boolean);
    expect(patterns).toEqual(
      expect.arrayContaining([
        {
          source: ["aws.emr"],
          "detail-type": ["EMR Step Status Change"],
          detail: { name: [{ prefix: "feature-job " }] },
        },
        {
          source: ["aws.emr"],
          "detail-type": ["EMR Cluster State Change"],
          // Transient clusters are named "<stack> <view> <runId>": only this stage's clusters.
          detail: { name: [{ prefix: "feature-store-ci " }] },
        },
      ]),
    );
    expect(rules.map(([, r]) => r.ScheduleExpression).filter(Boolean)).toEqual(["rate(5 minutes)"]);
    expect(rules).toHaveLength(3);
    for (const [, rule] of rules) expect(rule.State ?? "ENABLED").toBe("ENABLED");
    // Each rule may invoke the function: a permission for events.amazonaws.com from that rule.
    const permissions = resourcesOfType(ci, "AWS::Lambda::Permission").map(([, p]) => p.Properties);
    const invokers = permissions
      .filter(
        (p) =>
          p.Action === "lambda:InvokeFunction" &&
          p.Principal === "events.amazonaws.com" &&
          flat(p.FunctionName) === "<RunEventsLambdaFunction.Arn>",
      )
      .map((p) => flat(p.SourceArn));
    // The framework names a rule's ARN by GetAtt (schedules) or by its name (EventBridge rules).
    expect(invokers.sort()).toEqual(
      rules
        .map(([id, r]) =>
          r.ScheduleExpression
            ? `<${id}.Arn>`
            : `arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/${r.Name}`,
        )
        .sort(),
    );
    expect(
      rules
        .map(([, r]) => r.Name)
        .filter(Boolean)
        .sort(),
    ).toEqual(["feature-store-ci-emr-clusters", "feature-store-ci-emr-steps"]);
    // On a configured cluster, the rules keep to that cluster.
    const prodPatterns = rulesTargeting(prod, "RunEventsLambdaFunction")
      .map(([, r]) => r.Properties.EventPattern)
      .filter(Boolean);
    expect(prodPatterns).toEqual(
      expect.arrayContaining([
        {
          source: ["aws.emr"],
          "detail-type": ["EMR Step Status Change"],
          detail: { name: [{ prefix: "feature-job " }], clusterId: ["j-1K48XXXXXXHCB"] },
        },
        {
          source: ["aws.emr"],
          "detail-type": ["EMR Cluster State Change"],
          detail: { clusterId: ["j-1K48XXXXXXHCB"] },
        },
      ]),
    );
    // status is invoked by hand only.
    expect(rulesTargeting(ci, "StatusLambdaFunction")).toEqual([]);
    expect(
      permissions.filter((p) => JSON.stringify(p.FunctionName).includes("StatusLambdaFunction")),
    ).toEqual([]);
  });

  it("sends alerts to a topic encrypted with a stack key CloudWatch may use, with an optional e-mail subscription", () => {
    const topic = (ci.template.Resources.AlertsTopic as Json).Properties;
    expect(topic.KmsMasterKeyId).toEqual({ "Fn::GetAtt": ["AlertsKey", "Arn"] });
    const key = (ci.template.Resources.AlertsKey as Json).Properties;
    expect(key.EnableKeyRotation).toBe(true);
    expect(key.KeyPolicy.Statement).toContainEqual(
      expect.objectContaining({
        Effect: "Allow",
        Principal: { Service: "cloudwatch.amazonaws.com" },
        Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
      }),
    );
    const topicPolicy = resourcesOfType(ci, "AWS::SNS::TopicPolicy").map(([, p]) => p.Properties);
    expect(topicPolicy).toHaveLength(1);
    const statementsOfTopic = topicPolicy[0]?.PolicyDocument.Statement as Json[];
    const publish = statementsOfTopic.find((st) => st.Effect === "Allow");
    expect(publish?.Principal).toEqual({ Service: "cloudwatch.amazonaws.com" });
    expect(flat(publish?.Condition.ArnLike["aws:SourceArn"])).toBe(
      "arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:feature-store-ci-*",
    );
    expect(statementsOfTopic).toContainEqual(
      expect.objectContaining({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
    );
    // Empty alertEmail (the default): no subscription; with an address: one e-mail subscription.
    expect(resourcesOfType(ci, "AWS::SNS::Subscription")).toEqual([]);
    expect(resourcesOfType(prod, "AWS::SNS::Subscription").map(([, s]) => s.Properties)).toEqual([
      { TopicArn: { Ref: "AlertsTopic" }, Protocol: "email", Endpoint: "ops@example.com" },
    ]);
  });

  it("alarms to the topic on failed runs, quarantined files and stale features of every view", () => {
    // The alarms match the dimensions Powertools emits: service (the functions' service name) + view.
    const service = fnEnv(ci, "RunEventsLambdaFunction").POWERTOOLS_SERVICE_NAME ?? "";
    expect(service).toBe("feature-store-ci");
    expect(fnEnv(ci, "IngestLambdaFunction").POWERTOOLS_SERVICE_NAME).toBe(service);
    expect(fnEnv(ci, "RunEventsLambdaFunction").POWERTOOLS_METRICS_NAMESPACE).toBe("FeatureStore");
    for (const [p, staleHours] of [
      [ci, 48],
      [prod, 24],
    ] as const) {
      const byId = Object.fromEntries(alarms(p)) as Record<string, Json>;
      for (const view of viewNames) {
        const dims = [
          { Name: "service", Value: service },
          { Name: "view", Value: view },
        ];
        const common = {
          Namespace: "FeatureStore",
          Dimensions: dims,
          AlarmActions: [{ Ref: "AlertsTopic" }],
          ActionsEnabled: true,
        };
        expect(byId[`${pascal(view)}RunsFailedAlarm`]).toMatchObject({
          ...common,
          MetricName: "RunsFailed",
          Statistic: "Sum",
          Period: 300,
          EvaluationPeriods: 1,
          Threshold: 1,
          ComparisonOperator: "GreaterThanOrEqualToThreshold",
          TreatMissingData: "notBreaching",
        });
        expect(byId[`${pascal(view)}FilesQuarantinedAlarm`]).toMatchObject({
          ...common,
          MetricName: "FilesQuarantined",
          Statistic: "Sum",
          Threshold: 1,
          ComparisonOperator: "GreaterThanOrEqualToThreshold",
          TreatMissingData: "notBreaching",
        });
        expect(byId[`${pascal(view)}StaleFeaturesAlarm`]).toMatchObject({
          ...common,
          MetricName: "FeatureDataAgeHours",
          Statistic: "Maximum",
          Threshold: staleHours,
          ComparisonOperator: "GreaterThanThreshold",
          // A pipeline that stops reporting is stale too.
          TreatMissingData: "breaching",
        });
      }
    }
  });

  it("alarms on the failed-events queue, the getFeatures 5xx rate and its p99 latency", () => {
    const byId = Object.fromEntries(alarms(ci)) as Record<string, Json>;
    expect(byId.IngestFailedEventsAlarm).toMatchObject({
      Namespace: "AWS/SQS",
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": ["IngestFailedEventsQueue", "QueueName"] } }],
      Threshold: 1,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
      AlarmActions: [{ Ref: "AlertsTopic" }],
    });
    // 5xx as callers see them: the HTTP API's 5xx over its requests (a handled 503 is no Lambda error).
    const rate = byId.GetFeaturesErrorRateAlarm as Json;
    const api = [{ Name: "ApiId", Value: { Ref: "HttpApi" } }];
    expect(rate.Metrics).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Id: "errors",
          MetricStat: expect.objectContaining({
            Metric: { Namespace: "AWS/ApiGateway", MetricName: "5xx", Dimensions: api },
            Stat: "Sum",
          }),
        }),
        expect.objectContaining({
          Id: "requests",
          MetricStat: expect.objectContaining({
            Metric: { Namespace: "AWS/ApiGateway", MetricName: "Count", Dimensions: api },
            Stat: "Sum",
          }),
        }),
        expect.objectContaining({
          Expression: "IF(requests > 0, 100 * errors / requests, 0)",
          ReturnData: true,
        }),
      ]),
    );
    expect(rate).toMatchObject({
      Threshold: 1,
      ComparisonOperator: "GreaterThanThreshold",
      AlarmActions: [{ Ref: "AlertsTopic" }],
    });
    for (const [p, ms] of [
      [ci, 50],
      [prod, 30],
    ] as const) {
      const latency = (Object.fromEntries(alarms(p)) as Record<string, Json>).GetFeaturesLatencyAlarm;
      expect(latency).toMatchObject({
        Namespace: "AWS/ApiGateway",
        MetricName: "Latency",
        Dimensions: api,
        ExtendedStatistic: "p99",
        Threshold: ms,
        ComparisonOperator: "GreaterThanThreshold",
        AlarmActions: [{ Ref: "AlertsTopic" }],
      });
    }
    // Exactly these alarms: three per view and three for the stack, all notifying the topic.
    expect(alarms(ci)).toHaveLength(3 * viewNames.length + 3);
    for (const [id, alarm] of alarms(ci)) expect(alarm.AlarmActions, id).toEqual([{ Ref: "AlertsTopic" }]);
  });

  it("builds one dashboard that names every view, shows the run, serving, ingest and EMR metrics and every alarm", () => {
    const dashboards = resourcesOfType(ci, "AWS::CloudWatch::Dashboard").map(([, d]) => d.Properties);
    expect(dashboards).toHaveLength(1);
    const body = flat(dashboards[0]?.DashboardBody);
    const parsed = JSON.parse(body) as { widgets: Json[] };
    const text = JSON.stringify(parsed);
    for (const view of viewNames) expect(text).toContain(`"view","${view}"`);
    for (const metric of ["RunsFailed", "RunsSucceeded", "FilesQuarantined", "FeatureDataAgeHours"]) {
      expect(text).toContain(`"FeatureStore","${metric}"`);
    }
    expect(text).toContain('"AWS/ApiGateway","Latency","ApiId","<HttpApi>"');
    expect(text).toContain(
      '"AWS/SQS","ApproximateNumberOfMessagesVisible","QueueName","<IngestFailedEventsQueue.QueueName>"',
    );
    expect(text).toContain('"FunctionName","feature-store-ci-ingest"');
    expect(text).toContain("AWS/ElasticMapReduce");
    const alarmWidget = parsed.widgets.find((w) => w.type === "alarm");
    expect([...((alarmWidget?.properties.alarms ?? []) as string[])].sort()).toEqual(
      alarms(ci)
        .map(([id]) => `<${id}.Arn>`)
        .sort(),
    );
  });

  it("gives runEvents and status least-privilege roles: named resources, '*' only where EMR and CloudWatch allow nothing else", () => {
    const bucket = (purpose: string, suffix = "") =>
      `arn:<AWS::Partition>:s3:::feature-store-ci-${purpose}-<AWS::AccountId>-<AWS::Region>${suffix}`;
    const cluster = (id: string) =>
      `arn:<AWS::Partition>:elasticmapreduce:<AWS::Region>:<AWS::AccountId>:cluster/${id}`;
    const summary = (p: Packaged, roleId: string) =>
      statements(p.template.Resources[roleId] as Json).map((st) => [
        st.Sid,
        asList(st.Action),
        asList(st.Resource).map(flat),
        st.Condition ?? null,
      ]);
    const logsAndTraces = (fn: string) => [
      [
        "WriteOwnLogs",
        ["logs:CreateLogStream", "logs:PutLogEvents"],
        [
          `arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/lambda/feature-store-ci-${fn}:*`,
        ],
        null,
      ],
      ["WriteTraces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"], null],
    ];
    expect(summary(ci, "StatusRole")).toEqual([
      ...logsAndTraces("status"),
      ["ReadRunLedger", LEDGER_READ_ACTIONS, ["<RunLedgerTable.Arn>"], null],
    ]);
    // Read-only means read-only.
    expect(LEDGER_READ_ACTIONS.every((a) => /^dynamodb:(Get|BatchGet|Query)/.test(a))).toBe(true);
    const passRoles = [
      "PassEmrRoles",
      ["iam:PassRole"],
      ["<EmrServiceRole.Arn>", "<EmrInstanceRole.Arn>"],
      { StringEquals: { "iam:PassedToService": ["elasticmapreduce.amazonaws.com", "ec2.amazonaws.com"] } },
    ];
    const writeManifests = [
      "WriteArgumentsManifests",
      ["s3:PutObject"],
      [bucket("offline", "/runs/*/arguments.json")],
      null,
    ];
    const runEventsCommon = [
      writeManifests,
      ["ReadRunSummaries", ["s3:GetObject"], [bucket("offline", "/runs/*")], null],
      ["PublishAlerts", ["sns:Publish"], ["<AlertsTopic>"], null],
      ["EncryptAlerts", ["kms:GenerateDataKey*", "kms:Decrypt"], ["<AlertsKey.Arn>"], null],
      [
        "PutFeatureStoreMetrics",
        ["cloudwatch:PutMetricData"],
        ["*"],
        { StringEquals: { "cloudwatch:namespace": "FeatureStore" } },
      ],
    ];
    expect(summary(ci, "RunEventsRole")).toEqual([
      ...logsAndTraces("runEvents"),
      ["ReadWriteRunLedger", LEDGER_WRITE_ACTIONS, ["<RunLedgerTable.Arn>"], null],
      ["StartTransientCluster", ["elasticmapreduce:RunJobFlow"], ["*"], null],
      ["ListTransientClusters", ["elasticmapreduce:ListClusters"], ["*"], null],
      [
        "TagTransientCluster",
        ["elasticmapreduce:AddTags", "elasticmapreduce:PutAutoTerminationPolicy"],
        [cluster("*")],
        null,
      ],
      [
        "DescribeTransientClusters",
        ["elasticmapreduce:ListSteps", "elasticmapreduce:DescribeStep", "elasticmapreduce:DescribeCluster"],
        [cluster("*")],
        null,
      ],
      passRoles,
      // Cancelling, terminating and adding steps only on clusters tagged with one of the views.
      [
        "StopFeatureJobClusters",
        [
          "elasticmapreduce:AddJobFlowSteps",
          "elasticmapreduce:CancelSteps",
          "elasticmapreduce:TerminateJobFlows",
        ],
        [cluster("*")],
        { StringEquals: { "elasticmapreduce:ResourceTag/feature-store:view": viewNames } },
      ],
      ...runEventsCommon,
    ]);
    // With a configured cluster: that cluster only, no RunJobFlow, no PassRole, never TerminateJobFlows.
    expect(summary(prod, "RunEventsRole")).toEqual([
      ...logsAndTraces("runEvents"),
      ["ReadWriteRunLedger", LEDGER_WRITE_ACTIONS, ["<RunLedgerTable.Arn>"], null],
      [
        "RunStepsOnFeatureCluster",
        [
          "elasticmapreduce:AddJobFlowSteps",
          "elasticmapreduce:ListSteps",
          "elasticmapreduce:DescribeStep",
          "elasticmapreduce:CancelSteps",
          "elasticmapreduce:DescribeCluster",
        ],
        [cluster("j-1K48XXXXXXHCB")],
        null,
      ],
      ...runEventsCommon,
    ]);
    // ingest and submit write the ledger too, on the table only, and may find a crashed starter's cluster.
    for (const roleId of ["IngestRole", "SubmitRole"]) {
      const role = summary(ci, roleId);
      expect(role, roleId).toContainEqual([
        "ReadWriteRunLedger",
        LEDGER_WRITE_ACTIONS,
        ["<RunLedgerTable.Arn>"],
        null,
      ]);
      expect(role, roleId).toContainEqual([
        "ListTransientClusters",
        ["elasticmapreduce:ListClusters"],
        ["*"],
        null,
      ]);
      expect(role, roleId).toContainEqual(writeManifests);
      expect(
        role.filter(([, actions]) => (actions as string[]).includes("elasticmapreduce:TerminateJobFlows")),
        roleId,
      ).toEqual([]);
    }
    // No DynamoDB action anywhere on anything but the ledger table.
    for (const p of [ci, prod]) {
      for (const [id, role] of resourcesOfType(p, "AWS::IAM::Role")) {
        for (const st of statements(role)) {
          if (asList(st.Action).some((a: string) => a.startsWith("dynamodb:"))) {
            expect(asList(st.Resource).map(flat), `${id} ${st.Sid}`).toEqual(["<RunLedgerTable.Arn>"]);
          }
        }
      }
    }
  });
});

// checkov (docs/DEPLOY.md "Security"): CHECKOV_BIN points at another install than the project's.
const CHECKOV = process.env.CHECKOV_BIN ?? ".local/venv/bin/checkov";

interface CheckovResult {
  check_id: string;
  resource: string;
  check_result: { result: string; suppress_comment?: string };
}

async function checkov(
  file: string,
): Promise<{ passed: number; failed: CheckovResult[]; skipped: CheckovResult[] }> {
  // Exit code 1 means failed checks; the report on stdout is what the test reads either way.
  const stdout = await run(CHECKOV, ["-f", file, "--framework", "cloudformation", "-o", "json"], {
    maxBuffer: 64 * 1024 * 1024,
    timeout: 180_000,
  }).then(
    (r) => r.stdout,
    (e: { stdout?: string; stderr?: string }) => {
      if (!e.stdout) throw new Error(`checkov printed no report: ${e.stderr ?? ""}`);
      return e.stdout;
    },
  );
  const parsed = JSON.parse(stdout);
  const report = Array.isArray(parsed) ? parsed[0] : parsed;
  return {
    passed: report.results.passed_checks.length,
    failed: report.results.failed_checks,
    skipped: report.results.skipped_checks,
  };
}

const templateFile = (p: Packaged) => join(p.dir, "cloudformation-template-update-stack.json");
const brief = (r: CheckovResult) => `${r.check_id} ${r.resource}`;

describe("security scan of the packaged template (checkov)", () => {
  it("passes checkov on the dev and prod templates; every skipped check carries its reason", async () => {
    for (const p of [ci, prod]) {
      const report = await checkov(templateFile(p));
      expect(report.failed.map(brief)).toEqual([]);
      expect(report.passed).toBeGreaterThan(100);
      for (const s of report.skipped)
        expect(s.check_result.suppress_comment?.length ?? 0, brief(s)).toBeGreaterThan(20);
    }
    // The key and the access logs leave less to argue in prod: no skip for what they answer.
    const prodSkips = (await checkov(templateFile(prod))).skipped.map((s) => s.check_id);
    for (const answered of ["CKV_AWS_18", "CKV_AWS_27", "CKV_AWS_119", "CKV_AWS_158", "CKV_AWS_173"]) {
      expect(prodSkips).not.toContain(answered);
    }
  }, 400_000);

  it("fails checkov when an encryption setting is removed from a copy of the template", async () => {
    const template = structuredClone(prod.template);
    delete (template.Resources as Json).IngestFailedEventsQueue.Properties.KmsMasterKeyId;
    delete (template.Resources as Json).HttpApiLogGroup.Properties.KmsKeyId;
    const dir = join(workDir, "tampered");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "template.json");
    writeFileSync(file, JSON.stringify(template));
    const report = await checkov(file);
    expect(report.failed.map(brief).sort()).toEqual([
      "CKV_AWS_158 AWS::Logs::LogGroup.HttpApiLogGroup",
      "CKV_AWS_27 AWS::SQS::Queue.IngestFailedEventsQueue",
    ]);
  }, 200_000);

  it("hardens the deployment bucket and logs the HTTP API's requests to a retained log group", () => {
    for (const p of [ci, prod]) {
      const bucket = (p.template.Resources as Json).ServerlessDeploymentBucket.Properties;
      expect(bucket.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(bucket.VersioningConfiguration).toEqual({ Status: "Enabled" });
      const stage = (p.template.Resources as Json).HttpApiStage.Properties;
      expect(stage.AccessLogSettings.DestinationArn).toEqual({ "Fn::GetAtt": ["HttpApiLogGroup", "Arn"] });
      expect((p.template.Resources as Json).HttpApiLogGroup.Properties).toMatchObject({
        LogGroupName: "/aws/http-api/feature-store-ci",
        RetentionInDays: 30,
      });
    }
  });

  it("caps every function's concurrency from params", () => {
    const reserved = (p: Packaged) =>
      Object.fromEntries(
        resourcesOfType(p, "AWS::Lambda::Function").map(([id, fn]) => [
          id,
          fn.Properties.ReservedConcurrentExecutions,
        ]),
      );
    expect(reserved(ci)).toEqual({
      GetFeaturesLambdaFunction: 100,
      IngestLambdaFunction: 10,
      SubmitLambdaFunction: 2,
      RunEventsLambdaFunction: 5,
      StatusLambdaFunction: 2,
    });
    expect(reserved(prod).IngestLambdaFunction).toBe(20);
  });

  // Lambda takes 0-2 retry attempts and an event age of 60 s-6 h (AWS_CONTRACTS L2). ingest and
  // runEvents rely on the two retries (their ledger writes are conditional, so a retry is harmless);
  // submit and status are called synchronously and must not be retried behind the caller's back.
  it("sets asynchronous retries within Lambda's limits: two for ingest and runEvents, none for submit and status", () => {
    const configs: Record<string, Json> = Object.fromEntries(
      resourcesOfType(ci, "AWS::Lambda::EventInvokeConfig").map(([, c]) => [
        c.Properties.FunctionName.Ref,
        c.Properties,
      ]),
    );
    expect(
      Object.fromEntries(Object.entries(configs).map(([fn, c]) => [fn, c.MaximumRetryAttempts])),
    ).toEqual({
      IngestLambdaFunction: 2,
      RunEventsLambdaFunction: 2,
      SubmitLambdaFunction: 0,
      StatusLambdaFunction: 0,
    });
    for (const c of Object.values(configs)) {
      const age = c.MaximumEventAgeInSeconds;
      if (age !== undefined) expect(age).toBeGreaterThanOrEqual(60);
      if (age !== undefined) expect(age).toBeLessThanOrEqual(21_600);
    }
    expect(configs.IngestLambdaFunction?.DestinationConfig.OnFailure.Destination).toEqual({
      "Fn::GetAtt": ["IngestFailedEventsQueue", "Arn"],
    });
  });

  it("encrypts with AWS managed keys by default: SSE-S3 buckets, an SSE-SQS queue, no stack key", () => {
    expect(resourcesOfType(ci, "AWS::KMS::Key").map(([id]) => id)).toEqual(["AlertsKey"]);
    expect((ci.template.Resources as Json).IngestFailedEventsQueue.Properties.SqsManagedSseEnabled).toBe(
      true,
    );
    for (const id of ["RawBucket", "OfflineBucket", "ArtifactsBucket"]) {
      const sse = (ci.template.Resources as Json)[id].Properties.BucketEncryption
        .ServerSideEncryptionConfiguration[0];
      expect(sse.ServerSideEncryptionByDefault, id).toEqual({ SSEAlgorithm: "AES256" });
      expect((ci.template.Resources as Json)[id].Properties.LoggingConfiguration, id).toBeUndefined();
    }
  });

  it("uses the customer-managed key for buckets, logs, queue, ledger and environments when the param is on", () => {
    const r = prod.template.Resources as Json;
    const key = { "Fn::GetAtt": ["StackKey", "Arn"] };
    expect(r.StackKey.Properties.EnableKeyRotation).toBe(true);
    for (const id of ["RawBucket", "OfflineBucket", "ArtifactsBucket"]) {
      const sse = r[id].Properties.BucketEncryption.ServerSideEncryptionConfiguration[0];
      expect(sse, id).toEqual({
        ServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms", KMSMasterKeyID: key },
        BucketKeyEnabled: true,
      });
    }
    for (const [id, group] of resourcesOfType(prod, "AWS::Logs::LogGroup")) {
      expect(group.Properties.KmsKeyId, id).toEqual(key);
    }
    for (const [id, fn] of resourcesOfType(prod, "AWS::Lambda::Function")) {
      expect(fn.Properties.KmsKeyArn, id).toEqual(key);
    }
    expect(r.IngestFailedEventsQueue.Properties.KmsMasterKeyId).toEqual(key);
    expect(r.RunLedgerTable.Properties.SSESpecification).toEqual({
      SSEEnabled: true,
      SSEType: "KMS",
      KMSMasterKeyId: key,
    });
    // Every role that reads or writes that data may use the key, only through those services.
    const use = r.StackKeyUsePolicy.Properties;
    expect(use.Roles.map((role: Json) => role.Ref).sort()).toEqual(
      [
        "EmrInstanceRole",
        "GetFeaturesRole",
        "IngestRole",
        "RunEventsRole",
        "StatusRole",
        "SubmitRole",
      ].sort(),
    );
    expect(use.PolicyDocument.Statement).toEqual([
      expect.objectContaining({
        Resource: key,
        Condition: { StringEquals: { "kms:ViaService": expect.any(Array) } },
      }),
    ]);
    // CloudWatch Logs may use it for this account's log groups only.
    const logs = r.StackKey.Properties.KeyPolicy.Statement.find(
      (s: Json) => s.Sid === "AllowCloudWatchLogsOfThisAccount",
    );
    expect(flat(logs.Condition.ArnLike["kms:EncryptionContext:aws:logs:arn"])).toBe(
      "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*",
    );
  });

  it("sends every bucket's server access logs to the accessLogsBucket when set", () => {
    for (const [id, prefix] of <Array<[string, string]>>[
      ["RawBucket", "raw/"],
      ["OfflineBucket", "offline/"],
      ["ArtifactsBucket", "artifacts/"],
      ["ServerlessDeploymentBucket", "deployment/"],
    ]) {
      expect((prod.template.Resources as Json)[id].Properties.LoggingConfiguration, id).toEqual({
        DestinationBucketName: "acme-s3-access-logs",
        LogFilePrefix: prefix,
      });
    }
  });
});
