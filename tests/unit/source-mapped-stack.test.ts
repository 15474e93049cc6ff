// Logged errors keep readable stacks without --enable-source-maps: a real esbuild bundle (minified,
// linked map, as serverless-esbuild writes getFeatures) throws, and the logged stack points at
// the TypeScript source line, not at column 4,000 of line 1 of the bundle.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { mapErrorStacks, StackMapper, sourceMappedErrorLogger } from "#commons/source-mapped-stack.js";

let dir: string;
let bundle: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "sfs-stack-"));
  mkdirSync(join(dir, "src"));
  writeFileSync(
    join(dir, "src/failing.ts"),
    [
      "// padding so the throwing line is not the first",
      "export function failDeep(input: string): never {",
      '  const reason: string = "cannot serve " + input;',
      "  throw new Error(reason);",
      "}",
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(dir, "src/entry.ts"),
    'import { failDeep } from "./failing";\nexport function run(): never {\n  return failDeep("x");\n}\n',
  );
  await build({
    entryPoints: [join(dir, "src/entry.ts")],
    outfile: join(dir, "out/entry.mjs"),
    bundle: true,
    minify: true,
    sourcemap: "linked",
    sourcesContent: false, // as serverless.yml packages it: the mapping needs no sources
    format: "esm",
    platform: "node",
  });
  bundle = join(dir, "out/entry.mjs");
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The bundle's error as a fresh Node process sees it (as Lambda runs it: no --enable-source-maps).
 * Not imported in-process: vitest would transform and map the bundle itself.
 */
function thrownByBundle(): Error {
  const probe = `import(${JSON.stringify(pathToFileURL(bundle).href)}).then((m) => { try { m.run(); } catch (e) { process.stdout.write(e.stack); } });`;
  const child = spawnSync(process.execPath, ["-e", probe], {
    encoding: "utf8",
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  const error = new Error("cannot serve x");
  error.stack = child.stdout;
  return error;
}

describe("StackMapper", () => {
  it("maps a minified bundle's frames to the TypeScript source lines", () => {
    const error = thrownByBundle();
    expect(error.stack).toContain("entry.mjs:");
    const mapped = new StackMapper().map(error.stack as string);
    expect(mapped).toMatch(/src\/failing\.ts:4:\d+/);
    expect(mapped).toMatch(/src\/entry\.ts:3:\d+/);
    expect(mapped).not.toContain("entry.mjs:");
    expect(mapped.split("\n")[0]).toBe("Error: cannot serve x");
  });

  it("reads a bundle's map once, on the first frame that needs it", () => {
    const error = thrownByBundle();
    const load = vi.fn((file: string) => JSON.parse(readFileSync(`${file}.map`, "utf8")));
    const mapper = new StackMapper(load);
    expect(load).not.toHaveBeenCalled();
    mapper.map(error.stack as string);
    mapper.map(error.stack as string);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it("maps the frames of anonymous async functions (`at async file:line:col`)", () => {
    const stack = thrownByBundle().stack as string;
    const frame = /(file:\/\/\S+\.mjs:\d+:\d+)/.exec(stack)?.[1] ?? /(\/\S+\.mjs:\d+:\d+)/.exec(stack)?.[1];
    expect(frame).toBeDefined();
    const mapped = new StackMapper().map(`Error: x\n    at async ${frame}`);
    expect(mapped).toMatch(/^ {4}at async src\/(failing|entry)\.ts:\d+:\d+$/m);
  });

  it("leaves frames without a map (and non-frame lines) as they are", () => {
    const stack = "Error: boom\n    at f (/nowhere/no-map.js:1:10)\n    at node:internal/x:2:3";
    expect(new StackMapper().map(stack)).toBe(stack);
  });
});

describe("sourceMappedErrorLogger", () => {
  it("logs errors, and their causes, with mapped stacks", () => {
    const cause = thrownByBundle();
    const error = new Error("request failed", { cause });
    const logged: unknown[][] = [];
    const logger = sourceMappedErrorLogger({
      warn: (...args) => logged.push(["warn", ...args]),
      error: (...args) => logged.push(["error", ...args]),
    });
    logger.error("request failed", { statusCode: 500, error });
    expect(logged).toHaveLength(1);
    const [level, message, attributes] = logged[0] as [string, string, { error: Error }];
    expect([level, message]).toEqual(["error", "request failed"]);
    expect((attributes.error.cause as Error).stack).toMatch(/src\/failing\.ts:4:\d+/);
  });

  it("does nothing when Node already maps stacks (--enable-source-maps)", () => {
    const error = thrownByBundle();
    const raw = error.stack;
    const enabled = vi.spyOn(process, "sourceMapsEnabled", "get").mockReturnValue(true);
    try {
      mapErrorStacks({ error }, new StackMapper());
    } finally {
      enabled.mockRestore();
    }
    expect(error.stack).toBe(raw);
  });
});
