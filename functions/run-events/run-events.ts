// runEvents' domain: the EventBridge events it receives, parsed with one schema, and what each
// does to the run ledger. "EMR Step Status Change" closes (or retries) the run the step belongs
// to; "EMR Cluster State Change" to TERMINATED_WITH_ERRORS fails the attempt of a transient
// cluster whose step never reported; the "Scheduled Event" (rate(5 minutes)) reconciles every view.
// Event shapes: https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-emr.html
import { z } from "zod";
import {
  type CloseOutcome,
  onClusterTerminatedWithErrors,
  onStepStateChange,
  type ReconcileOutcome,
  reconcileView,
} from "#commons/close-runs.js";
import type { RunDependencies } from "#commons/feature-runs.js";
import { parseFeatureJobStepName } from "#commons/jobs/feature-job-step.js";

export const STEP_STATUS_CHANGE = "EMR Step Status Change";
export const CLUSTER_STATE_CHANGE = "EMR Cluster State Change";
export const SCHEDULED_EVENT = "Scheduled Event";

const stepEvent = z.object({
  "detail-type": z.literal(STEP_STATUS_CHANGE),
  detail: z.object({
    name: z.string(),
    stepId: z.string(),
    clusterId: z.string(),
    state: z.string(),
    message: z.string().optional(),
  }),
});

const clusterEvent = z.object({
  "detail-type": z.literal(CLUSTER_STATE_CHANGE),
  detail: z.object({
    name: z.string(),
    clusterId: z.string(),
    state: z.string(),
    message: z.string().optional(),
  }),
});

const scheduledEvent = z.object({ "detail-type": z.literal(SCHEDULED_EVENT) });

export const runEventSchema = z.union([stepEvent, clusterEvent, scheduledEvent]);
export type RunEvent = z.infer<typeof runEventSchema>;

export type RunEventOutcome =
  | CloseOutcome
  | {
      readonly status: "reconciled";
      readonly views: Readonly<Record<string, ReconcileOutcome | { error: string }>>;
    };

export async function handleRunEvent(input: unknown, deps: RunDependencies): Promise<RunEventOutcome> {
  const parsed = runEventSchema.safeParse(input);
  if (!parsed.success) return { status: "ignored", reason: "not an EMR state change or scheduled event" };
  const event = parsed.data;
  if (event["detail-type"] === STEP_STATUS_CHANGE) {
    const run = parseFeatureJobStepName(event.detail.name);
    if (!run) return { status: "ignored", reason: `step "${event.detail.name}" is not a feature-job step` };
    return onStepStateChange({ ...run, ...event.detail }, deps);
  }
  if (event["detail-type"] === CLUSTER_STATE_CHANGE) {
    if (event.detail.state !== "TERMINATED_WITH_ERRORS") {
      return { status: "ignored", reason: `cluster state ${event.detail.state}` };
    }
    return onClusterTerminatedWithErrors(event.detail, deps);
  }
  // One view's trouble (an EMR throttle) must not keep the others from being reconciled.
  const views: Record<string, ReconcileOutcome | { error: string }> = {};
  for (const view of deps.views.keys()) {
    try {
      views[view] = await reconcileView(view, deps);
    } catch (error) {
      views[view] = { error: (error as Error).message };
    }
  }
  return { status: "reconciled", views };
}
