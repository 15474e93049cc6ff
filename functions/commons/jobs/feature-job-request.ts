// A feature-job request (submit's default jobType, a backfill by hand): its schema and the checks
// against the views and the raw bucket, so a bad request fails in the caller's terminal instead
// of minutes later in a step log.
import { z } from "zod";
import { InvalidRequestError } from "../errors.js";
import type { FeatureView } from "../feature-view.js";
import { runIdSchema } from "../identifiers.js";
import { parseS3Uri } from "../s3-object.js";
import { JOB_MODES } from "./feature-job-step.js";

/**
 * A run keeps its inputs in its run-ledger item (a retry reads them there), and a DynamoDB item holds
 * at most 400 KB, names and values together ("The maximum item size in DynamoDB is 400 KB":
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html; AWS_CONTRACTS D4).
 * This leaves the rest of the item 100 KB. 500 files of 600-byte URIs fit; EMR's step limit does not
 * matter here (an arguments manifest carries long lists, feature-job-step.ts).
 */
export const MAX_REQUEST_INPUT_BYTES = 300_000;

export const featureJobRequestSchema = z.strictObject({
  view: z.string().min(1).max(64),
  inputs: z.array(z.string().min(1).max(1100)).min(1).max(500),
  mode: z.enum(JOB_MODES),
  runId: z.optional(runIdSchema),
});

export type FeatureJobRequest = z.infer<typeof featureJobRequestSchema>;

/** Checks the request against the views and the raw bucket; throws InvalidRequestError. */
export function validateFeatureJobRequest(
  input: unknown,
  views: ReadonlyMap<string, FeatureView>,
  rawBucket: string,
): FeatureJobRequest {
  const parsed = featureJobRequestSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(request)"}: ${i.message}`);
    throw new InvalidRequestError(`Invalid feature job request: ${issues.join("; ")}`);
  }
  const request = parsed.data;
  if (!views.has(request.view)) {
    throw new InvalidRequestError(
      `Unknown feature view "${request.view}"; known views: ${[...views.keys()].join(", ")}`,
    );
  }
  const prefix = `raw/${request.view}/`;
  for (const uri of request.inputs) {
    const at = parseS3Uri(uri);
    const problem =
      at === undefined
        ? "is not an s3:// URI"
        : at.bucket !== rawBucket
          ? `is not in the raw bucket ${rawBucket}`
          : !at.key.startsWith(prefix) || at.key.split("/").includes("..")
            ? `is not under ${prefix}`
            : !at.key.endsWith(".csv")
              ? "is not a .csv file"
              : /[*?[\]{}\\]/.test(at.key)
                ? "has a glob character (* ? [ ] { } \\), which Spark would expand instead of reading the key"
                : undefined;
    if (problem) throw new InvalidRequestError(`Input ${uri} ${problem}`);
  }
  if (new Set(request.inputs).size !== request.inputs.length) {
    throw new InvalidRequestError("Inputs must not repeat a file");
  }
  const bytes = request.inputs.reduce((total, uri) => total + Buffer.byteLength(uri, "utf8"), 0);
  if (bytes > MAX_REQUEST_INPUT_BYTES) {
    throw new InvalidRequestError(
      `The inputs total ${bytes} bytes; a run keeps them in its run-ledger item (DynamoDB, 400 KB), so a ` +
        `request takes at most ${MAX_REQUEST_INPUT_BYTES}: split the backfill into several requests`,
    );
  }
  return request;
}
