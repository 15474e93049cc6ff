// The production adapters of the run orchestration's ports, wired once per function from its
// configuration: the DynamoDB ledger, CloudWatch metrics through Powertools (EMF), SNS alerts,
// and the EMR step starter (jobs/start-step.ts). Handlers and the local stack build their dependencies here; every SDK
// client takes its endpoint from the SDK's own settings (AWS_ENDPOINT_URL_<SERVICE> locally:
// https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html).
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EMRClient } from "@aws-sdk/client-emr";
import { S3Client } from "@aws-sdk/client-s3";
import { PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import type { RunConfig } from "./feature-job-config.js";
import type { RunAlerts, RunDependencies, RunMetrics } from "./feature-runs.js";
import { loadFeatureViews } from "./feature-view-files.js";
import { startFeatureJobStep } from "./jobs/start-step.js";
import { DynamoDbRunLedgerStore } from "./run-ledger-store.js";

/** The namespace of every run metric (the stack's alarms and dashboard read it). */
export const RUN_METRICS_NAMESPACE = "FeatureStore";

/**
 * Each metric is flushed at once with its own `view` dimension (one invocation may touch several
 * views), beside the `service` dimension Powertools puts on every metric (POWERTOOLS_SERVICE_NAME,
 * `<service>-<stage>` in serverless.yml): the stack's alarms name both, so stages never share data.
 */
export function powertoolsRunMetrics(metrics: Metrics): RunMetrics {
  const emit = (
    name: string,
    view: string,
    unit: (typeof MetricUnit)[keyof typeof MetricUnit],
    value: number,
  ) => {
    const single = metrics.singleMetric();
    single.addDimension("view", view);
    single.addMetric(name, unit, value);
  };
  return {
    count: (name, view, value = 1) => emit(name, view, MetricUnit.Count, value),
    hours: (name, view, value) => emit(name, view, MetricUnit.NoUnit, Math.round(value * 100) / 100),
  };
}

/** SNS Publish to the alerts topic (the stack's topic, with an optional e-mail subscription). */
export function snsAlerts(topicArn: string, sns: SNSClient): RunAlerts {
  return {
    async publish(subject, message) {
      await sns.send(
        new PublishCommand({
          TopicArn: topicArn,
          // SNS subjects: at most 100 printable ASCII characters, no line break.
          // https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
          Subject: subject.replace(/[^\x20-\x7e]/g, "?").slice(0, 100),
          Message: message,
        }),
      );
    },
  };
}

/** Everything the orchestration needs, built from the function's configuration. */
export function runDependencies(
  config: RunConfig,
  options: { alertsTopicArn?: string | undefined; metrics?: Metrics } = {},
): RunDependencies & { metricsSink: Metrics } {
  const emr = new EMRClient({});
  const s3 = new S3Client({});
  const metricsSink =
    options.metrics ??
    new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? RUN_METRICS_NAMESPACE });
  return {
    ledger: new DynamoDbRunLedgerStore(config.RUN_LEDGER_TABLE, new DynamoDBClient({})),
    emr,
    s3,
    config,
    views: loadFeatureViews(config.FEATURE_VIEWS_DIR),
    startStep: (run) => startFeatureJobStep(run, { emr, s3, config }),
    metrics: powertoolsRunMetrics(metricsSink),
    metricsSink,
    ...(options.alertsTopicArn ? { alerts: snsAlerts(options.alertsTopicArn, new SNSClient({})) } : {}),
  };
}
