// IAM authorization of the local HTTP API, as API Gateway applies it to a route with
// `authorizer: aws_iam`: the request must carry a SigV4 signature (service execute-api, the stack's
// region) made with known credentials. Verified by re-signing the received request with the SDK's
// own signer (@smithy/signature-v4) and comparing, never with crypto of our own.
//
// What it emulates: signature, credential scope, the 5-minute clock skew, and API Gateway's 403
// answers in its `{"message": ...}` shape. What it does not: IAM policies (any valid signature of the
// local credentials may call every route), presigned query-string auth, session-token validation.
import { timingSafeEqual } from "node:crypto";
import { Hash } from "@smithy/core/serde";
import { SignatureV4 } from "@smithy/signature-v4";
import { LOCAL_REGION } from "./settings.js";

/** The one identity the local API accepts. Not a secret: it only opens the local API. */
export const LOCAL_IAM_CREDENTIALS = {
  accessKeyId: "LOCALFEATURESTOREKEY",
  secretAccessKey: "local-feature-store-secret-access-key",
} as const;

export const EXECUTE_API_SERVICE = "execute-api";

// API Gateway's answers when IAM authorization fails (all 403, body `{"message": ...}`), from
// "How do I troubleshoot signature mismatch errors when I make SigV4 signed requests with IAM
// authentication to API Gateway?" https://repost.aws/knowledge-center/api-gateway-iam-sigv4-mismatch:
// an unsigned request gets "Missing Authentication Token", an unknown access key "The security
// token included in the request is invalid.", a wrong secret or any difference in what was signed
// "The request signature we calculated does not match the signature you provided. ...".
export const IAM_MESSAGES = {
  missing: "Missing Authentication Token",
  unknownKey: "The security token included in the request is invalid.",
  mismatch:
    "The request signature we calculated does not match the signature you provided. Check your AWS " +
    "Secret Access Key and signing method. Consult the service documentation for details.",
} as const;

/** SigV4 accepts a request time up to 5 minutes away from the service's clock. */
const MAX_SKEW_MS = 5 * 60_000;

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;

export interface ReceivedRequest {
  readonly method: string;
  /** The request target exactly as received (path and query, still percent-encoded). */
  readonly target: string;
  /** Lower-case header names, as node:http gives them. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface IamVerifierOptions {
  readonly region?: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly now?: () => Date;
}

/** Parses "20261130T120000Z" (SigV4's ISO 8601 basic format). */
function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function amzDate(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

export class IamVerifier {
  readonly #signer: SignatureV4;
  readonly #region: string;
  readonly #accessKeyId: string;
  readonly #now: () => Date;

  constructor(options: IamVerifierOptions = {}) {
    this.#region = options.region ?? LOCAL_REGION;
    const credentials = options.credentials ?? LOCAL_IAM_CREDENTIALS;
    this.#accessKeyId = credentials.accessKeyId;
    this.#now = options.now ?? (() => new Date());
    this.#signer = new SignatureV4({
      credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
      region: this.#region,
      service: EXECUTE_API_SERVICE,
      sha256: Hash.bind(null, "sha256"),
      // Sign exactly the headers the caller signed: no x-amz-content-sha256 of our own (botocore's
      // SigV4Auth does not send one for execute-api; the SDK's signer adds it unless told not to).
      applyChecksum: false,
    });
  }

  /** undefined when the request is correctly signed; otherwise API Gateway's 403 message. */
  async verify(request: ReceivedRequest): Promise<string | undefined> {
    const header = request.headers.authorization;
    if (header === undefined) return IAM_MESSAGES.missing;
    const match = AUTHORIZATION.exec(header);
    if (!match) return IAM_MESSAGES.mismatch;
    const [, accessKeyId, scopeDate, region, service, signedHeaderList, signature] = match as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    if (accessKeyId !== this.#accessKeyId) return IAM_MESSAGES.unknownKey;
    if (region !== this.#region || service !== EXECUTE_API_SERVICE) return IAM_MESSAGES.mismatch;

    const dateHeader = request.headers["x-amz-date"];
    const signedAt = dateHeader === undefined ? undefined : parseAmzDate(dateHeader);
    if (signedAt === undefined || !dateHeader?.startsWith(scopeDate)) return IAM_MESSAGES.mismatch;
    const now = this.#now();
    if (Math.abs(now.getTime() - signedAt.getTime()) > MAX_SKEW_MS) {
      // The wording AWS services use for a request time outside the allowed skew.
      const bound = new Date(now.getTime() - MAX_SKEW_MS);
      return `Signature expired: ${dateHeader} is now earlier than ${amzDate(bound)} (${amzDate(now)} - 5 min.)`;
    }

    const signedHeaders = signedHeaderList.split(";");
    if (!signedHeaders.includes("host")) return IAM_MESSAGES.mismatch;
    const headers: Record<string, string> = {};
    for (const name of signedHeaders) {
      const value = request.headers[name];
      if (value === undefined) return IAM_MESSAGES.mismatch;
      headers[name] = value;
    }
    const [rawPath = "/", rawQuery = ""] = splitTarget(request.target);
    const query: Record<string, string | string[]> = {};
    for (const [key, value] of new URLSearchParams(rawQuery)) {
      const existing = query[key];
      query[key] =
        existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
    }
    const resigned = await this.#signer.sign(
      {
        method: request.method,
        protocol: "http:",
        hostname: headers.host ?? "",
        path: rawPath,
        query,
        headers,
      },
      { signingDate: signedAt, signableHeaders: new Set(signedHeaders) },
    );
    const expected = AUTHORIZATION.exec(String(resigned.headers.authorization ?? ""))?.[6] ?? "";
    const same =
      expected.length === signature.length && timingSafeEqual(Buffer.from(expected), Buffer.from(signature));
    return same ? undefined : IAM_MESSAGES.mismatch;
  }
}

function splitTarget(target: string): [string, string] {
  const at = target.indexOf("?");
  return at < 0 ? [target, ""] : [target.slice(0, at), target.slice(at + 1)];
}

/** Signs a local GET as a caller with the local credentials would; the headers to send. */
export type RequestSigner = (url: string) => Promise<Record<string, string>>;

export function localRequestSigner(region = LOCAL_REGION): RequestSigner {
  const signer = new SignatureV4({
    credentials: { ...LOCAL_IAM_CREDENTIALS },
    region,
    service: EXECUTE_API_SERVICE,
    sha256: Hash.bind(null, "sha256"),
    applyChecksum: false,
  });
  return async (url) => {
    const parsed = new URL(url);
    const query: Record<string, string> = {};
    for (const [key, value] of parsed.searchParams) query[key] = value;
    const signed = await signer.sign({
      method: "GET",
      protocol: parsed.protocol,
      hostname: parsed.hostname,
      path: parsed.pathname,
      query,
      headers: { host: parsed.host },
    });
    return signed.headers as Record<string, string>;
  };
}
