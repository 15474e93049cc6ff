// SigV4 login to Amazon Keyspaces for the Node.js driver (docs/AWS_CONTRACTS.md K12, L6), with the
// function role's credentials from the Lambda environment. It replaces
// aws-sigv4-auth-cassandra-plugin on the serving path: the plugin computes the same signature
// (tests/unit/sigv4-auth-provider.test.ts checks it against the plugin's own code and its
// documented example) but loads the whole v2 AWS SDK for its credential chain and crypto-js for
// four HMACs: ~400 kB of the bundle and ~40 ms of every cold start (docs/PERFORMANCE.md).
//
// The exchange (the plugin's protocol, https://www.npmjs.com/package/aws-sigv4-auth-cassandra-plugin):
// the client answers the authenticator with "SigV4\0\0"; the service's challenge carries a nonce;
// the response is `signature=…,access_key=…,amzdate=…[,session_token=…]`, the signature being
// SigV4 over `PUT /authenticate` with the nonce's SHA-256 as payload, service `cassandra`.
import { createHash, createHmac } from "node:crypto";
import { auth } from "cassandra-driver";

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export class MissingCredentialsError extends Error {
  override readonly name = "MissingCredentialsError";
}

/**
 * The execution role's credentials, which Lambda puts in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
 * and AWS_SESSION_TOKEN (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html,
 * "Defined runtime environment variables"). Read at every login, never cached: a connection opened
 * later gets what the environment holds then. (The v2 SDK's default chain, which the plugin used,
 * also takes them from the environment first, without refreshing.)
 */
export function environmentCredentials(env: NodeJS.ProcessEnv = process.env): AwsCredentials {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new MissingCredentialsError(
      "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set: Keyspaces logins take the function " +
        "role's credentials from the environment, as Lambda provides them",
    );
  }
  const sessionToken = env.AWS_SESSION_TOKEN;
  return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
}

// The driver declares these as interfaces but checks `instanceof auth.AuthProvider` at runtime
// (lib/client-options.js): extend its classes.
const driverAuth = auth as unknown as {
  AuthProvider: new () => auth.AuthProvider;
  Authenticator: new () => auth.Authenticator;
};

const SERVICE = "cassandra";
const sha256Hex = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");
const hmac = (key: string | Buffer, text: string) => createHmac("sha256", key).update(text, "utf8").digest();

/** The challenge's nonce (`nonce=<value>,…`), or undefined when it carries none. */
export function extractNonce(challenge: Buffer): string | undefined {
  const [, after] = challenge.toString("utf8").split("nonce=", 2);
  return after?.split(",", 1)[0];
}

/** The response to a Keyspaces SigV4 challenge. */
export function signKeyspacesChallenge(options: {
  readonly region: string;
  readonly nonce: string;
  readonly date: Date;
  readonly credentials: AwsCredentials;
}): string {
  const { region, nonce, date, credentials } = options;
  const amzDate = date.toISOString();
  const day = amzDate.slice(0, 10).replaceAll("-", "");
  const scope = `${day}/${region}/${SERVICE}/aws4_request`;
  const query = [
    "X-Amz-Algorithm=AWS4-HMAC-SHA256",
    `X-Amz-Credential=${credentials.accessKeyId}%2F${encodeURIComponent(scope)}`,
    `X-Amz-Date=${encodeURIComponent(amzDate)}`,
    "X-Amz-Expires=900",
  ]
    .sort()
    .join("&");
  const canonicalRequest = `PUT\n/authenticate\n${query}\nhost:${SERVICE}\n\nhost\n${sha256Hex(nonce)}`;
  const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), region), SERVICE),
    "aws4_request",
  );
  const signature = createHmac("sha256", signingKey).update(stringToSign, "utf8").digest("hex");
  const signed = `signature=${signature},access_key=${credentials.accessKeyId},amzdate=${amzDate}`;
  return credentials.sessionToken ? `${signed},session_token=${credentials.sessionToken}` : signed;
}

class KeyspacesSigV4Authenticator extends driverAuth.Authenticator {
  constructor(
    private readonly region: string,
    private readonly credentials: () => AwsCredentials,
  ) {
    super();
  }

  override initialResponse(callback: (error: Error | null, response?: Buffer) => void): void {
    callback(null, Buffer.from("SigV4\0\0", "utf8"));
  }

  override evaluateChallenge(
    challenge: Buffer,
    callback: (error: Error | null, response?: Buffer) => void,
  ): void {
    const nonce = extractNonce(challenge);
    if (nonce === undefined) {
      callback(new Error(`no nonce in the Keyspaces SigV4 challenge: ${challenge.toString("utf8")}`));
      return;
    }
    let response: string;
    try {
      response = signKeyspacesChallenge({
        region: this.region,
        nonce,
        date: new Date(),
        credentials: this.credentials(),
      });
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback(null, Buffer.from(response, "utf8"));
  }
}

/** The driver's auth provider for Keyspaces: SigV4 with `credentials()` read at each login. */
export class KeyspacesSigV4AuthProvider extends driverAuth.AuthProvider {
  constructor(
    readonly region: string,
    private readonly credentials: () => AwsCredentials = environmentCredentials,
  ) {
    super();
  }

  override newAuthenticator(_endpoint: string, _name: string): auth.Authenticator {
    return new KeyspacesSigV4Authenticator(this.region, this.credentials);
  }
}
