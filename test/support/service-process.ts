/**
 * The service as operators run it: `src/main.ts` in a child process (its pid
 * is the server's own), with its log lines (JSON on stdout) collected, its
 * ports read from the `listening` line, signals sent to it, and its memory
 * read from the kernel's view (VmRSS, and VmHWM, the peak, from
 * /proc/<pid>/status) for the hardening suite.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { baseEnv, REPO } from "./run-process.js";

export interface ServiceProcess {
  child: ChildProcess;
  pid: number;
  /** The port of the first `listening` line (the only one with WORKERS=1). */
  port: number;
  /** The management listener's port, when it listens. */
  managementPort?: number;
  /** The internal listener's port (INTERNAL_PORT), when it listens. */
  internalPort?: number;
  baseUrl: string;
  /** Every stdout line so far, parsed when JSON. */
  lines(): Array<Record<string, unknown>>;
  /** Every stdout and stderr line so far, as text (the last 2,000). */
  output(): string[];
  /** Resolves with the first line (after `from` lines) that `match` accepts; rejects after `timeoutMs`. */
  waitForLine(
    match: (line: Record<string, unknown>) => boolean,
    options?: { from?: number; timeoutMs?: number },
  ): Promise<Record<string, unknown>>;
  /** Resident set size now, MiB (NaN once the process is gone). */
  rssMiB(): number;
  /** Peak resident set size since start (VmHWM), MiB. */
  peakRssMiB(): number;
  /** True while the process runs. */
  alive(): boolean;
  stop(): Promise<void>;
}

/** Children still running when the test process ends are killed with it. */
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

const MAX_OUTPUT_LINES = 2000;

/**
 * Starts `src/main.ts` on PORT=0 with `env` (added to PATH and HOME only:
 * nothing else of the test's environment leaks in) and waits for its
 * `listening` line(s). `nodeFlags` go before the entry (e.g.
 * `--max-old-space-size=256`).
 */
export async function startServiceProcess(
  env: Record<string, string | undefined> = {},
  options: { listeningLines?: number; nodeFlags?: string[] } = {},
): Promise<ServiceProcess> {
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeFlags ?? []),
      "--conditions=@token-service/source",
      "--import",
      "tsx",
      "src/main.ts",
    ],
    { cwd: REPO, env: { ...baseEnv(), PORT: "0", ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  running.add(child);
  child.once("exit", () => running.delete(child));
  const exited = once(child, "exit");
  const parsed: Array<Record<string, unknown>> = [];
  const text: string[] = [];
  const waiters = new Set<() => void>();
  const keep = (line: string) => {
    text.push(line);
    if (text.length > MAX_OUTPUT_LINES) text.splice(0, text.length - MAX_OUTPUT_LINES);
  };
  let buffer = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    buffer += chunk;
    let newline = buffer.indexOf("\n");
    while (newline >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      keep(line);
      try {
        parsed.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        parsed.push({ text: line });
      }
      newline = buffer.indexOf("\n");
    }
    for (const wake of waiters) wake();
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    for (const line of chunk.split("\n")) if (line !== "") keep(line);
  });

  const waitForLine: ServiceProcess["waitForLine"] = (
    match,
    { from = 0, timeoutMs = 30_000 } = {},
  ) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = parsed.slice(from).find(match);
        if (found !== undefined) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        }
        if (child.exitCode !== null) {
          waiters.delete(check);
          clearTimeout(timer);
          reject(new Error(`service exited with ${child.exitCode}: ${stderr.slice(0, 500)}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(
          new Error(`no matching log line in ${timeoutMs} ms; stderr: ${stderr.slice(0, 500)}`),
        );
      }, timeoutMs);
      if (!check()) waiters.add(check);
    });
  child.once("exit", () => {
    for (const wake of waiters) wake();
  });

  const listening = options.listeningLines ?? 1;
  const isListening = (line: Record<string, unknown>) => line.event === "listening";
  for (let i = 0; i < listening; i++) {
    await waitForLine((line) => isListening(line) && parsed.filter(isListening).length > i);
  }
  const first = parsed.find(isListening) ?? {};
  const port = Number(first.port);
  const pid = child.pid as number;
  return {
    child,
    pid,
    port,
    ...(typeof first.managementPort === "number" ? { managementPort: first.managementPort } : {}),
    ...(typeof first.internalPort === "number" ? { internalPort: first.internalPort } : {}),
    baseUrl: `http://127.0.0.1:${port}`,
    lines: () => parsed,
    output: () => [...text],
    waitForLine,
    rssMiB: () => statusField(pid, "VmRSS"),
    peakRssMiB: () => statusField(pid, "VmHWM"),
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A field of /proc/<pid>/status in MiB; NaN once the process is gone. */
function statusField(pid: number, field: "VmRSS" | "VmHWM"): number {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return Number.NaN;
  }
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  if (!match?.[1]) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}
