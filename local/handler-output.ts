// The handlers' own output (Powertools JSON logs and EMF metric lines, one or two per request) goes
// to a log file, as it would go to CloudWatch Logs, instead of burying the pipeline's progress in
// the terminal. The pipeline writes its own lines through the writers returned here.
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname } from "node:path";

export interface ProcessOutput {
  /** Writes to the real stdout / stderr, whatever the handlers' output is redirected to. */
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly restore: () => void;
}

export function captureHandlerOutput(logFile: string, alsoToTerminal: boolean): ProcessOutput {
  mkdirSync(dirname(logFile), { recursive: true });
  const log = createWriteStream(logFile, { flags: "a" });
  const realOut = process.stdout.write.bind(process.stdout);
  const realErr = process.stderr.write.bind(process.stderr);
  const redirect =
    (real: typeof realOut) =>
    (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
      log.write(chunk);
      if (alsoToTerminal) real(chunk);
      const callback = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      callback?.();
      return true;
    };
  process.stdout.write = redirect(realOut) as typeof process.stdout.write;
  process.stderr.write = redirect(realErr) as typeof process.stderr.write;
  return {
    stdout: (text) => {
      realOut(text);
    },
    stderr: (text) => {
      realErr(text);
    },
    restore: () => {
      process.stdout.write = realOut as typeof process.stdout.write;
      process.stderr.write = realErr as typeof process.stderr.write;
      log.end();
    },
  };
}
