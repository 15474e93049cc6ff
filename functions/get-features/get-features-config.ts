// Configuration of the getFeatures function: the online store settings plus where the feature
// view files live. Validated once at cold start; a bad value fails it with the variable's name.
import { z } from "zod";
import { onlineStoreConfigSchema } from "#commons/cassandra-online-store.js";
import { DEFAULT_FEATURE_VIEWS_DIR } from "#commons/feature-view.js";

export const getFeaturesConfigSchema = z.intersection(
  onlineStoreConfigSchema,
  z.object({
    /** View files, relative to the Lambda task root (or the working directory locally). */
    FEATURE_VIEWS_DIR: z.string().min(1).default(DEFAULT_FEATURE_VIEWS_DIR),
    /** Fraction of 2xx responses logged as "request served" (errors always are); see request-telemetry.ts. */
    REQUEST_LOG_SAMPLE_RATE: z.coerce.number().min(0).max(1).default(1),
    /** 0: one latency EMF record per invocation; above 0: batched up to this age (ms). */
    METRICS_FLUSH_INTERVAL_MS: z.coerce.number().int().min(0).max(60_000).default(0),
  }),
);

export type GetFeaturesConfig = z.infer<typeof getFeaturesConfigSchema>;
