// A repair removes wrong rows of one view from both stores: every row of some entities, every
// entity's rows in a closed date range, or the rows of those entities in that range. It runs as
// the feature job in mode "repair" (docs/SPARK_JOB.md, "Removing wrong rows"), through the run
// ledger's per-view lock like every other run, so it is recorded in the run history.
import { z } from "zod";
import { InvalidRequestError } from "../errors.js";
import type { FeatureView } from "../feature-view.js";
import { runIdSchema } from "../identifiers.js";
import type { RepairSelection } from "./feature-job-step.js";

/** Entity ids per repair: the job deletes the emptied entities' online rows one by one. */
export const MAX_REPAIR_ENTITIES = 1000;

const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "must be yyyy-MM-dd")
  .refine((text) => new Date(`${text}T00:00:00Z`).toISOString().startsWith(text), "is not a calendar day");

export const repairRequestSchema = z
  .strictObject({
    jobType: z.literal("repair"),
    view: z.string().min(1).max(64),
    entities: z.array(z.string().min(1)).max(MAX_REPAIR_ENTITIES).optional(),
    from: day.optional(),
    to: day.optional(),
    runId: z.optional(runIdSchema),
  })
  .refine((r) => (r.from === undefined) === (r.to === undefined), {
    message: "from and to go together (a closed date range)",
  })
  .refine((r) => r.from === undefined || r.to === undefined || r.from <= r.to, {
    message: "from is after to",
  })
  .refine((r) => (r.entities?.length ?? 0) > 0 || r.from !== undefined, {
    message: "a repair needs entities and/or from with to",
  });

export interface RepairRequest {
  readonly view: string;
  readonly repair: RepairSelection;
  readonly runId?: string | undefined;
}

/** Checks a repair request against the views (the entity ids against the view's id pattern). */
export function validateRepairRequest(
  input: unknown,
  views: ReadonlyMap<string, FeatureView>,
): RepairRequest {
  const parsed = repairRequestSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(request)"}: ${i.message}`);
    throw new InvalidRequestError(`Invalid repair request: ${issues.join("; ")}`);
  }
  const request = parsed.data;
  const view = views.get(request.view);
  if (!view) {
    throw new InvalidRequestError(
      `Unknown feature view "${request.view}"; known views: ${[...views.keys()].join(", ")}`,
    );
  }
  const entities = [...new Set(request.entities ?? [])];
  const bad = entities.filter((id) => !view.entityIdPattern.test(id));
  if (bad.length > 0) {
    throw new InvalidRequestError(`Entity ids that ${view.name} cannot hold: ${bad.slice(0, 5).join(", ")}`);
  }
  return {
    view: request.view,
    runId: request.runId,
    repair: {
      entities,
      ...(request.from === undefined ? {} : { from: request.from, to: request.to }),
    },
  };
}
