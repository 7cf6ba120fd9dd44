/**
 * The service as operators run it: `src/main.ts` in a child process, with
 * its log lines (JSON on stdout) collected, its port read from the
 * `listening` line, and signals sent to it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { baseEnv, REPO } from "./run-process.js";

export interface ServiceProcess {
  child: ChildProcess;
  /** The port of the first `listening` line (the only one with WORKERS=1). */
  port: number;
  baseUrl: string;
  /** Every stdout line so far, parsed when JSON. */
  lines(): Array<Record<string, unknown>>;
  /** Resolves with the first line (after `from` lines) that `match` accepts; rejects after `timeoutMs`. */
  waitForLine(
    match: (line: Record<string, unknown>) => boolean,
    options?: { from?: number; timeoutMs?: number },
  ): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export async function startServiceProcess(
  env: Record<string, string | undefined>,
  options: { listeningLines?: number } = {},
): Promise<ServiceProcess> {
  const child = spawn(
    process.execPath,
    ["--conditions=@token-service/source", "--import", "tsx", "src/main.ts"],
    { cwd: REPO, env: { ...baseEnv(), PORT: "0", ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const parsed: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  let buffer = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    buffer += chunk;
    let newline = buffer.indexOf("\n");
    while (newline >= 0) {
      const text = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      try {
        parsed.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        parsed.push({ text });
      }
      newline = buffer.indexOf("\n");
    }
    for (const wake of waiters) wake();
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const waitForLine: ServiceProcess["waitForLine"] = (
    match,
    { from = 0, timeoutMs = 20_000 } = {},
  ) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = parsed.slice(from).find(match);
        if (found === undefined) return false;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(
          new Error(`no matching log line in ${timeoutMs} ms; stderr: ${stderr.slice(0, 500)}`),
        );
      }, timeoutMs);
      if (!check()) waiters.add(check);
    });

  const listening = options.listeningLines ?? 1;
  for (let i = 0; i < listening; i++) {
    await waitForLine(
      (line) =>
        line.event === "listening" && parsed.filter((l) => l.event === "listening").length > i,
    );
  }
  const port = Number(parsed.find((line) => line.event === "listening")?.port);
  return {
    child,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    lines: () => parsed,
    waitForLine,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
