import { type Config, ConfigError, loadConfig, type StoreConfig } from "../config.js";
import { type CliIo, EXIT } from "./cli-io.js";
import { parseCommandArgs } from "./parse-command-args.js";

export const CONFIG_CHECK_HELP = `Usage: token-service config check

Loads the configuration from the environment with the service's own loader
and prints what the service would print: every problem at once (exit 78, as
the service exits), or one summary line (exit 0). It starts nothing and
connects to nothing: whether the store answers is what /readyz tells.

Example:
  env $(cat .env) NODE_ENV=production token-service config check
`;

export function configCheck(args: readonly string[], io: CliIo): number {
  const { values } = parseCommandArgs(args, { help: { type: "boolean", short: "h" } });
  if (values.help) {
    io.out(CONFIG_CHECK_HELP);
    return EXIT.ok;
  }
  let config: Config;
  try {
    config = loadConfig(io.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Byte for byte what src/main.ts writes before it exits 78.
    io.err(`${error.message}\n`);
    return EXIT.config;
  }
  io.out(`${summarize(config, io.env.NODE_ENV)}\n`);
  return EXIT.ok;
}

/** One line, no secret: what was loaded and which development defaults are in use. */
export function summarize(config: Config, nodeEnv: string | undefined): string {
  const [first] = config.signingKeys;
  const keys = `${config.signingKeys.length} signing key${config.signingKeys.length === 1 ? "" : "s"}${first ? ` (${first.alg} "${first.kid}" signs)` : ""}`;
  const parts = [
    `store ${describeStore(config.store)}`,
    keys,
    `${config.clients.size} client${config.clients.size === 1 ? "" : "s"}`,
    `issuer ${config.issuerUrl}`,
    `listening on ${config.host}:${config.port}`,
    ...(config.internal
      ? [`internal API (MfaTokenService) on ${config.internal.host}:${config.internal.port}`]
      : []),
    `${config.workers} worker${config.workers === 1 ? "" : "s"}`,
    nodeEnv ? `NODE_ENV=${nodeEnv}` : "NODE_ENV unset",
  ];
  const d = config.devDefaults;
  const defaults = [
    d.memoryStore && "memory store",
    d.ephemeralSigningKey && "ephemeral signing key",
    d.demoClients && "demo client",
    d.generatedInternalApiKey && "generated INTERNAL_API_KEY",
    d.ephemeralSecretsKey && "per-run SECRETS_KEY",
  ].filter((x): x is string => typeof x === "string");
  const note =
    defaults.length > 0
      ? `; development defaults in use: ${defaults.join(", ")} (refused with NODE_ENV=production)`
      : "";
  return `configuration OK: ${parts.join(", ")}${note}`;
}

/** Where the store is, without the credentials a REDIS_URL may carry. */
function describeStore(store: StoreConfig): string {
  switch (store.kind) {
    case "memory":
      return "memory (in-process)";
    case "redis": {
      const url = URL.canParse(store.url) ? new URL(store.url) : undefined;
      return url
        ? `redis (${url.protocol}//${url.host}${url.pathname.replace(/^\/$/, "")})`
        : "redis";
    }
    case "redis-sentinel":
      // Addresses and the group name only: never the passwords.
      return `redis-sentinel (${store.name} via ${store.sentinels.map((n) => `${n.host.includes(":") ? `[${n.host}]` : n.host}:${n.port}`).join(",")})`;
    case "redis-cluster":
      return `redis-cluster (${store.nodes.map((n) => `${n.host}:${n.port}`).join(",")})`;
    case "postgres": {
      // Host, port and database only: never the password, nor the query's TLS file paths.
      const url = URL.canParse(store.url) ? new URL(store.url) : undefined;
      return url ? `postgres (${url.protocol}//${url.host}${url.pathname})` : "postgres";
    }
  }
}
