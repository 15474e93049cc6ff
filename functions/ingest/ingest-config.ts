// ingest's configuration: the run settings every job-starting function shares, and the raw-file size
// limit. A good file is staged with one CopyObject, so the limit cannot pass CopyObject's 5 GB.
import { z } from "zod";
import { runConfigSchema } from "#commons/feature-job-config.js";
import { COPY_OBJECT_MAX_BYTES } from "#commons/s3-object.js";

export const ingestConfigSchema = runConfigSchema.extend({
  /** Files larger than this are quarantined (default and maximum 5 GiB, AWS_CONTRACTS S7). */
  RAW_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .max(
      COPY_OBJECT_MAX_BYTES,
      "must be at most 5 GiB (5368709120): staging copies a file with one CopyObject",
    )
    .default(COPY_OBJECT_MAX_BYTES),
});
