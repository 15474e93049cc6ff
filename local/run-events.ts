// The run orchestration's event path on this machine, as in the stack: the local job runner
// publishes each step's "EMR Step Status Change" to EventBridge on moto (PutEvents), a rule with
// the stack's pattern (source aws.emr) delivers it to an SQS queue, and this poller invokes the
// real runEvents handler with the event. A timer sends the "Scheduled Event" the stack's
// rate(5 minutes) rule sends, every few seconds here so a taken-over or missed run moves on fast.
// moto 5.2 delivers a matching PutEvents entry to an SQS target (tried; ../shared/DESIGN.md).
import {
  type EventBridgeClient,
  PutEventsCommand,
  PutRuleCommand,
  PutTargetsCommand,
} from "@aws-sdk/client-eventbridge";
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { Context } from "aws-lambda";
import { SCHEDULED_EVENT, STEP_STATUS_CHANGE } from "#functions/run-events/run-events.js";
import { sleep } from "./engines.js";
import { lambdaContext } from "./lambda-context.js";

export type RunEventsHandler = (event: unknown, context: Context) => Promise<unknown>;

/** The EMR step fields runEvents reads (the real event carries a few more). */
export interface StepStatus {
  readonly name: string;
  readonly stepId: string;
  readonly clusterId: string;
  readonly state: "PENDING" | "RUNNING" | "COMPLETED" | "FAILED" | "CANCELLED";
  readonly message?: string;
}

/** The stack's rule on EMR step and cluster state changes, with an SQS queue as its target. */
export async function createRunEventsRoute(
  events: EventBridgeClient,
  sqs: SQSClient,
  name: string,
): Promise<string> {
  const queue = await sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: "60" } }),
  );
  const queueUrl = queue.QueueUrl ?? "";
  const attributes = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
  );
  await events.send(
    new PutRuleCommand({
      Name: name,
      EventPattern: JSON.stringify({
        source: ["aws.emr"],
        "detail-type": [STEP_STATUS_CHANGE, "EMR Cluster State Change"],
      }),
      State: "ENABLED",
    }),
  );
  await events.send(
    new PutTargetsCommand({
      Rule: name,
      Targets: [{ Id: "run-events", Arn: attributes.Attributes?.QueueArn ?? "" }],
    }),
  );
  return queueUrl;
}

/** What EMR sends when a step changes state, published to the default event bus. */
export async function publishStepStatus(events: EventBridgeClient, step: StepStatus): Promise<void> {
  const response = await events.send(
    new PutEventsCommand({
      Entries: [
        {
          Source: "aws.emr",
          DetailType: STEP_STATUS_CHANGE,
          Resources: [],
          Detail: JSON.stringify({
            severity: step.state === "FAILED" ? "ERROR" : "INFO",
            actionOnFailure: "CONTINUE",
            stepId: step.stepId,
            name: step.name,
            clusterId: step.clusterId,
            state: step.state,
            message: step.message ?? `Step ${step.stepId} is ${step.state}`,
          }),
        },
      ],
    }),
  );
  if (response.FailedEntryCount) {
    throw new Error(`PutEvents refused the step event: ${response.Entries?.[0]?.ErrorMessage ?? "?"}`);
  }
}

/** Invokes runEvents with each delivered event, and with a scheduled event every `reconcileMs`. */
export class RunEventsPoller {
  #stopped = false;
  #loops: Promise<void>[] = [];
  readonly #abort = new AbortController();

  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    private readonly handler: RunEventsHandler,
    private readonly reconcileMs: number,
    private readonly warn: (message: string) => void,
  ) {}

  start(): void {
    this.#loops = [this.pollLoop(), this.reconcileLoop()];
  }

  private async invoke(event: unknown): Promise<void> {
    await this.handler(event, lambdaContext("feature-store-local-run-events", String(Date.now())));
  }

  private async pollLoop(): Promise<void> {
    while (!this.#stopped) {
      try {
        const received = await this.sqs.send(
          new ReceiveMessageCommand({ QueueUrl: this.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 5 }),
          { abortSignal: this.#abort.signal },
        );
        for (const message of received.Messages ?? []) {
          try {
            await this.invoke(JSON.parse(message.Body ?? "null"));
            await this.sqs.send(
              new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: message.ReceiptHandle }),
            );
          } catch (error) {
            // Left on the queue: it comes back after the visibility timeout, like an async retry.
            this.warn(`runEvents failed (will retry): ${(error as Error).message}`);
          }
        }
      } catch (error) {
        if (this.#stopped) break;
        this.warn(`run events queue: ${(error as Error).message}`);
        await sleep(2000);
      }
    }
  }

  private async reconcileLoop(): Promise<void> {
    while (!this.#stopped) {
      for (let waited = 0; waited < this.reconcileMs && !this.#stopped; waited += 250) await sleep(250);
      if (this.#stopped) break;
      try {
        await this.invoke({
          source: "aws.events",
          "detail-type": SCHEDULED_EVENT,
          time: new Date().toISOString(),
          detail: {},
        });
      } catch (error) {
        this.warn(`scheduled reconcile failed: ${(error as Error).message}`);
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await Promise.all(this.#loops.map((loop) => loop.catch(() => undefined)));
  }
}
