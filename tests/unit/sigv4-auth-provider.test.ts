// The Keyspaces SigV4 login of getFeatures (functions/commons/sigv4-auth-provider.ts) answers every
// challenge exactly as aws-sigv4-auth-cassandra-plugin, the AWS-published plugin it replaces, does:
// same signature for the same inputs, same nonce parsing, same handshake; credentials come from the
// Lambda environment at each login.
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { auth } from "cassandra-driver";
import { describe, expect, it } from "vitest";
import {
  type AwsCredentials,
  environmentCredentials,
  extractNonce,
  KeyspacesSigV4AuthProvider,
  MissingCredentialsError,
  signKeyspacesChallenge,
} from "#commons/sigv4-auth-provider.js";

// The plugin ships no types; its files are loaded as they are (CommonJS).
const require = createRequire(__filename);
const plugin = require("aws-sigv4-auth-cassandra-plugin/lib/sigv4-auth-signature.js") as {
  computeSigV4SignatureCassandraRequest(options: {
    region: string;
    nonce: string;
    date: Date;
    accessKeyId: string;
    secretAccessKey: string;
    sessionToken?: string;
  }): string;
};
const pluginProvider = require("aws-sigv4-auth-cassandra-plugin/lib/sigv4-auth-provider.js") as {
  SigV4AuthProvider: { extractNonce(challenge: Buffer): string | undefined };
};

/** Runs one login's challenge through an authenticator and returns its response (or error). */
function answer(authenticator: auth.Authenticator, challenge: Buffer): Promise<string> {
  return new Promise((resolve, reject) =>
    authenticator.evaluateChallenge(challenge, (error: Error | null, response?: Buffer) =>
      error ? reject(error) : resolve(response?.toString("utf8") ?? ""),
    ),
  );
}

describe("Keyspaces SigV4 signature", () => {
  it("gives the plugin's documented example response", () => {
    // The example in the plugin's computeSigV4SignatureCassandraRequest doc comment.
    expect(
      signKeyspacesChallenge({
        region: "us-west-2",
        nonce: "91703fdc2ef562e19fbdab0f58e42fe5",
        date: new Date(1591742511000),
        credentials: { accessKeyId: "UserID-1", secretAccessKey: "UserSecretKey-1" },
      }),
    ).toBe(
      "signature=7f3691c18a81b8ce7457699effbfae5b09b4e0714ab38c1292dbdf082c9ddd87,access_key=UserID-1,amzdate=2020-06-09T22:41:51.000Z",
    );
  });

  it("equals the plugin's response for random credentials, nonces, regions and dates, with and without a session token", () => {
    const regions = ["eu-west-1", "us-east-1", "ap-southeast-2", "eu-central-1"];
    for (let i = 0; i < 200; i++) {
      const credentials: AwsCredentials = {
        accessKeyId: `ASIA${randomBytes(8).toString("hex").toUpperCase()}`,
        secretAccessKey: randomBytes(30).toString("base64"),
        ...(i % 2 === 0 ? { sessionToken: randomBytes(120).toString("base64") } : {}),
      };
      const region = regions[i % regions.length] as string;
      const nonce = randomBytes(16).toString("hex");
      const date = new Date(Date.UTC(2020, 0, 1) + Math.floor(Math.random() * 2e11));
      expect(signKeyspacesChallenge({ region, nonce, date, credentials })).toBe(
        plugin.computeSigV4SignatureCassandraRequest({ region, nonce, date, ...credentials }),
      );
    }
  });

  it.each(["nonce=91703fdc2ef562e19fbdab0f58e42fe5", "nonce=abc,other=1", "x=1,nonce=abc", "no nonce here"])(
    "reads the nonce of %j as the plugin does",
    (text) => {
      const challenge = Buffer.from(text, "utf8");
      expect(extractNonce(challenge)).toBe(pluginProvider.SigV4AuthProvider.extractNonce(challenge));
    },
  );
});

describe("KeyspacesSigV4AuthProvider", () => {
  it("is a driver auth provider that opens with the SigV4 marker", () => {
    const provider = new KeyspacesSigV4AuthProvider("eu-west-1", () => ({
      accessKeyId: "AKID",
      secretAccessKey: "secret",
    }));
    // The driver refuses any other object (client-options.js: `instanceof auth.AuthProvider`).
    expect(provider).toBeInstanceOf((auth as unknown as { AuthProvider: typeof Object }).AuthProvider);
    let initial: Buffer | undefined;
    provider
      .newAuthenticator("10.0.0.1:9142", "com.amazonaws.cassandra.auth.SigV4Authenticator")
      .initialResponse((_error: Error | null, response: Buffer) => {
        initial = response;
      });
    expect(initial?.toString("utf8")).toBe("SigV4\0\0");
  });

  it("signs each login with the credentials of that moment (a later connection sees rotated keys)", async () => {
    let current: AwsCredentials = { accessKeyId: "AKID-FIRST", secretAccessKey: "s1", sessionToken: "t1" };
    const provider = new KeyspacesSigV4AuthProvider("eu-west-1", () => current);
    const challenge = Buffer.from("nonce=0123456789abcdef", "utf8");
    const first = await answer(provider.newAuthenticator("h:9142", "SigV4"), challenge);
    current = { accessKeyId: "AKID-SECOND", secretAccessKey: "s2", sessionToken: "t2" };
    const second = await answer(provider.newAuthenticator("h:9142", "SigV4"), challenge);
    expect(first).toMatch(/^signature=[0-9a-f]{64},access_key=AKID-FIRST,amzdate=\S+,session_token=t1$/);
    expect(second).toMatch(/,access_key=AKID-SECOND,.*,session_token=t2$/);
  });

  it("fails the login (no response) on a challenge without a nonce or without credentials", async () => {
    const provider = new KeyspacesSigV4AuthProvider("eu-west-1", () => environmentCredentials({}));
    await expect(answer(provider.newAuthenticator("h", "SigV4"), Buffer.from("nothing"))).rejects.toThrow(
      /no nonce/,
    );
    await expect(answer(provider.newAuthenticator("h", "SigV4"), Buffer.from("nonce=1"))).rejects.toThrow(
      MissingCredentialsError,
    );
  });
});

describe("environmentCredentials", () => {
  it("takes the execution role's keys and session token as Lambda sets them", () => {
    expect(
      environmentCredentials({
        AWS_ACCESS_KEY_ID: "ASIAEXAMPLE",
        AWS_SECRET_ACCESS_KEY: "secret",
        AWS_SESSION_TOKEN: "token",
      }),
    ).toEqual({ accessKeyId: "ASIAEXAMPLE", secretAccessKey: "secret", sessionToken: "token" });
    expect(environmentCredentials({ AWS_ACCESS_KEY_ID: "AKIA", AWS_SECRET_ACCESS_KEY: "s" })).toEqual({
      accessKeyId: "AKIA",
      secretAccessKey: "s",
    });
  });

  it("names the variables when a key is missing", () => {
    expect(() => environmentCredentials({ AWS_ACCESS_KEY_ID: "AKIA" })).toThrow(/AWS_SECRET_ACCESS_KEY/);
  });
});
