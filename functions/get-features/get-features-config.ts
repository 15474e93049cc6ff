// Configuration of the getFeatures function: the online store settings plus where the feature
// view files live. Validated once at cold start; a bad value fails it with the variable's name.
import { z } from "zod";
import { onlineStoreConfigSchema } from "../commons/cassandra-online-store.js";
import { DEFAULT_FEATURE_VIEWS_DIR } from "../commons/feature-view.js";

export const getFeaturesConfigSchema = z.intersection(
  onlineStoreConfigSchema,
  z.object({
    /** View files, relative to the Lambda task root (or the working directory locally). */
    FEATURE_VIEWS_DIR: z.string().min(1).default(DEFAULT_FEATURE_VIEWS_DIR),
  }),
);

export type GetFeaturesConfig = z.infer<typeof getFeaturesConfigSchema>;
