/**
 * Runs a command to its end and returns its exit status and output, for tests
 * of what an operator sees: the `token-service` CLI and `src/main.ts` as
 * child processes.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  /** The whole environment of the child (nothing is inherited but what is given). */
  env: Record<string, string | undefined>;
  /** Kill the child after this long (a test must end even if the child does not). */
  timeoutMs?: number;
}

export function runProcess(
  file: string,
  args: readonly string[],
  options: RunOptions,
): Promise<ProcessResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        cwd: options.cwd ?? REPO,
        env: options.env,
        timeout: options.timeoutMs ?? 60_000,
        killSignal: "SIGKILL",
      },
      (error, stdout, stderr) => {
        const failed = error as (NodeJS.ErrnoException & { signal?: NodeJS.Signals }) | null;
        resolve({
          code: failed ? (typeof failed.code === "number" ? failed.code : null) : 0,
          signal: failed?.signal ?? null,
          stdout,
          stderr,
        });
      },
    );
  });
}

/** The environment every child needs to find node and npm, and nothing else. */
export function baseEnv(): Record<string, string | undefined> {
  return { PATH: process.env.PATH, HOME: process.env.HOME };
}

/** `src/main.ts` as `npm start` runs it. */
export function runMain(env: Record<string, string | undefined>, timeoutMs?: number) {
  return runProcess(
    process.execPath,
    ["--conditions=@token-service/source", "--import", "tsx", "src/main.ts"],
    { env: { ...baseEnv(), ...env }, ...(timeoutMs === undefined ? {} : { timeoutMs }) },
  );
}

/** The `token-service` bin, from any folder. */
export function runBin(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  cwd = REPO,
) {
  return runProcess(process.execPath, [`${REPO}/bin/token-service.js`, ...args], {
    cwd,
    env: { ...baseEnv(), ...env },
  });
}
