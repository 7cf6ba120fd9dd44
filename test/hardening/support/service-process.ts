/**
 * The service as a child process (`node --import tsx src/main.ts`, the pid is
 * the server's own), so an attack measures its memory from the kernel's view:
 * VmRSS and VmHWM (the peak) from /proc/<pid>/status. Stopped by its own pid.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  FIXTURE_CLIENTS_FILE,
  TEST_INTERNAL_API_KEY,
  TEST_SECRETS_KEY,
} from "../../support/test-service.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export interface ServiceProcess {
  pid: number;
  port: number;
  /** The management listener's port (undefined when the service does not report one). */
  managementPort?: number;
  baseUrl: string;
  /** Resident set size now, in MiB. */
  rssMiB(): number;
  /** Peak resident set size since start (VmHWM), in MiB. */
  peakRssMiB(): number;
  /** stdout+stderr lines so far (the service logs JSON lines). */
  output(): string[];
  /** True while the process runs. */
  alive(): boolean;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** NaN once the process is gone. */
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

/**
 * Starts the service on PORT=0 and MANAGEMENT_PORT=0 with the fixture clients
 * and keys, and waits for its `listening` log line. `env` adds or overrides
 * variables; `nodeFlags` go before the entry (e.g. `--max-old-space-size=256`).
 */
export async function startServiceProcess(
  options: { env?: Record<string, string>; nodeFlags?: string[]; root?: string } = {},
): Promise<ServiceProcess> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    PORT: "0",
    MANAGEMENT_PORT: "0",
    HOST: "127.0.0.1",
    CLIENTS_FILE: FIXTURE_CLIENTS_FILE,
    INTERNAL_API_KEY: TEST_INTERNAL_API_KEY,
    SECRETS_KEY: TEST_SECRETS_KEY,
    LOG_LEVEL: "info",
    ...options.env,
  };
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeFlags ?? []),
      "--conditions=@token-service/source",
      "--import",
      "tsx",
      "src/main.ts",
    ],
    { cwd: options.root ?? ROOT, env, stdio: ["ignore", "pipe", "pipe"] },
  );
  running.add(child);
  child.once("exit", () => running.delete(child));
  const lines: string[] = [];
  let buffered = "";
  const onChunk = (chunk: Buffer) => {
    buffered += chunk.toString("utf8");
    const parts = buffered.split("\n");
    buffered = parts.pop() ?? "";
    lines.push(...parts);
    if (lines.length > 2000) lines.splice(0, lines.length - 2000);
  };
  child.stdout?.on("data", onChunk);
  child.stderr?.on("data", onChunk);

  const deadline = Date.now() + 30_000;
  let listening: { port: number; managementPort?: number } | undefined;
  while (listening === undefined) {
    for (const line of lines) {
      if (!line.startsWith("{")) continue;
      const entry = JSON.parse(line) as { event?: string; port?: number; managementPort?: number };
      if (entry.event === "listening" && entry.port !== undefined) {
        listening = { port: entry.port, managementPort: entry.managementPort };
      }
    }
    if (child.exitCode !== null) {
      throw new Error(`service exited with ${child.exitCode}:\n${lines.join("\n")}`);
    }
    if (Date.now() > deadline)
      throw new Error(`service not listening in 30 s:\n${lines.join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const pid = child.pid as number;
  return {
    pid,
    port: listening.port,
    managementPort: listening.managementPort,
    baseUrl: `http://127.0.0.1:${listening.port}`,
    rssMiB: () => statusField(pid, "VmRSS"),
    peakRssMiB: () => statusField(pid, "VmHWM"),
    output: () => [...lines],
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
