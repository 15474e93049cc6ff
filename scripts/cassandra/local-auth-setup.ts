// Sets up the local node's logins (run by `scripts/cassandra.sh start`, idempotent): replaces the
// default superuser's well-known password (cassandra/cassandra) by a generated one, used only by
// this script, and creates the project's non-superuser login role, feature_store_app, with its own
// generated password and the permissions the tests, the schema applier and bench:serve need. Both
// passwords live in git-ignored files of mode 600 under .local/cassandra (see local-credentials.ts).
//
// The project never connects as a superuser because Cassandra's guardrails (the Keyspaces timestamp
// window, see cassandra.yaml.template) do not apply to superusers, and Keyspaces has none.
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { auth, Client, errors } from "cassandra-driver";
import {
  APP_CREDENTIALS_FILE,
  type CassandraCredentials,
  formatCredentials,
  LOCAL_APP_ROLE,
  localCassandraDir,
  readCredentialsFile,
  SUPERUSER_CREDENTIALS_FILE,
} from "./local-credentials.js";

const DEFAULT_SUPERUSER: CassandraCredentials = { username: "cassandra", password: "cassandra" };
const port = Number(process.env.CASSANDRA_PORT ?? 9042);
/** The default role is created asynchronously just after CQL opens: allow it this long to appear. */
const LOGIN_WAIT_MS = Number(process.env.CASSANDRA_AUTH_SETUP_TIMEOUT_MS ?? 60_000);

// Role passwords cannot be bind markers in CQL, so they are written into the statement: they are
// generated here, and anything that is not this alphabet is refused before it reaches a statement.
const SAFE_PASSWORD = /^[A-Za-z0-9]{24,64}$/;

function generatePassword(): string {
  return randomBytes(24).toString("hex");
}

/** The saved credentials, or new ones saved first (mode 600), so a crash never loses a password. */
function savedOrNew(path: string, username: string): CassandraCredentials {
  const saved = readCredentialsFile(path);
  if (saved !== undefined) {
    if (saved.username !== username || !SAFE_PASSWORD.test(saved.password)) {
      throw new Error(`${path} is not a file this script wrote (role ${username}, generated password)`);
    }
    return saved;
  }
  const created = { username, password: generatePassword() };
  writeFileSync(path, formatCredentials(created), { mode: 0o600 });
  chmodSync(path, 0o600);
  return created;
}

async function connectAs(credentials: CassandraCredentials): Promise<Client | undefined> {
  const client = new Client({
    contactPoints: ["127.0.0.1"],
    localDataCenter: "datacenter1",
    protocolOptions: { port },
    authProvider: new auth.PlainTextAuthProvider(credentials.username, credentials.password),
  });
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.shutdown();
    if (isAuthenticationFailure(error)) return undefined;
    throw error;
  }
}

function isAuthenticationFailure(error: unknown): boolean {
  if (error instanceof errors.AuthenticationError) return true;
  if (error instanceof errors.NoHostAvailableError) {
    return Object.values(error.innerErrors).some((inner) => inner instanceof errors.AuthenticationError);
  }
  return false;
}

/**
 * Logs in as the superuser: with the saved password, or (new data directory, or one from the old
 * no-auth config) with the default one, which is then replaced by the saved one.
 */
async function superuserClient(superuser: CassandraCredentials): Promise<Client> {
  const deadline = Date.now() + LOGIN_WAIT_MS;
  for (;;) {
    const saved = await connectAs(superuser);
    if (saved !== undefined) return saved;
    const fallback = await connectAs(DEFAULT_SUPERUSER);
    if (fallback !== undefined) {
      await fallback.execute(`ALTER ROLE cassandra WITH PASSWORD = '${superuser.password}'`);
      console.error("[cassandra-auth] replaced the default superuser password by a generated one");
      return fallback;
    }
    if (Date.now() > deadline) {
      throw new Error(
        "neither the saved superuser password nor the default one is accepted: this data directory's " +
          "roles were set up elsewhere. Stop the node and delete .local/cassandra/data (all local data) to start over.",
      );
    }
    await new Promise((done) => setTimeout(done, 1000));
  }
}

async function main(): Promise<void> {
  const dir = localCassandraDir();
  mkdirSync(dir, { recursive: true });
  const superuser = savedOrNew(join(dir, SUPERUSER_CREDENTIALS_FILE), DEFAULT_SUPERUSER.username);
  const app = savedOrNew(join(dir, APP_CREDENTIALS_FILE), LOCAL_APP_ROLE);

  const client = await superuserClient(superuser);
  try {
    await client.execute(
      `CREATE ROLE IF NOT EXISTS ${app.username} WITH LOGIN = true AND SUPERUSER = false AND PASSWORD = '${app.password}'`,
    );
    // The role may predate the credentials file (or be left from a test): make it match the file.
    await client.execute(
      `ALTER ROLE ${app.username} WITH LOGIN = true AND SUPERUSER = false AND PASSWORD = '${app.password}'`,
    );
    // What the tests and the schema applier need (scratch keyspaces, tables, rows), nothing more:
    // no AUTHORIZE, no role management. Keyspaces created before auth was on are covered too.
    for (const permission of ["CREATE", "ALTER", "DROP", "SELECT", "MODIFY"]) {
      await client.execute(`GRANT ${permission} ON ALL KEYSPACES TO ${app.username}`);
    }
    // Virtual keyspaces are not covered by ALL KEYSPACES. `npm run bench:serve` waits until the node
    // runs no compaction, which only this table shows (the node has no JMX port for nodetool): the
    // one table, read only, not the node's settings or client list. GRANT is a no-op when held.
    await client.execute(`GRANT SELECT ON TABLE system_views.sstable_tasks TO ${app.username}`);
    console.error(
      `[cassandra-auth] login role ${app.username} ready (credentials in ${dir}/${APP_CREDENTIALS_FILE})`,
    );
  } finally {
    await client.shutdown();
  }
}

main().catch((error: unknown) => {
  console.error(`[cassandra-auth] failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
