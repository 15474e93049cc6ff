// The one reader of the local node's login (scripts/cassandra/local-credentials.ts): the file that
// `scripts/cassandra.sh start` writes, overridden by CASSANDRA_USERNAME + CASSANDRA_PASSWORD when both
// are set, and a clear error naming the file and the fix when there is none.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  formatCredentials,
  localCassandraCredentials,
  localCassandraDir,
  parseCredentials,
} from "#scripts/cassandra/local-credentials.js";

const dirs: string[] = [];
function localDirWith(text?: string): string {
  const dir = mkdtempSync(join(tmpdir(), "local-credentials-"));
  dirs.push(dir);
  if (text !== undefined) {
    mkdirSync(join(dir, "cassandra"));
    writeFileSync(join(dir, "cassandra", "credentials"), text, { mode: 0o600 });
  }
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("local Cassandra credentials", () => {
  it("reads the role and password from <FEATURE_STORE_LOCAL_DIR>/cassandra/credentials", () => {
    const dir = localDirWith(formatCredentials({ username: "feature_store_app", password: "a1b2" }));
    expect(localCassandraDir({ FEATURE_STORE_LOCAL_DIR: dir })).toBe(join(dir, "cassandra"));
    expect(localCassandraCredentials({ FEATURE_STORE_LOCAL_DIR: dir })).toEqual({
      username: "feature_store_app",
      password: "a1b2",
    });
  });

  it("prefers CASSANDRA_USERNAME + CASSANDRA_PASSWORD when both are set, and only then", () => {
    const dir = localDirWith(formatCredentials({ username: "feature_store_app", password: "from-file" }));
    expect(
      localCassandraCredentials({
        FEATURE_STORE_LOCAL_DIR: dir,
        CASSANDRA_USERNAME: "u",
        CASSANDRA_PASSWORD: "p",
      }),
    ).toEqual({ username: "u", password: "p" });
    expect(
      localCassandraCredentials({ FEATURE_STORE_LOCAL_DIR: dir, CASSANDRA_USERNAME: "u" }).password,
    ).toBe("from-file");
  });

  it("fails naming the missing file and the command that creates it", () => {
    const dir = localDirWith();
    expect(() => localCassandraCredentials({ FEATURE_STORE_LOCAL_DIR: dir })).toThrow(
      new RegExp(`${join(dir, "cassandra", "credentials")}.*scripts/cassandra.sh start`),
    );
  });

  it("refuses a file without both lines", () => {
    expect(() => parseCredentials("CASSANDRA_USERNAME=feature_store_app\n", "f")).toThrow(
      /CASSANDRA_PASSWORD/,
    );
  });
});
