// Raw CSV files for the local pipeline, from the Spark side's deterministic generator
// (spark/tools/synthetic.py): cached by their parameters, so a second run reuses them.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";

export interface SampleFileSpec {
  readonly households: number;
  readonly start: string;
  readonly end: string;
  readonly seed?: number;
  /** A deliberately broken file (synthetic.py --malformed), e.g. bad_header. */
  readonly malformed?: string;
}

export const SEED_START = "2011-11-23";
export const SEED_END = "2014-02-28";

export function sampleFileName(spec: SampleFileSpec): string {
  const range = spec.start === spec.end ? spec.start : `${spec.start}_${spec.end}`;
  const bad = spec.malformed ? `-${spec.malformed.replace(/_/g, "-")}` : "";
  return `energy-${range}-${spec.households}h-seed${spec.seed ?? 7}${bad}.csv`;
}

/** Generates (or reuses) the file under `dir`; returns its path and whether it was reused. */
export function sampleFile(
  spec: SampleFileSpec,
  dir: string,
  python: string,
  root: string,
): { path: string; reused: boolean; seconds: number } {
  const path = join(dir, sampleFileName(spec));
  if (existsSync(path)) return { path, reused: true, seconds: 0 };
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  const args = [
    "-m",
    "tools.synthetic",
    "--out",
    `${path}.tmp`,
    "--households",
    String(spec.households),
    "--start",
    spec.start,
    "--end",
    spec.end,
    "--seed",
    String(spec.seed ?? 7),
    ...(spec.malformed ? ["--malformed", spec.malformed] : []),
  ];
  const result = spawnSync(python, args, { cwd: join(root, "spark"), encoding: "utf8", timeout: 600_000 });
  if (result.status !== 0) {
    throw new Error(`tools.synthetic failed (exit ${result.status}): ${result.stderr || result.error}`);
  }
  renameSync(`${path}.tmp`, path);
  return { path, reused: false, seconds: (Date.now() - started) / 1000 };
}
