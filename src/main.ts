import cluster from "node:cluster";
import { createApp } from "./app.js";
import { type Config, ConfigError, loadConfig } from "./config.js";
import { createLogger, type Logger } from "./observability/logger.js";

/**
 * Entry only: load config → build app → listen → drain on SIGTERM/SIGINT.
 * With WORKERS > 1 the primary forks that many workers (node:cluster) which
 * share the listening port; each worker is a whole service on the shared store.
 */
let config: Config;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  throw error;
}
const logger = createLogger(config.logLevel);

if (config.workers > 1 && cluster.isPrimary) {
  runPrimary(config, logger);
} else {
  await runService(config, logger);
}

function runPrimary(config: Config, logger: Logger): void {
  announceDefaults(config, logger);
  for (let i = 0; i < config.workers; i++) cluster.fork();
  let stopping = false;
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) return;
    logger.error(
      { event: "worker_exited", pid: worker.process.pid, code, signal },
      "worker exited; restarting",
    );
    cluster.fork();
  });
  onStopSignal(() => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGTERM");
    cluster.on("exit", () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    });
  });
}

async function runService(config: Config, logger: Logger): Promise<void> {
  const app = createApp(config, { logger });
  const { port } = await app.listen();
  logger.info(
    {
      event: "listening",
      port,
      host: config.host,
      managementPort: app.managementPort,
      managementHost: config.management.host,
      store: config.store.kind,
      pid: process.pid,
    },
    "token-service listening",
  );
  if (cluster.isPrimary) announceDefaults(config, logger);
  onStopSignal(() => {
    logger.info({ event: "draining" }, "shutting down");
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ event: "shutdown_failed", message: String(error) }, "shutdown failed");
        process.exit(1);
      },
    );
  });
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
