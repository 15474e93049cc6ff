// What tells a person the pipeline needs them: the alerts topic (runEvents publishes a run that
// failed for good; every alarm notifies it), one alarm per condition the stack promises (failed
// runs, failed S3 events, quarantined files and stale features per view; getFeatures 5xx rate and
// p99 latency), and one CloudWatch dashboard. Per-view alarms are generated from the feature
// views, as the Keyspaces tables are.
const path = require("node:path");
const tsx = require("tsx/cjs/api");
const { ids, join, metricsServiceName } = require("./names.cjs");
const { kmsKeyPolicy } = require("./security.cjs");

const { loadFeatureViews } = tsx.require("../functions/commons/feature-view-files.ts", __filename);

/** The custom metrics the functions publish (Powertools Metrics, EMF), all per view. */
const METRICS_NAMESPACE = "FeatureStore";
const VIEW_METRICS = {
  runsFailed: "RunsFailed",
  runsSucceeded: "RunsSucceeded",
  filesQuarantined: "FilesQuarantined",
  featureDataAgeHours: "FeatureDataAgeHours",
};

const partition = { Ref: "AWS::Partition" };
const region = { Ref: "AWS::Region" };
const account = { Ref: "AWS::AccountId" };

/** Logical id fragment of a view: energy -> Energy, web_sessions -> WebSessions. */
function pascal(name) {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0].toUpperCase() + part.slice(1))
    .join("");
}

/** Powertools adds the service dimension to every metric it emits; alarms must name both. */
function viewDimensions(ctx, view) {
  return [
    { Name: "service", Value: metricsServiceName(ctx.service, ctx.stage) },
    { Name: "view", Value: view },
  ];
}

/** The view's metric summed over 5 minutes reached 1: something happened once, which needs a person. */
function anyInFiveMinutes(ctx, view, metricName) {
  return {
    Namespace: METRICS_NAMESPACE,
    MetricName: metricName,
    Dimensions: viewDimensions(ctx, view),
    Statistic: "Sum",
    Period: 300,
    EvaluationPeriods: 1,
    Threshold: 1,
    ComparisonOperator: "GreaterThanOrEqualToThreshold",
  };
}

function alarmName(ctx, suffix) {
  return `${ctx.service}-${ctx.stage}-${suffix}`;
}

function alarm(ctx, suffix, description, properties) {
  return {
    Type: "AWS::CloudWatch::Alarm",
    Properties: {
      AlarmName: alarmName(ctx, suffix),
      AlarmDescription: description,
      ActionsEnabled: true,
      AlarmActions: [{ Ref: ids.alertsTopic }],
      TreatMissingData: "notBreaching",
      ...properties,
    },
  };
}

/**
 * Alerts are encrypted with a key of the stack, not with the AWS managed alias/aws/sns: CloudWatch
 * alarms cannot use that key (its policy cannot be changed to let cloudwatch.amazonaws.com call
 * kms:GenerateDataKey), so an alarm on a topic encrypted with it fails to notify.
 * https://repost.aws/knowledge-center/cloudwatch-configure-alarm-sns
 */
function alertsResources(ctx) {
  const topicName = `${ctx.service}-${ctx.stage}-alerts`;
  const resources = {
    [ids.alertsKey]: {
      Type: "AWS::KMS::Key",
      Properties: {
        Description: `Encrypts the ${topicName} SNS topic`,
        EnableKeyRotation: true,
        KeyPolicy: kmsKeyPolicy([
          {
            Sid: "AllowCloudWatchAlarmsToPublish",
            Effect: "Allow",
            Principal: { Service: "cloudwatch.amazonaws.com" },
            Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
            Resource: "*",
          },
        ]),
      },
    },
    AlertsKeyAlias: {
      Type: "AWS::KMS::Alias",
      Properties: { AliasName: `alias/${topicName}`, TargetKeyId: { Ref: ids.alertsKey } },
    },
    [ids.alertsTopic]: {
      Type: "AWS::SNS::Topic",
      Properties: {
        TopicName: topicName,
        DisplayName: `Feature store ${ctx.stage} alerts`,
        KmsMasterKeyId: { "Fn::GetAtt": [ids.alertsKey, "Arn"] },
      },
    },
    AlertsTopicPolicy: {
      Type: "AWS::SNS::TopicPolicy",
      Properties: {
        Topics: [{ Ref: ids.alertsTopic }],
        PolicyDocument: {
          Version: "2012-10-17",
          Statement: [
            {
              // Only this stack's alarms; runEvents publishes through its role (same account).
              Sid: "AllowStackAlarmsToPublish",
              Effect: "Allow",
              Principal: { Service: "cloudwatch.amazonaws.com" },
              Action: "sns:Publish",
              Resource: { Ref: ids.alertsTopic },
              Condition: {
                ArnLike: {
                  "aws:SourceArn": join([
                    "arn:",
                    partition,
                    ":cloudwatch:",
                    region,
                    ":",
                    account,
                    `:alarm:${alarmName(ctx, "*")}`,
                  ]),
                },
              },
            },
            {
              Sid: "DenyInsecureTransport",
              Effect: "Deny",
              Principal: "*",
              Action: "sns:Publish",
              Resource: { Ref: ids.alertsTopic },
              Condition: { Bool: { "aws:SecureTransport": "false" } },
            },
          ],
        },
      },
    },
  };
  if (ctx.alertEmail) {
    // The address receives a confirmation mail first; nothing is delivered until it is confirmed.
    resources.AlertsEmailSubscription = {
      Type: "AWS::SNS::Subscription",
      Properties: { TopicArn: { Ref: ids.alertsTopic }, Protocol: "email", Endpoint: ctx.alertEmail },
    };
  }
  return resources;
}

/** Alarm logical ids, in the order the dashboard's alarm widget lists them. */
function alarmResources(ctx, views) {
  const alarms = {};
  for (const view of views) {
    const id = pascal(view);
    alarms[`${id}RunsFailedAlarm`] = alarm(
      ctx,
      `${view}-runs-failed`,
      `A feature job of view ${view} failed after its retries (its files are marked failed in the run ledger; see sls invoke -f status).`,
      anyInFiveMinutes(ctx, view, VIEW_METRICS.runsFailed),
    );
    alarms[`${id}FilesQuarantinedAlarm`] = alarm(
      ctx,
      `${view}-files-quarantined`,
      `ingest quarantined a raw file of view ${view} (report beside it under quarantine/${view}/ in the raw bucket).`,
      anyInFiveMinutes(ctx, view, VIEW_METRICS.filesQuarantined),
    );
    // runEvents reports the age every 5 minutes; two silent 15-minute periods mean the pipeline
    // itself stopped, which must alarm too, hence missing data counts as breaching.
    alarms[`${id}StaleFeaturesAlarm`] = alarm(
      ctx,
      `${view}-stale-features`,
      `The newest feature date of view ${view} is more than ${ctx.stalenessAlarmHours} hours old, or no age was reported for 30 minutes.`,
      {
        Namespace: METRICS_NAMESPACE,
        MetricName: VIEW_METRICS.featureDataAgeHours,
        Dimensions: viewDimensions(ctx, view),
        Statistic: "Maximum",
        Period: 900,
        EvaluationPeriods: 2,
        DatapointsToAlarm: 2,
        Threshold: ctx.stalenessAlarmHours,
        ComparisonOperator: "GreaterThanThreshold",
        TreatMissingData: "breaching",
        OKActions: [{ Ref: ids.alertsTopic }],
      },
    );
  }
  alarms.IngestFailedEventsAlarm = alarm(
    ctx,
    "ingest-failed-events",
    "S3 events ingest could not handle after its retries wait in the failed-events queue (replay: docs/DEPLOY.md).",
    {
      Namespace: "AWS/SQS",
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [ids.ingestFailedEvents, "QueueName"] } }],
      Statistic: "Maximum",
      Period: 300,
      EvaluationPeriods: 1,
      Threshold: 1,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
    },
  );
  // What callers see is the HTTP API's answer: getFeatures turns a slow or unreachable store
  // into a handled 503, which is no Lambda error, and throttles or integration timeouts never
  // reach the function at all. So the rate is API 5xx over API requests, not Lambda Errors.
  const api = [{ Name: "ApiId", Value: { Ref: "HttpApi" } }];
  const apiMetric = (metricId, metricName) => ({
    Id: metricId,
    ReturnData: false,
    MetricStat: {
      Metric: { Namespace: "AWS/ApiGateway", MetricName: metricName, Dimensions: api },
      Period: 300,
      Stat: "Sum",
    },
  });
  alarms.GetFeaturesErrorRateAlarm = alarm(
    ctx,
    "get-features-5xx-rate",
    `More than ${ctx.apiErrorRateAlarmPercent}% of feature requests answered 5xx in 5 minutes.`,
    {
      Metrics: [
        apiMetric("errors", "5xx"),
        apiMetric("requests", "Count"),
        {
          Id: "errorRate",
          Label: "5xx (% of requests)",
          Expression: "IF(requests > 0, 100 * errors / requests, 0)",
          ReturnData: true,
        },
      ],
      EvaluationPeriods: 1,
      Threshold: ctx.apiErrorRateAlarmPercent,
      ComparisonOperator: "GreaterThanThreshold",
    },
  );
  // API latency (not the function's duration) includes API Gateway's own time: what callers wait.
  alarms.GetFeaturesLatencyAlarm = alarm(
    ctx,
    "get-features-p99-latency",
    `p99 latency of feature requests above ${ctx.latencyAlarmP99Ms} ms in 2 of 3 five-minute periods.`,
    {
      Namespace: "AWS/ApiGateway",
      MetricName: "Latency",
      Dimensions: api,
      ExtendedStatistic: "p99",
      Period: 300,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 2,
      Threshold: ctx.latencyAlarmP99Ms,
      ComparisonOperator: "GreaterThanThreshold",
    },
  );
  return alarms;
}

// --- The dashboard: a JSON body with a few intrinsics (region, API id, queue, alarm ARNs) ---

const TOKEN = /@@([A-Za-z0-9:]+)@@/;

/** Turns a body holding @@token@@ placeholders into Fn::Join over the token's intrinsic. */
function bodyWithIntrinsics(body, intrinsics) {
  const parts = JSON.stringify(body).split(TOKEN);
  return join(parts.map((part, i) => (i % 2 === 0 ? part : intrinsics(part))));
}

function dashboardResource(ctx, views, alarmIds) {
  const svc = metricsServiceName(ctx.service, ctx.stage);
  const fn = (key) => `${ctx.service}-${ctx.stage}-${key}`;
  const perView = (metricName, stat) =>
    views.map((view) => [METRICS_NAMESPACE, metricName, "service", svc, "view", view, { stat, label: view }]);
  const graph = (title, metrics, extra = {}) => ({
    type: "metric",
    width: 12,
    height: 6,
    properties: { title, region: "@@REGION@@", view: "timeSeries", period: 300, metrics, ...extra },
  });
  const emrSearch = (metricName, stat) => ({
    expression: `SEARCH('{AWS/ElasticMapReduce,JobFlowId} MetricName="${metricName}"', '${stat}', 300)`,
    label: metricName,
  });
  const widgets = [
    {
      type: "text",
      width: 24,
      height: 2,
      properties: {
        markdown: `# Feature store ${ctx.stage}\nViews: ${views.join(", ")}. Runs, queued files and failures: \`sls invoke -f status --stage ${ctx.stage}\`.`,
      },
    },
    {
      type: "alarm",
      width: 24,
      height: 3,
      properties: { title: "Alarms", alarms: alarmIds.map((id) => `@@ALARM:${id}@@`) },
    },
    graph("Feature runs succeeded per view", perView(VIEW_METRICS.runsSucceeded, "Sum")),
    graph("Feature runs failed per view (after retries)", perView(VIEW_METRICS.runsFailed, "Sum")),
    graph("Feature data age per view (hours)", perView(VIEW_METRICS.featureDataAgeHours, "Maximum"), {
      annotations: { horizontal: [{ label: "staleness alarm", value: ctx.stalenessAlarmHours }] },
    }),
    graph("Raw files quarantined per view", perView(VIEW_METRICS.filesQuarantined, "Sum")),
    graph("getFeatures requests and errors (HTTP API)", [
      ["AWS/ApiGateway", "Count", "ApiId", "@@API@@", { stat: "Sum", label: "requests" }],
      ["AWS/ApiGateway", "5xx", "ApiId", "@@API@@", { stat: "Sum", label: "5xx" }],
      ["AWS/ApiGateway", "4xx", "ApiId", "@@API@@", { stat: "Sum", label: "4xx" }],
    ]),
    graph(
      "getFeatures latency (HTTP API, ms)",
      [
        ["AWS/ApiGateway", "Latency", "ApiId", "@@API@@", { stat: "p50", label: "p50" }],
        ["AWS/ApiGateway", "Latency", "ApiId", "@@API@@", { stat: "p99", label: "p99" }],
      ],
      { annotations: { horizontal: [{ label: "p99 alarm", value: ctx.latencyAlarmP99Ms }] } },
    ),
    graph("ingest and runEvents invocations and errors", [
      ["AWS/Lambda", "Invocations", "FunctionName", fn("ingest"), { stat: "Sum", label: "ingest" }],
      ["AWS/Lambda", "Errors", "FunctionName", fn("ingest"), { stat: "Sum", label: "ingest errors" }],
      ["AWS/Lambda", "Invocations", "FunctionName", fn("runEvents"), { stat: "Sum", label: "runEvents" }],
      ["AWS/Lambda", "Errors", "FunctionName", fn("runEvents"), { stat: "Sum", label: "runEvents errors" }],
    ]),
    graph("ingest failed-events queue", [
      [
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        "@@QUEUE@@",
        { stat: "Maximum", label: "messages" },
      ],
    ]),
    graph("EMR: YARN applications running and failed (all clusters)", [
      [emrSearch("AppsRunning", "Maximum")],
      [emrSearch("AppsFailed", "Sum")],
    ]),
    graph("EMR: clusters idle (1 = idle)", [[emrSearch("IsIdle", "Maximum")]]),
  ];
  const body = { start: "-PT24H", widgets };
  return {
    Type: "AWS::CloudWatch::Dashboard",
    Properties: {
      DashboardName: `${ctx.service}-${ctx.stage}`,
      DashboardBody: bodyWithIntrinsics(body, (token) => {
        if (token === "REGION") return region;
        if (token === "API") return { Ref: "HttpApi" };
        if (token === "QUEUE") return { "Fn::GetAtt": [ids.ingestFailedEvents, "QueueName"] };
        if (token.startsWith("ALARM:")) return { "Fn::GetAtt": [token.slice("ALARM:".length), "Arn"] };
        throw new Error(`Unknown dashboard token ${token}`);
      }),
    },
  };
}

function monitoringResources(ctx, viewNames) {
  const views = [...viewNames].sort();
  const alarms = alarmResources(ctx, views);
  return {
    ...alertsResources(ctx),
    ...alarms,
    [ids.dashboard]: dashboardResource(ctx, views, Object.keys(alarms)),
  };
}

/** Alarm thresholds and the alert address, from the stack's params. */
async function monitoringSettings(resolveVariable) {
  const [alertEmail, stalenessAlarmHours, latencyAlarmP99Ms, apiErrorRateAlarmPercent] = await Promise.all([
    resolveVariable("param:alertEmail"),
    resolveVariable("param:stalenessAlarmHours"),
    resolveVariable("param:latencyAlarmP99Ms"),
    resolveVariable("param:apiErrorRateAlarmPercent"),
  ]);
  const positive = (name, value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0)
      throw new Error(`param ${name} must be a positive number, got ${value}`);
    return n;
  };
  const email = String(alertEmail ?? "").trim();
  if (email && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
    throw new Error(`param alertEmail must be an e-mail address or empty, got ${email}`);
  }
  return {
    alertEmail: email,
    stalenessAlarmHours: positive("stalenessAlarmHours", stalenessAlarmHours),
    latencyAlarmP99Ms: positive("latencyAlarmP99Ms", latencyAlarmP99Ms),
    apiErrorRateAlarmPercent: positive("apiErrorRateAlarmPercent", apiErrorRateAlarmPercent),
  };
}

module.exports = {
  METRICS_NAMESPACE,
  VIEW_METRICS,
  monitoringResources,
  monitoringSettings,
  resources: async (ctx, resolveVariable) => {
    const settings = await monitoringSettings(resolveVariable);
    const views = loadFeatureViews(path.join(__dirname, "feature-views"));
    return monitoringResources({ ...ctx, ...settings }, views.keys());
  },
};
