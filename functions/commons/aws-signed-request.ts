// SigV4-signed requests to AWS services this project has no SDK v3 client installed for
// (DynamoDB's JSON API, SNS's query API), built from the signer and credential chain the installed
// v3 clients already use. Endpoints follow the SDK's own overrides (AWS_ENDPOINT_URL_<SERVICE>,
// AWS_ENDPOINT_URL), so the local stack and the tests point them at moto like every other client.
// Replace with @aws-sdk/client-dynamodb / client-sns once those are dependencies: the callers only
// see `awsJsonCall` and `awsQueryCall`.
import { createHash, createHmac } from "node:crypto";
import { defaultProvider } from "@aws-sdk/credential-provider-node";
import { SignatureV4 } from "@smithy/signature-v4";
import type { AwsCredentialIdentityProvider, Checksum, SourceData } from "@smithy/types";

/** node:crypto as the signer's hash (sha256, or HMAC-sha256 with a secret). */
class NodeSha256 implements Checksum {
  readonly #hash;
  constructor(secret?: SourceData) {
    this.#hash = secret === undefined ? createHash("sha256") : createHmac("sha256", toBuffer(secret));
  }
  update(data: Uint8Array | string): void {
    this.#hash.update(typeof data === "string" ? data : Buffer.from(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }
  reset(): void {
    throw new Error("not supported");
  }
}

function toBuffer(data: SourceData): Buffer {
  if (typeof data === "string") return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data as ArrayBuffer);
}

/** An AWS service error, with the service's error code (e.g. ConditionalCheckFailedException). */
export class AwsServiceError extends Error {
  override name = "AwsServiceError";
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export interface AwsServiceTarget {
  /** Signing name and endpoint prefix, e.g. "dynamodb", "sns". */
  readonly service: string;
  readonly region?: string;
  readonly endpoint?: string;
  readonly credentials?: AwsCredentialIdentityProvider;
}

let sharedCredentials: AwsCredentialIdentityProvider | undefined;

function resolve(target: AwsServiceTarget): {
  region: string;
  url: URL;
  credentials: AwsCredentialIdentityProvider;
} {
  const region = target.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
  const endpoint =
    target.endpoint ??
    process.env[`AWS_ENDPOINT_URL_${target.service.toUpperCase()}`] ??
    process.env.AWS_ENDPOINT_URL ??
    `https://${target.service}.${region}.amazonaws.com`;
  sharedCredentials ??= defaultProvider();
  return { region, url: new URL(endpoint), credentials: target.credentials ?? sharedCredentials };
}

async function send(
  target: AwsServiceTarget,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; text: string }> {
  const { region, url, credentials } = resolve(target);
  const signer = new SignatureV4({ service: target.service, region, credentials, sha256: NodeSha256 });
  const signed = await signer.sign({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: url.pathname || "/",
    query: {},
    headers: { host: url.host, ...headers },
    body,
  });
  const response = await fetch(url, {
    method: "POST",
    headers: signed.headers as Record<string, string>,
    body,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, text: await response.text() };
}

/** One call of an AWS JSON-protocol API (DynamoDB: target prefix "DynamoDB_20120810"). */
export async function awsJsonCall<T>(
  target: AwsServiceTarget & { readonly targetPrefix: string; readonly jsonVersion: "1.0" | "1.1" },
  operation: string,
  input: unknown,
): Promise<T> {
  const { status, text } = await send(
    target,
    {
      "content-type": `application/x-amz-json-${target.jsonVersion}`,
      "x-amz-target": `${target.targetPrefix}.${operation}`,
    },
    JSON.stringify(input),
  );
  const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (status >= 300) {
    const type = String(parsed.__type ?? parsed.code ?? `HTTP${status}`);
    throw new AwsServiceError(
      type.slice(type.lastIndexOf("#") + 1),
      status,
      String(parsed.message ?? parsed.Message ?? text),
    );
  }
  return parsed as T;
}

/** One call of an AWS query-protocol API (SNS); returns the XML response text. */
export async function awsQueryCall(
  target: AwsServiceTarget & { readonly apiVersion: string },
  action: string,
  params: Record<string, string>,
): Promise<string> {
  const body = new URLSearchParams({ Action: action, Version: target.apiVersion, ...params }).toString();
  const { status, text } = await send(
    target,
    { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body,
  );
  if (status >= 300) {
    const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? `HTTP${status}`;
    const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? text.slice(0, 200);
    throw new AwsServiceError(code, status, message);
  }
  return text;
}
