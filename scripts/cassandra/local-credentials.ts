// The local Cassandra node's login (docs/LOCAL_CASSANDRA.md): scripts/cassandra.sh generates the
// project role's password at first start and keeps it in <local dir>/cassandra/credentials (mode
// 600). Every local client (scripts, tests, the local stack, the benchmark) reads it from here; the
// Lambda code only sees CASSANDRA_USERNAME / CASSANDRA_PASSWORD in its environment.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { auth } from "cassandra-driver";

export interface CassandraCredentials {
  readonly username: string;
  readonly password: string;
}

/** The non-superuser login role the project uses on the local node (as on Keyspaces, never a superuser). */
export const LOCAL_APP_ROLE = "feature_store_app";

const ROOT = resolve(__dirname, "../..");

/** `<FEATURE_STORE_LOCAL_DIR or .local>/cassandra`, where the node keeps its files. */
export function localCassandraDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.FEATURE_STORE_LOCAL_DIR ?? join(ROOT, ".local"), "cassandra");
}

export const APP_CREDENTIALS_FILE = "credentials";
export const SUPERUSER_CREDENTIALS_FILE = "superuser-credentials";

/** Parses `CASSANDRA_USERNAME=…` / `CASSANDRA_PASSWORD=…` lines (the format bash and Python read too). */
export function parseCredentials(text: string, source: string): CassandraCredentials {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (match?.[1] !== undefined && match[2] !== undefined) values.set(match[1], match[2]);
  }
  const username = values.get("CASSANDRA_USERNAME");
  const password = values.get("CASSANDRA_PASSWORD");
  if (!username || !password) {
    throw new Error(`${source} must hold CASSANDRA_USERNAME=… and CASSANDRA_PASSWORD=… lines`);
  }
  return { username, password };
}

export function formatCredentials(credentials: CassandraCredentials): string {
  return `CASSANDRA_USERNAME=${credentials.username}\nCASSANDRA_PASSWORD=${credentials.password}\n`;
}

export function readCredentialsFile(path: string): CassandraCredentials | undefined {
  return existsSync(path) ? parseCredentials(readFileSync(path, "utf8"), path) : undefined;
}

/**
 * The project role's credentials: CASSANDRA_USERNAME + CASSANDRA_PASSWORD from the environment when
 * both are set (a job or handler given them explicitly), else the local credentials file.
 */
export function localCassandraCredentials(env: NodeJS.ProcessEnv = process.env): CassandraCredentials {
  if (env.CASSANDRA_USERNAME && env.CASSANDRA_PASSWORD) {
    return { username: env.CASSANDRA_USERNAME, password: env.CASSANDRA_PASSWORD };
  }
  const path = join(localCassandraDir(env), APP_CREDENTIALS_FILE);
  const credentials = readCredentialsFile(path);
  if (credentials === undefined) {
    throw new Error(
      `no local Cassandra credentials at ${path}: start the node with scripts/cassandra.sh start, which creates them ` +
        "(a node started before logins existed needs scripts/cassandra.sh restart)",
    );
  }
  return credentials;
}

/** Driver auth for the local node, as the project role. */
export function localCassandraAuthProvider(env: NodeJS.ProcessEnv = process.env): auth.PlainTextAuthProvider {
  const { username, password } = localCassandraCredentials(env);
  return new auth.PlainTextAuthProvider(username, password);
}

/** The environment a child process (a handler, the Spark job) needs to log in as the project role. */
export function localCassandraAuthEnv(env: NodeJS.ProcessEnv = process.env): {
  CASSANDRA_USERNAME: string;
  CASSANDRA_PASSWORD: string;
} {
  const { username, password } = localCassandraCredentials(env);
  return { CASSANDRA_USERNAME: username, CASSANDRA_PASSWORD: password };
}
