// getFeatures Lambda entry point: builds the container's single online-store client at module
// scope and starts connecting during init (so provisioned concurrency is warm), then serves.
import { resolve } from "node:path";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { CassandraOnlineStore, createCassandraClient } from "#commons/cassandra-online-store.js";
import { readConfig } from "#commons/config.js";
import { FeatureReader } from "./feature-reader.js";
import { featureViewsIn } from "./feature-view-source.js";
import { getFeaturesConfigSchema } from "./get-features-config.js";
import { createGetFeaturesHandler } from "./http-handler.js";

const logger = new Logger();
const metrics = new Metrics();
const config = readConfig(getFeaturesConfigSchema);
// From the files in FEATURE_VIEWS_DIR, or, in the packaged bundle, as embedded at build time.
const views = featureViewsIn(
  resolve(process.env.LAMBDA_TASK_ROOT ?? process.cwd(), config.FEATURE_VIEWS_DIR),
);

export const store = new CassandraOnlineStore({
  client: createCassandraClient(config),
  keyspace: config.KEYSPACE,
  deadlineMs: config.STORE_DEADLINE_MS,
});

// Never rejects: a store that is down must not crash the cold start; reads retry the connection
// and answer 503 until it succeeds. The Lambda entry, warm-handler.mts, awaits it at top level so
// init (and so a provisioned-concurrency sandbox) ends with the session open.
export const connected = store.connect().then((ok) => {
  if (ok) logger.info("online store connected", { store: config.ONLINE_STORE });
  else logger.warn("online store unreachable at init; reads will retry", { store: config.ONLINE_STORE });
  return ok;
});

export const handler = createGetFeaturesHandler({
  reader: new FeatureReader(views, store),
  logger,
  metrics,
  telemetry: {
    logSampleRate: config.REQUEST_LOG_SAMPLE_RATE,
    metricsFlushIntervalMs: config.METRICS_FLUSH_INTERVAL_MS,
  },
});
