// Decides whether a raw file may go to the feature job: its key names a known view under
// raw/<view>/, it is not empty or too large, it is UTF-8 text (not compressed, not UTF-16, not
// binary), and its CSV header is the view's raw header.
// Only the head of the object is read, however large the file.
import type { S3Client } from "@aws-sdk/client-s3";
import type { FeatureView } from "#commons/feature-view.js";
import { readObjectHead } from "#commons/s3-object.js";

/** Bytes read from the start of a file; the header must end within them. */
export const HEAD_BYTES = 64 * 1024;

export type RawFileProblemCode =
  | "wrong_prefix"
  | "unknown_view"
  | "empty"
  | "too_large"
  | "compressed"
  | "not_utf8"
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

/** Signatures of archives and compressed streams: a CSV uploaded as it came out of a download. */
const COMPRESSED: ReadonlyArray<readonly [signature: readonly number[], message: string]> = [
  [[0x1f, 0x8b], "The file is gzip-compressed; upload the uncompressed CSV"],
  [[0x50, 0x4b, 0x03, 0x04], "The file is a ZIP archive; upload the uncompressed CSV, not an archive"],
];

/** Byte-order marks of the encodings spreadsheets offer besides UTF-8 ("Unicode text" is UTF-16). */
const BYTE_ORDER_MARKS: ReadonlyArray<readonly [mark: readonly number[], encoding: string]> = [
  // UTF-32 LE first: its mark begins with UTF-16 LE's.
  [[0xff, 0xfe, 0x00, 0x00], "UTF-32 (little-endian)"],
  [[0x00, 0x00, 0xfe, 0xff], "UTF-32 (big-endian)"],
  [[0xff, 0xfe], "UTF-16 (little-endian)"],
  [[0xfe, 0xff], "UTF-16 (big-endian)"],
];

const startsWith = (bytes: Uint8Array, prefix: readonly number[]) =>
  prefix.length <= bytes.length && prefix.every((byte, i) => bytes[i] === byte);

/** "line L, column C" of a byte offset (both from 1; columns count bytes), for a report. */
function position(bytes: Uint8Array, offset: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return `line ${line}, column ${offset - lineStart + 1}`;
}

/**
 * UTF-16 text without a byte-order mark, recognised by its NUL bytes: CSV text is mostly ASCII,
 * which UTF-16 LE writes as (byte, 0) pairs and UTF-16 BE as (0, byte).
 */
function unmarkedUtf16(head: Uint8Array): string | undefined {
  const pairs = Math.min(head.length, 1024) >> 1;
  if (pairs < 2) return undefined;
  let evenZeros = 0;
  let oddZeros = 0;
  for (let i = 0; i < pairs * 2; i += 2) {
    if (head[i] === 0) evenZeros++;
    if (head[i + 1] === 0) oddZeros++;
  }
  if (oddZeros >= 0.9 * pairs && evenZeros <= 0.1 * pairs) return "UTF-16 (little-endian)";
  if (evenZeros >= 0.9 * pairs && oddZeros <= 0.1 * pairs) return "UTF-16 (big-endian)";
  return undefined;
}

/**
 * The offset of the first byte that is not valid UTF-8, or undefined. `truncated`: the head ends
 * inside the file, so a character cut at its end is not an error.
 */
function firstInvalidUtf8(head: Uint8Array, truncated: boolean): number | undefined {
  // The decoder replaces each bad sequence with U+FFFD; the text before it re-encodes to exactly
  // the bytes it came from, so its encoded length is the bad byte's offset. A U+FFFD written in the
  // file itself (bytes EF BF BD) is skipped.
  const text = new TextDecoder("utf-8").decode(head, { stream: truncated });
  const encoder = new TextEncoder();
  let from = 0;
  let offset = 0;
  for (let at = text.indexOf("\uFFFD"); at >= 0; at = text.indexOf("\uFFFD", at + 1)) {
    offset += encoder.encode(text.slice(from, at)).length;
    if (!(head[offset] === 0xef && head[offset + 1] === 0xbf && head[offset + 2] === 0xbd)) return offset;
    offset += 3;
    from = at + 1;
  }
  return undefined;
}

/**
 * Why the head of a file is not UTF-8 CSV text, named for the person who uploaded it: compressed,
 * another Unicode encoding, binary, or an 8-bit encoding. Never echoes the bytes themselves.
 */
export function encodingProblem(head: Uint8Array, truncated: boolean): RawFileProblem | undefined {
  for (const [signature, message] of COMPRESSED) {
    if (startsWith(head, signature)) return { code: "compressed", message };
  }
  for (const [mark, encoding] of BYTE_ORDER_MARKS) {
    if (startsWith(head, mark)) {
      return { code: "not_utf8", message: `The file is ${encoding} text; save it as UTF-8` };
    }
  }
  const nul = head.indexOf(0);
  if (nul >= 0) {
    const utf16 = unmarkedUtf16(head);
    return {
      code: "not_utf8",
      message: utf16
        ? `The file is ${utf16} text without a byte-order mark; save it as UTF-8`
        : `The file holds binary data (a NUL byte on ${position(head, nul)}), not CSV text`,
    };
  }
  const bad = firstInvalidUtf8(head, truncated);
  if (bad === undefined) return undefined;
  const byte = (head[bad] ?? 0).toString(16).padStart(2, "0");
  return {
    code: "not_utf8",
    message:
      `The file is not valid UTF-8 (byte 0x${byte} on ${position(head, bad)}: Latin-1 or Windows-1252?); ` +
      "save it as UTF-8",
  };
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
  const encoding = encodingProblem(head, head.length < size);
  if (encoding) return { problems: [encoding] };
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
