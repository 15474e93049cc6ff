// Protects how `npm run local` stops: SIGINT or SIGTERM sent to the npm process (not only Ctrl-C in
// a terminal) must reach the node orchestrator, during set-up too, and leave no process behind.
// Real npm, the real package.json script, scripts/local.sh and scripts/lib.sh, copied into a
// scratch project whose set-up and orchestrator are stand-ins that start a long-running child each
// (as the real ones start pip, moto, Spark) and record what they receive. The stand-in orchestrator
// does what local/main.ts does on a signal: stops its children and exits 130/143.
import { type ChildProcess, spawn } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const REPO = resolve(__dirname, "../..");

const SETUP_STAND_IN = `#!/usr/bin/env bash
# Stand-in for scripts/setup.sh: one long-running child, like an install in progress.
sleep 300 &
echo "$$ $!" > "$(dirname "$0")/../setup.pids"
if [[ "\${STAND_IN_SETUP:-quick}" == "quick" ]]; then kill $!; exit 0; fi
echo "setup running"
wait
`;

const MAIN_STAND_IN = `// Stand-in for local/main.ts: a child process (as moto or a Spark job), then "ready".
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
const child = spawn("sleep", ["300"], { stdio: "ignore" });
writeFileSync("main.pids", \`\${process.pid} \${child.pid}\`);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    writeFileSync("main.signal", signal);
    child.kill("SIGTERM");
    child.once("exit", () => process.exit(signal === "SIGINT" ? 130 : 143));
  });
}
process.stdout.write(\`ready \${process.argv.slice(2).join(" ")}\\n\`);
setInterval(() => {}, 1000);
`;

let project: string;
let npm: ChildProcess | undefined;
let output = "";

/** Alive and not a zombie (an exited child not yet reaped still answers kill 0). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, "utf8") : "";
  return !/^\d+ \(.*\) Z/.test(stat);
}

function pids(file: string): number[] {
  const path = join(project, file);
  return existsSync(path) ? readFileSync(path, "utf8").trim().split(" ").map(Number) : [];
}

function startNpm(env: Record<string, string> = {}): ChildProcess {
  output = "";
  const child = spawn("npm", ["run", "local", "--", "--households", "5"], {
    cwd: project,
    env: { ...process.env, ...env, npm_config_update_notifier: "false" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  npm = child;
  return child;
}

async function waitFor(predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function exited(
  child: ChildProcess,
  timeoutMs = 15_000,
): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolvePromise, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolvePromise({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    const timer = setTimeout(
      () => reject(new Error(`npm still running ${timeoutMs} ms after the signal; output:\n${output}`)),
      timeoutMs,
    );
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal });
    });
  });
}

beforeEach(() => {
  project = mkdtempSync(join(tmpdir(), "local-signals-"));
  mkdirSync(join(project, "scripts"), { recursive: true });
  mkdirSync(join(project, "local"), { recursive: true });
  for (const file of ["package.json", "scripts/local.sh", "scripts/lib.sh"]) {
    copyFileSync(join(REPO, file), join(project, file));
  }
  writeFileSync(join(project, "scripts/setup.sh"), SETUP_STAND_IN, { mode: 0o755 });
  writeFileSync(join(project, "local/main.ts"), MAIN_STAND_IN);
  symlinkSync(join(REPO, "node_modules"), join(project, "node_modules"));
});

afterEach(() => {
  // Whatever a failed test left running: only the processes this test started.
  for (const pid of [...pids("setup.pids"), ...pids("main.pids")])
    if (alive(pid)) process.kill(pid, "SIGKILL");
  if (npm?.pid !== undefined && alive(npm.pid)) process.kill(-npm.pid, "SIGKILL");
  npm = undefined;
  rmSync(project, { recursive: true, force: true });
});

describe("npm run local stops on SIGINT and SIGTERM sent to the npm process", () => {
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    it(`${signal} reaches the node orchestrator, which stops its children; npm exits ${code}`, async () => {
      const child = startNpm();
      await waitFor(() => output.includes("ready --households 5"), "the orchestrator to start");
      const [mainPid, mainChild] = pids("main.pids") as [number, number];
      expect(alive(mainChild)).toBe(true);

      process.kill(child.pid as number, signal);
      const exit = await exited(child);
      expect(readFileSync(join(project, "main.signal"), "utf8")).toBe(signal);
      expect(exit.code ?? 128 + (signal === "SIGINT" ? 2 : 15)).toBe(code);
      await waitFor(
        () => !alive(mainPid) && !alive(mainChild),
        "the orchestrator and its child to end",
        5_000,
      );
    });
  }

  it("SIGINT during set-up stops the set-up and its children, and never starts the orchestrator", async () => {
    const child = startNpm({ STAND_IN_SETUP: "block" });
    await waitFor(() => output.includes("setup running"), "the set-up to start");
    const [setupPid, setupChild] = pids("setup.pids") as [number, number];
    expect(alive(setupChild)).toBe(true);

    process.kill(child.pid as number, "SIGINT");
    const exit = await exited(child);
    expect(exit.code ?? 130).toBe(130);
    await waitFor(() => !alive(setupPid) && !alive(setupChild), "the set-up and its child to end", 5_000);
    expect(existsSync(join(project, "main.pids"))).toBe(false);
    expect(output).toContain("SIGINT received: stopping the set-up");
  });
});
