import { ConfigError, loadConfig } from "./config.js";
import type { LiveSettings } from "./live-settings.js";
import type { Logger } from "./observability/logger.js";

/**
 * SIGHUP: read CLIENTS_FILE and SIGNING_KEYS_FILE again through the same
 * loader (same rules, same messages) and swap both at once. A configuration
 * that fails validation changes nothing and is logged as one error; nothing
 * here throws, so a reload never stops the service. Without SIGNING_KEYS_FILE
 * the ephemeral keys are kept: new ones would orphan every token issued.
 */
export function reloadSettings(
  env: Readonly<Record<string, string | undefined>>,
  live: LiveSettings,
  logger: Logger,
): boolean {
  let next: ReturnType<typeof loadConfig>;
  try {
    next = loadConfig(env);
  } catch (error) {
    const problems = error instanceof ConfigError ? error.problems : [String(error)];
    logger.error(
      { event: "reload_failed", problems },
      "reload refused: the configuration is invalid; the previous clients and keys stay in use",
    );
    return false;
  }
  const signingKeys = next.devDefaults.ephemeralSigningKey ? live.signingKeys() : next.signingKeys;
  live.replace({ clients: next.clients, signingKeys });
  logger.info(
    {
      event: "reloaded",
      clients: next.clients.size,
      signing_keys: signingKeys.map((k) => `${k.alg}:${k.kid}`),
    },
    "clients and signing keys reloaded",
  );
  return true;
}
