import cluster, { type Worker } from "node:cluster";

/**
 * Start-up failures after the configuration loaded (a port already in use,
 * a HOST that is not on this machine, anything thrown while the app is
 * built): one line on stderr and exit status 1, never a stack trace. With
 * WORKERS > 1 every worker meets the same failure, so workers send their line
 * to the primary, which prints the first one and stops them all instead of
 * restarting them forever.
 */
export const STARTUP_FAILURE_EXIT_CODE = 1;

const MESSAGE_TYPE = "token-service:startup-failed";
/** How long a worker waits for the primary to stop it before it exits by itself. */
const WORKER_FALLBACK_EXIT_MS = 3000;

/** What listen(2) errors mean to an operator, and what to change. */
const LISTEN_ERRORS: Readonly<Record<string, string>> = {
  EADDRINUSE:
    "the address is already in use (EADDRINUSE): stop the process listening there or set PORT",
  EACCES: "permission denied (EACCES): ports below 1024 need privileges; set PORT to 1024 or above",
  EADDRNOTAVAIL: "no such address on this machine (EADDRNOTAVAIL): check HOST",
  ENOTFOUND: "the host name does not resolve (ENOTFOUND): check HOST",
  EAI_AGAIN: "the host name does not resolve (EAI_AGAIN): check HOST",
};

export function describeStartupFailure(
  error: unknown,
  where?: { host: string; port: number },
): string {
  const e = (typeof error === "object" && error !== null ? error : {}) as NodeJS.ErrnoException & {
    address?: string | null;
    port?: number;
    hostname?: string;
  };
  const known = e.code === undefined ? undefined : LISTEN_ERRORS[e.code];
  if (known !== undefined && ["listen", "bind", "getaddrinfo"].includes(e.syscall ?? "")) {
    const host = e.address ?? where?.host ?? e.hostname ?? "?";
    const port = e.port ?? where?.port ?? "?";
    return `cannot listen on ${host}:${port}: ${known}`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return `start-up failed: ${message.split("\n")[0]}`;
}

/**
 * Reports a start-up failure. In a worker the line goes to the primary and
 * the promise never settles: the primary stops the worker (a fallback timer
 * exits it should the primary be gone). Elsewhere it prints the line; the
 * caller then exits with STARTUP_FAILURE_EXIT_CODE.
 */
export function reportStartupFailure(
  error: unknown,
  where?: { host: string; port: number },
): Promise<void> {
  const line = `token-service: ${describeStartupFailure(error, where)}`;
  const send = process.send?.bind(process);
  if (cluster.isWorker && send) {
    return new Promise(() => {
      send({ type: MESSAGE_TYPE, line });
      setTimeout(() => {
        process.stderr.write(`${line}\n`);
        process.exit(STARTUP_FAILURE_EXIT_CODE);
      }, WORKER_FALLBACK_EXIT_MS);
    });
  }
  process.stderr.write(`${line}\n`);
  return Promise.resolve();
}

export interface WorkerStartupWatch {
  /** True once the worker listens; a worker that exits before is a failed start. */
  hasListened(worker: Worker): boolean;
}

/**
 * Primary side: calls `onFailure(line)` for the first worker that reports a
 * start-up failure (later reports of the same failure are dropped).
 */
export function watchWorkerStartup(onFailure: (line: string) => void): WorkerStartupWatch {
  const listened = new WeakSet<Worker>();
  let reported = false;
  cluster.on("listening", (worker) => listened.add(worker));
  cluster.on("message", (_worker, message: unknown) => {
    const { type, line } = (message ?? {}) as { type?: unknown; line?: unknown };
    if (type !== MESSAGE_TYPE || typeof line !== "string" || reported) return;
    reported = true;
    onFailure(line);
  });
  return { hasListened: (worker) => listened.has(worker) };
}
