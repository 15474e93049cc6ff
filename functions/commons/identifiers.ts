// The name rules every part shares, defined once on the TypeScript side. The compiled feature view
// (compiled-view.ts) carries both patterns to the Spark job, so Python has no copy of its own.
// zod/mini schemas (getFeatures' bundle imports this module; see zod-messages.ts): classic zod
// wraps them as any schema, e.g. `z.optional(runIdSchema)`.
import * as z from "zod/mini";
import "./zod-messages.js";

/**
 * Lower-case identifiers are valid, unquoted, in CQL, Spark SQL and Delta alike: views, features,
 * columns, online tables, keyspaces.
 */
export const IDENTIFIER_PATTERN = /^[a-z][a-z0-9_]{0,47}$/;
export const identifierSchema = z
  .string()
  .check(
    z.regex(
      IDENTIFIER_PATTERN,
      "must be lower-case letters, digits and _, starting with a letter (at most 48)",
    ),
  );

/**
 * A run id names S3 prefixes (rejects/, runs/, training-sets/), EMR step names and tags, and Delta
 * commit metadata: no ':' (a Hadoop path would read it as a scheme), at most 64 characters (an EMR
 * tag value allows 256), starting with a letter or digit.
 */
export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const runIdSchema = z
  .string()
  .check(z.regex(RUN_ID_PATTERN, "must be 1-64 letters, digits, _ . -, starting with a letter or digit"));

/** A sortable, unique run id: UTC timestamp plus a random suffix, e.g. 20261126T184500Z-3f9a1c. */
export function newRunId(at: Date, suffix: string): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
  return `${stamp}-${suffix}`;
}

/** The random part of a new run id: six hex digits. */
export function randomRunIdSuffix(): string {
  return Math.random().toString(16).slice(2, 8).padEnd(6, "0");
}
