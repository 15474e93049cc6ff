// Readable stack traces for logged errors without `--enable-source-maps`: that flag makes Node
// parse every bundle's source map while the module loads (~210 ms of getFeatures' cold start,
// docs/PERFORMANCE.md "Serving at the floor"), although a map is only needed when an error is logged.
// Here a bundle's map (`<bundle>.map`, as esbuild's linked or external source maps are written)
// is read and decoded the first time a frame of that bundle has to be mapped, then cached.
import { readFileSync } from "node:fs";
import { SourceMap, type SourceMapPayload } from "node:module";
import { fileURLToPath } from "node:url";
import type { ErrorLogger } from "./http-errors.js";

/** Reads the source map of a generated file, or undefined when it has none. */
export type SourceMapLoader = (generatedFile: string) => SourceMapPayload | undefined;

export const readSourceMapNextTo: SourceMapLoader = (generatedFile) => {
  try {
    return JSON.parse(readFileSync(`${generatedFile}.map`, "utf8")) as SourceMapPayload;
  } catch {
    return undefined;
  }
};

// `at fn (file:line:col)`, `at file:line:col` or `at async file:line:col`; only bundled JavaScript
// has a map to look up.
const FRAME = /^(\s*at (?:async )?(?:.*? \()?)((?:file:\/\/)?\/[^()]*?\.[cm]?js):(\d+):(\d+)(\)?)$/;

export class StackMapper {
  readonly #maps = new Map<string, SourceMap | null>();

  constructor(private readonly load: SourceMapLoader = readSourceMapNextTo) {}

  /** The stack with each bundled frame replaced by its original `source:line:column`. */
  map(stack: string): string {
    return stack
      .split("\n")
      .map((line) => this.#mapFrame(line))
      .join("\n");
  }

  #mapFrame(line: string): string {
    const frame = FRAME.exec(line);
    if (frame === null) return line;
    const [, head, location, lineText, columnText, tail] = frame as unknown as string[];
    const file = (location as string).startsWith("file://") ? fileURLToPath(location as string) : location;
    const map = this.#mapOf(file as string);
    if (map === null) return line;
    // Stack positions are 1-based; findEntry takes and returns 0-based offsets.
    const entry = map.findEntry(Number(lineText) - 1, Number(columnText) - 1) as Partial<{
      originalSource: string;
      originalLine: number;
      originalColumn: number;
    }>;
    if (entry.originalSource === undefined || entry.originalLine === undefined) return line;
    const source = entry.originalSource.replace(/^(?:\.\.\/)+/, "");
    return `${head}${source}:${entry.originalLine + 1}:${(entry.originalColumn ?? 0) + 1}${tail}`;
  }

  #mapOf(file: string): SourceMap | null {
    let map = this.#maps.get(file);
    if (map === undefined) {
      const payload = this.load(file);
      map = payload === undefined ? null : new SourceMap(payload);
      this.#maps.set(file, map);
    }
    return map;
  }
}

/**
 * Rewrites the stacks of the errors (and their causes) found in a log line's attributes, in place,
 * unless Node already maps them (`--enable-source-maps`, then nothing is left to do).
 */
export function mapErrorStacks(attributes: unknown, mapper: StackMapper): void {
  if (process.sourceMapsEnabled || typeof attributes !== "object" || attributes === null) return;
  for (const value of Object.values(attributes)) {
    let error: unknown = value;
    for (let depth = 0; error instanceof Error && depth < 5; depth++) {
      if (typeof error.stack === "string") error.stack = mapper.map(error.stack);
      error = error.cause;
    }
  }
}

/** An ErrorLogger whose logged errors carry source-mapped stacks (see the module comment). */
export function sourceMappedErrorLogger(logger: ErrorLogger, mapper = new StackMapper()): ErrorLogger {
  return {
    warn: (message, ...extra) => {
      for (const attributes of extra) mapErrorStacks(attributes, mapper);
      logger.warn(message, ...extra);
    },
    error: (message, ...extra) => {
      for (const attributes of extra) mapErrorStacks(attributes, mapper);
      logger.error(message, ...extra);
    },
  };
}
