// Configuration of the getFeatures function: the online store settings plus where the feature
// view files live. Validated once at cold start; a bad value fails it with the variable's name.
// zod/mini, as every schema the function's bundle imports (docs/PERFORMANCE.md).
import * as z from "zod/mini";
import { onlineStoreConfigSchema } from "#commons/cassandra-online-store.js";
import { DEFAULT_FEATURE_VIEWS_DIR } from "#commons/feature-view.js";
import "#commons/zod-messages.js";

export const getFeaturesConfigSchema = z.intersection(
  onlineStoreConfigSchema,
  z.object({
    /** View files, relative to the Lambda task root (or the working directory locally). */
    FEATURE_VIEWS_DIR: z._default(z.string().check(z.minLength(1)), DEFAULT_FEATURE_VIEWS_DIR),
    /** Fraction of 2xx responses logged as "request served" (errors always are); see request-telemetry.ts. */
    REQUEST_LOG_SAMPLE_RATE: z._default(z.coerce.number().check(z.minimum(0), z.maximum(1)), 1),
    /** 0: one latency EMF record per invocation; above 0: batched up to this age (ms). */
    METRICS_FLUSH_INTERVAL_MS: z._default(
      z.coerce.number().check(z.int(), z.minimum(0), z.maximum(60_000)),
      0,
    ),
  }),
);

export type GetFeaturesConfig = z.infer<typeof getFeaturesConfigSchema>;
