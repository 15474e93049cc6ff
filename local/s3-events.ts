// Delivers the raw bucket's S3 event notifications to the real ingest handler, as Lambda would:
// moto writes each ObjectCreated event (the JSON S3 sends) to an SQS queue; this poller long-polls
// it and invokes the handler module in-process with the event. A failed invocation is retried
// (the message reappears after its visibility timeout, like Lambda's async retries), at most
// MAX_ATTEMPTS times.
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { Context, S3Event } from "aws-lambda";
import { decodeS3EventKey } from "#functions/ingest/check-raw-file.js";
import type { IngestOutcome } from "#functions/ingest/ingest-raw-files.js";
import { lambdaContext } from "./lambda-context.js";

export type IngestHandler = (event: S3Event, context: Context) => Promise<IngestOutcome[]>;

export type S3EventReport =
  | { readonly kind: "outcomes"; readonly outcomes: readonly IngestOutcome[] }
  | {
      readonly kind: "failed";
      readonly keys: readonly string[];
      readonly attempt: number;
      readonly error: string;
    }
  | { readonly kind: "gave-up"; readonly keys: readonly string[]; readonly error: string };

/** Lambda retries an asynchronous invocation twice (three attempts); so does this poller. */
const MAX_ATTEMPTS = 3;
const RETRY_DELAY_S = 5;

function isS3Event(body: unknown): body is S3Event {
  return typeof body === "object" && body !== null && Array.isArray((body as { Records?: unknown }).Records);
}

export class S3EventPoller {
  #stopped = false;
  #loop: Promise<void> | undefined;
  readonly #abort = new AbortController();

  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    private readonly handler: IngestHandler,
    private readonly report: (report: S3EventReport) => void,
  ) {}

  start(): void {
    this.#loop ??= this.run();
  }

  private async run(): Promise<void> {
    while (!this.#stopped) {
      try {
        await this.pollOnce(2);
      } catch (error) {
        if (this.#stopped) break;
        this.report({
          kind: "failed",
          keys: [],
          attempt: 0,
          error: `SQS poll failed: ${(error as Error).message}`,
        });
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** One long poll (up to `waitSeconds`); handles what it receives. Exposed for tests. */
  async pollOnce(waitSeconds: number): Promise<number> {
    const received = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ["ApproximateReceiveCount"],
      }),
      { abortSignal: this.#abort.signal },
    );
    const messages = received.Messages ?? [];
    for (const message of messages) {
      const body: unknown = JSON.parse(message.Body ?? "null");
      const attempt = Number(message.Attributes?.ApproximateReceiveCount ?? "1");
      const done = () =>
        this.sqs.send(
          new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: message.ReceiptHandle }),
        );
      // s3:TestEvent (sent when the notification is configured) and anything else without records.
      if (!isS3Event(body)) {
        await done();
        continue;
      }
      const keys = body.Records.map((r) => decodeS3EventKey(r.s3.object.key));
      try {
        const outcomes = await this.handler(
          body,
          lambdaContext("feature-store-local-ingest", message.MessageId ?? ""),
        );
        this.report({ kind: "outcomes", outcomes });
        await done();
      } catch (error) {
        const text = (error as Error).message ?? String(error);
        if (attempt >= MAX_ATTEMPTS) {
          this.report({ kind: "gave-up", keys, error: text });
          await done();
        } else {
          this.report({ kind: "failed", keys, attempt, error: text });
          await this.sqs.send(
            new ChangeMessageVisibilityCommand({
              QueueUrl: this.queueUrl,
              ReceiptHandle: message.ReceiptHandle,
              VisibilityTimeout: RETRY_DELAY_S,
            }),
          );
        }
      }
    }
    return messages.length;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await this.#loop?.catch(() => undefined);
  }
}
