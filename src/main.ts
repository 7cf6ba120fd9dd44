import { createApp } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./observability/logger.js";

/** Entry only: load config → build app → listen → drain on SIGTERM/SIGINT. */
let config: ReturnType<typeof loadConfig>;
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
const app = createApp(config, { logger });
const { port } = await app.listen();
logger.info(
  { event: "listening", port, host: config.host, store: config.store.kind },
  "token-service listening",
);

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

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: "draining", signal }, "shutting down");
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ event: "shutdown_failed", message: String(error) }, "shutdown failed");
        process.exit(1);
      },
    );
  });
}
