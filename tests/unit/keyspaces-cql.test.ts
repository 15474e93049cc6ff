// Keyspaces has no secondary indexes, triggers, UDFs/UDAs, materialized views, ALTER TYPE or TRUNCATE
// (https://docs.aws.amazon.com/keyspaces/latest/devguide/cassandra-apis.html, AWS_CONTRACTS K8); the
// local Cassandra has them all, so a statement using one would pass every local suite and fail on AWS.
// This scans the code that talks to the online store for such statements.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const UNSUPPORTED: ReadonlyArray<[string, RegExp]> = [
  ["secondary index", /\bCREATE\s+(?:CUSTOM\s+)?INDEX\b/i],
  ["trigger", /\bCREATE\s+TRIGGER\b/i],
  ["user-defined function or aggregate", /\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|AGGREGATE)\b/i],
  ["materialized view", /\bCREATE\s+MATERIALIZED\s+VIEW\b/i],
  ["ALTER TYPE", /\bALTER\s+TYPE\b/i],
  ["TRUNCATE", /\bTRUNCATE\s+(?:TABLE\s+)?["\w$]/i],
];

/** The code that runs against Keyspaces on AWS: the functions and the Spark job's package. */
const ROOTS = ["functions", "spark/feature_store"];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return /\.(?:ts|mts|py)$/.test(entry.name) ? [path] : [];
  });
}

function unsupportedIn(text: string): string[] {
  return UNSUPPORTED.filter(([, pattern]) => pattern.test(text)).map(([name]) => name);
}

describe("CQL the online store code sends", () => {
  const files = ROOTS.flatMap(sources);

  it("scans the files that hold the store's CQL", () => {
    expect(files).toEqual(
      expect.arrayContaining([
        join("functions", "commons", "cassandra-online-store.ts"),
        join("functions", "commons", "online-schema.ts"),
        join("spark", "feature_store", "online_store.py"),
      ]),
    );
  });

  it("finds each statement Keyspaces lacks, and not lookalikes", () => {
    expect(unsupportedIn("CREATE INDEX ON ks.t (v)")).toEqual(["secondary index"]);
    expect(unsupportedIn("create custom index i on t (v) using 'x'")).toEqual(["secondary index"]);
    expect(unsupportedIn("CREATE TRIGGER t ON ks.t USING 'c'")).toEqual(["trigger"]);
    expect(unsupportedIn("CREATE OR REPLACE FUNCTION f")).toEqual(["user-defined function or aggregate"]);
    expect(unsupportedIn("CREATE MATERIALIZED VIEW v AS SELECT")).toEqual(["materialized view"]);
    expect(unsupportedIn("ALTER TYPE t ADD x int")).toEqual(["ALTER TYPE"]);
    expect(unsupportedIn(`TRUNCATE ks.t`)).toEqual(["TRUNCATE"]);
    expect(unsupportedIn("df.show(truncate=False)")).toEqual([]);
    expect(unsupportedIn("CREATE TABLE IF NOT EXISTS ks.t (k text PRIMARY KEY)")).toEqual([]);
  });

  it("uses none of them", () => {
    const found = files.flatMap((file) =>
      unsupportedIn(readFileSync(file, "utf8")).map((name) => `${file}: ${name}`),
    );
    expect(found).toEqual([]);
  });
});
