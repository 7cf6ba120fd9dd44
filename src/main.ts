import cluster from "node:cluster";
import { createApp } from "./app.js";
import { type Config, ConfigError, loadConfig } from "./config.js";
import { createLogger, type Logger } from "./observability/logger.js";
import { startTracing } from "./observability/tracing-sdk.js";
import { startPrimaryManagement } from "./primary-management.js";
import { reloadSettings } from "./reload.js";
import {
  reportStartupFailure,
  STARTUP_FAILURE_EXIT_CODE,
  watchWorkerStartup,
} from "./startup-failure.js";

/**
 * Entry only: load config → build app → listen → drain on SIGTERM/SIGINT.
 * With WORKERS > 1 the primary forks that many workers (node:cluster) which
 * share the listening port; each worker is a whole service on the shared store.
 * A start-up failure is one line on stderr, never a stack trace: the
 * configuration's problems (exit 78), anything else (exit 1, startup-failure.ts).
 */
let config: Config;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  await reportStartupFailure(error);
  process.exit(STARTUP_FAILURE_EXIT_CODE);
}
const logger = createLogger(config.logLevel);

if (config.workers > 1 && cluster.isPrimary) {
  runPrimary(config, logger);
} else {
  try {
    await runService(config, logger);
  } catch (error) {
    await reportStartupFailure(error, config);
    process.exit(STARTUP_FAILURE_EXIT_CODE);
  }
}

function runPrimary(config: Config, logger: Logger): void {
  announceDefaults(config, logger);
  let stopping = false;
  const stopWorkers = (exitCode: number): void => {
    if (stopping) return;
    stopping = true;
    // Also the status of a natural exit: the primary's loop empties once the workers are gone.
    process.exitCode = exitCode;
    const exitWhenNoneLeft = () => {
      if (!Object.values(cluster.workers ?? {}).every((w) => w?.isDead())) return;
      const code = Number(process.exitCode ?? exitCode);
      if (code === 0) logger.info({ event: "stopped", workers: config.workers }, "stopped");
      process.exit(code);
    };
    // A worker that could not stop cleanly makes the primary's stop unclean too.
    cluster.on("exit", (_worker, code) => {
      if (code !== 0 && exitCode === 0) process.exitCode = 1;
    });
    cluster.on("exit", exitWhenNoneLeft);
    void management.stop();
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGTERM");
    exitWhenNoneLeft();
  };
  // Every worker meets the same start-up failure (e.g. the port is in use):
  // print it once and stop, rather than restart workers that cannot start.
  const startup = watchWorkerStartup((line) => {
    if (stopping) return;
    process.stderr.write(`${line}\n`);
    stopWorkers(STARTUP_FAILURE_EXIT_CODE);
  });
  // /metrics summed over the workers, /readyz over their readiness (SPEC §6).
  const management = startPrimaryManagement(config, logger, (line) => {
    if (stopping) return;
    process.stderr.write(`${line}\n`);
    stopWorkers(STARTUP_FAILURE_EXIT_CODE);
  });
  for (let i = 0; i < config.workers; i++) cluster.fork();
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) return;
    if (!startup.hasListened(worker)) {
      process.stderr.write(
        `token-service: worker ${worker.process.pid} exited during start-up (${signal ?? `exit code ${code}`})\n`,
      );
      stopWorkers(STARTUP_FAILURE_EXIT_CODE);
      return;
    }
    logger.error(
      { event: "worker_exited", pid: worker.process.pid, code, signal },
      "worker exited; restarting",
    );
    cluster.fork();
  });
  onStopSignal(() => stopWorkers(0));
  // Each worker reloads its own clients and keys; the primary only passes the signal on.
  process.on("SIGHUP", () => {
    logger.info({ event: "reload_requested", workers: config.workers }, "forwarding SIGHUP");
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGHUP");
  });
}

async function runService(config: Config, logger: Logger): Promise<void> {
  const tracing = await startTracing(config.tracing, logger);
  const app = createApp(config, { logger, clusterWorker: cluster.isWorker });
  // Never exits on SIGHUP (Node's default would): re-read the clients and keys files.
  process.on("SIGHUP", () => {
    reloadSettings(process.env, app.ctx.live, logger);
  });
  const { port } = await app.listen();
  // Before the `listening` line: whoever reads it may signal at once, and a
  // SIGTERM before the handler exists would kill the process without a drain.
  onStopSignal(() => {
    // SPEC §6 "Stopping": readiness off at once, serve for the delay with each
    // answer closing its connection, then drain (src/app.ts stop()).
    const { delaySeconds, timeoutSeconds } = config.shutdown;
    const started = performance.now();
    logger.info({ event: "draining", delaySeconds, timeoutSeconds }, "shutting down");
    app.stop({ delayMs: delaySeconds * 1000, timeoutMs: timeoutSeconds * 1000 }).then(
      // Then the spans still queued go out (tracing on); a failed export does not block the exit.
      () =>
        tracing.shutdown().finally(() => {
          // One line per service; a cluster worker's names itself, the primary's comes last.
          const event = cluster.isWorker ? "worker_stopped" : "stopped";
          const durationMs = Math.round(performance.now() - started);
          logger.info({ event, pid: process.pid, durationMs }, "stopped");
          process.exit(0);
        }),
      (error: unknown) => {
        logger.error({ event: "shutdown_failed", message: String(error) }, "shutdown failed");
        process.exit(1);
      },
    );
  });
  logger.info(
    {
      event: "listening",
      port,
      host: config.host,
      managementPort: app.managementPort,
      managementHost: config.management.host,
      ...(config.internal
        ? { internalPort: app.internalPort, internalHost: config.internal.host }
        : {}),
      store: config.store.kind,
      pid: process.pid,
    },
    "token-service listening",
  );
  if (cluster.isPrimary) {
    announceDefaults(config, logger);
    announceAddress(config, port);
  }
}

function announceDefaults(config: Config, logger: Logger): void {
  const defaults = config.devDefaults;
  if (defaults.memoryStore || defaults.ephemeralSigningKey || defaults.demoClients) {
    logger.warn(
      { event: "dev_defaults", ...defaults },
      "running on the embedded development defaults (refused with NODE_ENV=production)",
    );
  }
  if (defaults.generatedInternalApiKey) {
    // Printed once, to the terminal only (not through the logger): the operator
    // needs it to call MfaTokenService.IssueMfaToken on this dev instance.
    process.stdout.write(
      `\nGenerated INTERNAL_API_KEY for this run (dev only; set INTERNAL_API_KEY to choose one):\n  ${config.internalApiKey}\n\n`,
    );
  }
}

/**
 * On the embedded default (`npm start`) a newcomer reads the terminal, not
 * the JSON log: say where the service and the demo page are, in plain words.
 * Production logs stay pure JSON lines.
 */
function announceAddress(config: Config, port: number): void {
  const { memoryStore, ephemeralSigningKey, demoClients } = config.devDefaults;
  if (!(memoryStore || ephemeralSigningKey || demoClients)) return;
  const host = ["127.0.0.1", "0.0.0.0", "::", "::1"].includes(config.host)
    ? "localhost"
    : config.host;
  const base = `http://${host}:${port}`;
  process.stdout.write(
    `\ntoken-service is listening on ${base}/ (another port: PORT=9090 npm start)\n${
      config.demo ? `The demo page: ${base}/demo\n` : ""
    }\n`,
  );
}

function onStopSignal(stop: () => void): void {
  let stopping = false;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      stop();
    });
  }
}
