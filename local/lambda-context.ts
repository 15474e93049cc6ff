// The Lambda context handed to a handler invoked outside Lambda (the local pipeline, the tests):
// the fields Powertools and middy read, shaped as Lambda fills them.
import type { Context } from "aws-lambda";

export interface LambdaContextOptions {
  readonly memoryLimitInMB?: string;
  readonly remainingMs?: number;
  readonly logStreamName?: string;
}

export function lambdaContext(
  functionName: string,
  awsRequestId: string,
  options: LambdaContextOptions = {},
): Context {
  const remainingMs = options.remainingMs ?? 60_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:${functionName}`,
    memoryLimitInMB: options.memoryLimitInMB ?? "512",
    awsRequestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: options.logStreamName ?? "local",
    getRemainingTimeInMillis: () => remainingMs,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
