// Decides whether a raw file may go to the feature job: its key names a known view under
// raw/<view>/, it is not empty or too large, and its CSV header is the view's raw header.
// Only the head of the object is read, however large the file.
import type { S3Client } from "@aws-sdk/client-s3";
import type { FeatureView } from "../commons/feature-view.js";
import { readObjectHead } from "../commons/s3-object.js";

/** Bytes read from the start of a file; the header must end within them. */
export const HEAD_BYTES = 64 * 1024;

export type RawFileProblemCode =
  | "wrong_prefix"
  | "unknown_view"
  | "empty"
  | "too_large"
  | "no_header"
  | "header_too_long"
  | "missing_columns"
  | "extra_columns"
  | "column_order"
  | "no_rows";

export interface RawFileProblem {
  readonly code: RawFileProblemCode;
  readonly message: string;
  readonly columns?: readonly string[];
}

export interface RawFileRef {
  readonly bucket: string;
  readonly key: string;
  readonly versionId?: string | undefined;
  readonly eTag?: string | undefined;
  /** Size from the event; the ranged read confirms it. */
  readonly size?: number | undefined;
}

export type RawFileVerdict =
  | { readonly ok: true; readonly view: FeatureView; readonly size: number }
  | {
      readonly ok: false;
      /** The view named by the key (known or not); undefined when the key is not under raw/<view>/. */
      readonly viewName: string | undefined;
      readonly problems: readonly RawFileProblem[];
      readonly size?: number;
      readonly header?: readonly string[];
    };

/**
 * Object keys in S3 event notifications are URL-encoded the way HTML forms are: spaces as "+",
 * everything else percent-encoded (so a literal "+" arrives as "%2B").
 */
export function decodeS3EventKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, " "));
}

/** The view a key belongs to: `raw/<view>/<...>.csv`, or a routing problem. */
export function routeRawKey(
  key: string,
  views: ReadonlyMap<string, FeatureView>,
): { view: FeatureView } | { viewName: string | undefined; problem: RawFileProblem } {
  const parts = key.split("/");
  const viewName = parts[0] === "raw" && parts.length >= 3 ? parts[1] : undefined;
  const fileName = parts.at(-1) ?? "";
  if (viewName === undefined || viewName === "" || !fileName.endsWith(".csv") || parts.includes("..")) {
    return {
      viewName: undefined,
      problem: { code: "wrong_prefix", message: `Key ${key} is not of the form raw/<view>/<file>.csv` },
    };
  }
  const view = views.get(viewName);
  if (!view) {
    return {
      viewName,
      problem: {
        code: "unknown_view",
        message: `No feature view named "${viewName}"; known views: ${[...views.keys()].join(", ")}`,
      },
    };
  }
  return { view };
}

/** Splits one CSV header line into column names (trimmed, surrounding double quotes removed). */
export function parseHeaderLine(line: string): string[] {
  return line.split(",").map((cell) => {
    const trimmed = cell.trim();
    return trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"')
      ? trimmed.slice(1, -1).replaceAll('""', '"').trim()
      : trimmed;
  });
}

/** Compares a file's header with the view's raw header: names and order must match. */
export function checkHeader(header: readonly string[], view: FeatureView): RawFileProblem[] {
  const expected = view.rawHeader;
  const missing = expected.filter((c) => !header.includes(c));
  const extra = header.filter((c) => !expected.includes(c));
  const problems: RawFileProblem[] = [];
  if (missing.length > 0) {
    problems.push({
      code: "missing_columns",
      message: `Missing columns: ${missing.join(", ")}`,
      columns: missing,
    });
  }
  if (extra.length > 0) {
    problems.push({
      code: "extra_columns",
      message: `Unexpected columns: ${extra.join(", ")}`,
      columns: extra,
    });
  }
  if (problems.length === 0 && header.join(",") !== expected.join(",")) {
    problems.push({
      code: "column_order",
      message: `Columns are out of order; expected ${expected.join(",")}`,
      columns: [...header],
    });
  }
  return problems;
}

/** Checks the head of a file (the first bytes and the full size) against a view. */
export function checkFileHead(
  head: Uint8Array,
  size: number,
  view: FeatureView,
  maxBytes: number,
): { problems: RawFileProblem[]; header?: string[] } {
  if (size === 0) return { problems: [{ code: "empty", message: "The file is empty" }] };
  if (size > maxBytes) {
    return {
      problems: [
        {
          code: "too_large",
          message: `The file has ${size} bytes; the limit is ${maxBytes} (RAW_MAX_BYTES)`,
        },
      ],
    };
  }
  let text = new TextDecoder("utf-8").decode(head);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const newline = text.indexOf("\n");
  if (newline < 0 && head.length < size) {
    return {
      problems: [{ code: "header_too_long", message: `No line break in the first ${head.length} bytes` }],
    };
  }
  const line = (newline < 0 ? text : text.slice(0, newline)).replace(/\r$/, "");
  if (line.trim() === "") return { problems: [{ code: "no_header", message: "The first line is empty" }] };
  const header = parseHeaderLine(line);
  const problems = checkHeader(header, view);
  const rest = newline < 0 ? "" : text.slice(newline + 1);
  if (problems.length === 0 && rest.trim() === "" && head.length >= size) {
    problems.push({ code: "no_rows", message: "The file has a header but no data rows" });
  }
  return { problems, header };
}

export interface CheckRawFileOptions {
  readonly s3: S3Client;
  readonly views: ReadonlyMap<string, FeatureView>;
  readonly maxBytes: number;
}

export async function checkRawFile(file: RawFileRef, options: CheckRawFileOptions): Promise<RawFileVerdict> {
  const route = routeRawKey(file.key, options.views);
  if (!("view" in route)) return { ok: false, viewName: route.viewName, problems: [route.problem] };
  const { view } = route;
  // The event's size is enough to refuse an empty or oversized file without reading it.
  if (file.size !== undefined && (file.size === 0 || file.size > options.maxBytes)) {
    const { problems } = checkFileHead(new Uint8Array(), file.size, view, options.maxBytes);
    return { ok: false, viewName: view.name, problems, size: file.size };
  }
  const head = await readObjectHead(options.s3, file, HEAD_BYTES);
  const { problems, header } = checkFileHead(head.bytes, head.size, view, options.maxBytes);
  if (problems.length > 0) {
    return { ok: false, viewName: view.name, problems, size: head.size, ...(header ? { header } : {}) };
  }
  return { ok: true, view, size: head.size };
}
