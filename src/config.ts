import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { resolveDemoSetting } from "./demo/demo-setting.js";
import { type ClientRegistry, parseClients } from "./oauth/client-registry.js";
import { hasDemoClient } from "./oauth/demo-client.js";
import type { LogLevel } from "./observability/logger.js";
import { parseTracingConfig, type TracingConfig } from "./observability/tracing-config.js";
import { productionIssuerRefusal } from "./production-issuer.js";
import type { RedisSafetySettings } from "./store/redis-safety-settings.js";
import type { StoreConfig } from "./store/store-config.js";
import { parseStoreSettings } from "./store/store-settings.js";
import {
  generateEphemeralSigningKeys,
  importSigningKey,
  SIGNING_ALGORITHMS,
  type SigningKey,
} from "./tokens/signing-keys.js";

export interface Config {
  port: number;
  host: string;
  /** node:cluster workers sharing the port (WORKERS: a number or "auto" = cores). */
  workers: number;
  /** Always ends with "/". */
  issuerUrl: string;
  issuerName: string;
  store: StoreConfig;
  /** What a Redis store checks and waits for (SPEC §7; unused by the other stores). */
  redisSafety: RedisSafetySettings;
  clients: ClientRegistry;
  internalApiKey: string;
  /**
   * INTERNAL_PORT / INTERNAL_HOST: when set, token.v1.MfaTokenService is
   * served only on this listener (port 0 picks a free one), never on the
   * public port. Undefined: it is served on the public port.
   */
  internal: { port: number; host: string } | undefined;
  /** First key signs; all are published in the JWKS. */
  signingKeys: readonly SigningKey[];
  /** 32 bytes, AES-256-GCM key for secrets at rest (and mfa_tokens). */
  secretsKey: Buffer;
  mfaTokenTtlSeconds: number;
  accessTokenTtlSeconds: number;
  /** MFA API access tokens (audience `<issuer>mfa/`) live the smaller of this and accessTokenTtlSeconds. */
  mfaApiTokenTtlSeconds: number;
  /** A pending (not yet activated) OTP enrollment expires this long after Associate. */
  pendingEnrollmentTtlSeconds: number;
  /** Refresh-token families one user may hold; a login beyond it revokes the oldest. */
  maxSessionsPerUser: number;
  otpMaxFailures: number;
  otpFailureRefillSeconds: number;
  /** Which headers may name the client's address (TRUST_PROXY, TRUST_AUTH0_FORWARDED_FOR). */
  clientAddress: ClientAddressConfig;
  /** The client address's failure bucket (ADDRESS_THROTTLING; src/oauth/address-throttle.ts). */
  addressThrottling: AddressThrottlingConfig;
  logLevel: LogLevel;
  /** ACCESS_LOG (default true): one JSON line per request at info. */
  accessLog: boolean;
  /** OpenTelemetry tracing, from the OTEL_* variables (off unless an OTLP endpoint is set). */
  tracing: TracingConfig;
  /** RFC 9449: ± seconds for a proof's iat; server nonces (§8) and their rotation window. */
  dpop: { iatSkewSeconds: number; requireNonce: boolean; nonceWindowSeconds: number };
  /** Connection and request limits of the public port (docs/limits.md). */
  http: HttpLimits;
  /** Long-lived server streams (grpc.health.v1.Health/Watch): a budget and a lifetime. */
  streams: StreamLimits;
  /** SPEC §6 "Stopping": the SIGTERM sequence. */
  shutdown: ShutdownConfig;
  /** STORE_DEADLINE_MS: all the store work of one request (src/store/store-deadline.ts). */
  storeDeadlineMs: number;
  /** The operations listener: /metrics, /healthz, /readyz (port 0 picks a free one). */
  /**
   * `explicit`: MANAGEMENT_PORT was set. A default port that is taken (a
   * second instance on one machine) is then not fatal: the service runs
   * without its management listener and logs why.
   */
  management: { port: number; host: string; explicit: boolean };
  /** Also serve /metrics on the public port. */
  publicMetrics: boolean;
  /** DEMO: serve the demo page at /demo (src/demo/demo-setting.ts has the rule). */
  demo: boolean;
  /** Which embedded defaults are in use (refused when NODE_ENV=production). */
  devDefaults: {
    memoryStore: boolean;
    ephemeralSigningKey: boolean;
    demoClients: boolean;
    generatedInternalApiKey: boolean;
    ephemeralSecretsKey: boolean;
  };
}

export interface AddressThrottlingConfig {
  /** ADDRESS_THROTTLING: default on with NODE_ENV=production, off otherwise. */
  enabled: boolean;
  maxFailures: number;
  refillSeconds: number;
}

export interface ClientAddressConfig {
  /** TRUST_PROXY: proxy hops in front of the service whose X-Forwarded-For entries are believed. */
  trustProxyHops: number;
  /** TRUST_AUTH0_FORWARDED_FOR: believe `auth0-forwarded-for` from confidential clients. */
  trustAuth0ForwardedFor: boolean;
}

export interface HttpLimits {
  /** Open connections per process; at the cap idle ones are closed first, then new ones refused. */
  maxConnections: number;
  /**
   * Open connections per peer address (0: off). Default 100 while TRUST_PROXY
   * is 0 (never more than half of maxConnections), off behind a proxy.
   */
  maxConnectionsPerAddress: number;
  /** HTTP/1.1 keep-alive idle time; an HTTP/2 session with no open stream is closed after it too. */
  idleTimeoutSeconds: number;
  /** HTTP/1.1: time to receive the request headers. */
  headersTimeoutSeconds: number;
  /** Time to receive a whole request (headers and body) on both protocols. */
  requestTimeoutSeconds: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS advertised to every client. */
  http2MaxConcurrentStreams: number;
  /** HTTP/2: streams of one session whose request is still incomplete; more are refused. */
  http2MaxStreamsAwaitingBody: number;
  /** HTTP/2: such streams in the whole process; more are refused. */
  http2MaxStreamsAwaitingBodyTotal: number;
}

export interface StreamLimits {
  /** WATCH_MAX_SECONDS: a server stream ends after this long (the client re-opens it). */
  maxSeconds: number;
  /** MAX_WATCH_STREAMS: server streams open at once per process; more are ResourceExhausted. */
  maxOpen: number;
}

export interface ShutdownConfig {
  /** SHUTDOWN_DELAY_SECONDS: keep serving (each answer closing its connection) after SIGTERM. */
  delaySeconds: number;
  /** SHUTDOWN_TIMEOUT_SECONDS: then how long requests in flight may take to finish. */
  timeoutSeconds: number;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

/** The shipped example clients file: the embedded default's demo client. */
export const DEMO_CLIENTS_FILE = fileURLToPath(
  new URL("../config/clients.example.json", import.meta.url),
);

const LOG_LEVELS: readonly LogLevel[] = [
  "fatal",
  "error",
  "warn",
  "info",
  "debug",
  "trace",
  "silent",
];

export interface ConfigDeps {
  readFile?: (path: string) => string;
}

/**
 * The only place configuration is read (docs/configuration.md). Validates everything and
 * throws one ConfigError listing every problem, so an operator fixes them in
 * one go (as fastify does with its options). The result is frozen.
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>>,
  deps: ConfigDeps = {},
): Config {
  const readFile = deps.readFile ?? ((path: string) => readFileSync(path, "utf8"));
  const problems: string[] = [];
  const production = env.NODE_ENV === "production";
  const value = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = value(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return n;
  };
  const readJson = (name: string, path: string): unknown => {
    try {
      return JSON.parse(readFile(path));
    } catch (error) {
      const reason = error instanceof SyntaxError ? "is not valid JSON" : "cannot be read";
      problems.push(`${name} (${path}) ${reason}`);
      return undefined;
    }
  };

  const port = integer("PORT", 8080, 0, 65535);
  const host = value("HOST") ?? "127.0.0.1";
  const workersRaw = value("WORKERS");
  const workers =
    workersRaw?.toLowerCase() === "auto" ? availableParallelism() : integer("WORKERS", 1, 1, 256);

  let issuerUrl = value("ISSUER_URL") ?? `http://localhost:${port}/`;
  try {
    const url = new URL(issuerUrl);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error();
    if (url.search || url.hash) throw new Error();
    issuerUrl = url.href.endsWith("/") ? url.href : `${url.href}/`;
  } catch {
    problems.push(
      `ISSUER_URL must be an http(s) URL without query or fragment (got "${issuerUrl}")`,
    );
  }
  const issuerName = value("ISSUER_NAME") ?? "token-service";

  // The store (docs/configuration.md "Store"): one of DATABASE_URL, REDIS_URL,
  // REDIS_CLUSTER_NODES, REDIS_SENTINELS, or the in-process default.
  const { store, variable: storeVariable } = parseStoreSettings(
    { value, integer, readFile },
    problems,
  );

  if (workers > 1 && store.kind === "memory") {
    problems.push(
      "WORKERS > 1 needs a shared store (REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES or DATABASE_URL): each worker would have its own memory store",
    );
  }

  const clientsFile = value("CLIENTS_FILE") ?? DEMO_CLIENTS_FILE;
  const clientsJson = readJson("CLIENTS_FILE", clientsFile);
  let clients: ClientRegistry = new Map();
  if (clientsJson !== undefined) {
    const parsed = parseClients(clientsJson, "CLIENTS_FILE");
    problems.push(...parsed.problems);
    clients = parsed.clients;
  }

  const signingKeysFile = value("SIGNING_KEYS_FILE");
  let signingKeys: SigningKey[] = [];
  if (signingKeysFile) {
    const jwks = readJson("SIGNING_KEYS_FILE", signingKeysFile) as { keys?: unknown } | undefined;
    if (jwks !== undefined) {
      if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0) {
        problems.push(
          `SIGNING_KEYS_FILE must be a JWKS {"keys": [...]} with at least one key (write one with \`token-service keys generate --add-to <file>\`)`,
        );
      } else {
        jwks.keys.forEach((jwk: unknown, i: number) => {
          const key = importSigningKey(jwk, `SIGNING_KEYS_FILE keys[${i}]`);
          if (typeof key === "string") problems.push(key);
          else signingKeys.push(key);
        });
        const kids = signingKeys.map((k) => k.kid);
        if (new Set(kids).size !== kids.length)
          problems.push("SIGNING_KEYS_FILE has duplicate kids");
      }
    }
  } else {
    signingKeys = generateEphemeralSigningKeys();
  }

  // Every client's ID-token algorithm needs a key: refusing at start-up beats
  // failing after the mfa_token and the code were already consumed. (Checked
  // once the keys file itself is sound, so its own problems come first.)
  const keysSound = !problems.some((p) => p.startsWith("SIGNING_KEYS_FILE"));
  if (signingKeys.length > 0 && keysSound) {
    const algorithms = new Set(signingKeys.map((k) => k.alg));
    for (const client of clients.values()) {
      const known = (SIGNING_ALGORITHMS as readonly string[]).includes(client.idTokenSigningAlg);
      if (known && !algorithms.has(client.idTokenSigningAlg)) {
        problems.push(
          `CLIENTS_FILE: client "${client.clientId}" has id_token_signed_response_alg ${client.idTokenSigningAlg}, but no signing key has that alg (add one with \`token-service keys generate --alg ${client.idTokenSigningAlg} --add-to <SIGNING_KEYS_FILE>\`, or set the client's id_token_signed_response_alg to one of ${[...algorithms].join(", ")})`,
        );
      }
    }
  }

  let secretsKey: Buffer = randomBytes(32);
  const secretsKeyRaw = value("SECRETS_KEY");
  if (secretsKeyRaw) {
    const decoded = Buffer.from(secretsKeyRaw, "base64");
    if (decoded.length !== 32 || !/^[A-Za-z0-9+/]+={0,2}$/.test(secretsKeyRaw)) {
      problems.push(
        "SECRETS_KEY must be 32 bytes, base64-encoded (generate one with `token-service secrets-key`)",
      );
    } else {
      secretsKey = decoded;
    }
  }

  const internalApiKeyRaw = value("INTERNAL_API_KEY");
  if (internalApiKeyRaw !== undefined && internalApiKeyRaw.length < 16) {
    problems.push(
      "INTERNAL_API_KEY must be at least 16 characters (generate one with `token-service internal-api-key`)",
    );
  } else if (
    production &&
    internalApiKeyRaw !== undefined &&
    isWeakInternalApiKey(internalApiKeyRaw)
  ) {
    // Never the key itself: only what is wrong with it.
    problems.push(
      `INTERNAL_API_KEY is too weak for NODE_ENV=production: it needs at least ${STRONG_KEY_LENGTH} characters and at least ${STRONG_KEY_DISTINCT} distinct ones (generate one with \`token-service internal-api-key\`)`,
    );
  }
  const internalApiKey = internalApiKeyRaw ?? randomBytes(24).toString("base64url");

  // The internal listener (SPEC §2): MfaTokenService off the public port.
  const internalPortSet = value("INTERNAL_PORT") !== undefined;
  const internalPort = integer("INTERNAL_PORT", 0, 0, 65535);
  const internalHost = value("INTERNAL_HOST") ?? "127.0.0.1";
  if (!internalPortSet && value("INTERNAL_HOST") !== undefined) {
    problems.push("INTERNAL_HOST needs INTERNAL_PORT (the internal listener is off without it)");
  }
  if (internalPortSet && internalPort !== 0 && internalPort === port) {
    problems.push("INTERNAL_PORT must differ from PORT (MfaTokenService would be public again)");
  }

  const requireNonceRaw = (value("DPOP_REQUIRE_NONCE") ?? "false").toLowerCase();
  if (!["true", "false", "1", "0"].includes(requireNonceRaw)) {
    problems.push(`DPOP_REQUIRE_NONCE must be true or false (got "${requireNonceRaw}")`);
  }

  const flag = (name: string, fallback: boolean): boolean => {
    const raw = (value(name) ?? String(fallback)).toLowerCase();
    if (!["true", "false", "1", "0"].includes(raw)) {
      problems.push(`${name} must be true or false (got "${raw}")`);
      return fallback;
    }
    return raw === "true" || raw === "1";
  };
  // Per-address throttling: on in production, where many users' codes from
  // one address is credential stuffing; off for the embedded default, where
  // every request comes from one address (a developer, a test, a demo).
  const addressThrottling: AddressThrottlingConfig = {
    enabled: flag("ADDRESS_THROTTLING", production),
    maxFailures: integer("ADDRESS_MAX_FAILURES", 100, 1, 1_000_000),
    refillSeconds: integer("ADDRESS_FAILURE_REFILL_SECONDS", 36, 1, 86_400),
  };
  const clientAddress: ClientAddressConfig = {
    trustProxyHops: integer("TRUST_PROXY", 0, 0, 16),
    trustAuth0ForwardedFor: flag("TRUST_AUTH0_FORWARDED_FOR", false),
  };

  const publicMetricsRaw = (value("PUBLIC_METRICS") ?? "false").toLowerCase();
  if (!["true", "false", "1", "0"].includes(publicMetricsRaw)) {
    problems.push(`PUBLIC_METRICS must be true or false (got "${publicMetricsRaw}")`);
  }
  const maxConnections = integer("MAX_CONNECTIONS", 1_000, 1, 1_000_000);
  // Per address: 100 by default (at most half the process cap, so one address
  // never holds every connection); off behind a proxy, whose address every
  // client shares. An explicit value must stay below MAX_CONNECTIONS.
  const perAddressDefault =
    clientAddress.trustProxyHops > 0 ? 0 : Math.min(100, Math.floor(maxConnections / 2));
  const maxConnectionsPerAddress = integer(
    "MAX_CONNECTIONS_PER_ADDRESS",
    perAddressDefault,
    0,
    1_000_000,
  );
  if (
    value("MAX_CONNECTIONS_PER_ADDRESS") !== undefined &&
    maxConnectionsPerAddress >= maxConnections
  ) {
    problems.push(
      `MAX_CONNECTIONS_PER_ADDRESS (${maxConnectionsPerAddress}) must be below MAX_CONNECTIONS (${maxConnections}): one address could hold every connection (0 turns the per-address cap off)`,
    );
  }
  const http: HttpLimits = {
    maxConnections,
    maxConnectionsPerAddress,
    // Longer than the 60 s idle timeout of common load balancers, so a proxy
    // never reuses a connection the service has just closed (a 502).
    idleTimeoutSeconds: integer("HTTP_IDLE_TIMEOUT_SECONDS", 65, 1, 3_600),
    headersTimeoutSeconds: integer("HTTP_HEADERS_TIMEOUT_SECONDS", 10, 1, 600),
    requestTimeoutSeconds: integer("HTTP_REQUEST_TIMEOUT_SECONDS", 10, 1, 600),
    http2MaxConcurrentStreams: integer("HTTP2_MAX_CONCURRENT_STREAMS", 100, 1, 10_000),
    http2MaxStreamsAwaitingBody: integer("HTTP2_MAX_STREAMS_AWAITING_BODY", 100, 1, 10_000),
    http2MaxStreamsAwaitingBodyTotal: integer(
      "HTTP2_MAX_STREAMS_AWAITING_BODY_TOTAL",
      5_000,
      1,
      1_000_000,
    ),
  };
  const streams: StreamLimits = {
    maxSeconds: integer("WATCH_MAX_SECONDS", 60, 1, 86_400),
    maxOpen: integer("MAX_WATCH_STREAMS", 1_000, 1, 1_000_000),
  };
  const shutdown: ShutdownConfig = {
    delaySeconds: integer("SHUTDOWN_DELAY_SECONDS", production ? 5 : 0, 0, 3_600),
    timeoutSeconds: integer("SHUTDOWN_TIMEOUT_SECONDS", 10, 0, 3_600),
  };
  const storeDeadlineMs = integer("STORE_DEADLINE_MS", 2_000, 50, 60_000);
  const managementPort = integer("MANAGEMENT_PORT", 9464, 0, 65535);
  if (managementPort !== 0 && managementPort === port) {
    problems.push("MANAGEMENT_PORT must differ from PORT");
  }
  if (internalPortSet && internalPort !== 0 && internalPort === managementPort) {
    problems.push("INTERNAL_PORT must differ from MANAGEMENT_PORT");
  }
  // Node's http server refuses a headers timeout longer than the request timeout.
  if (http.headersTimeoutSeconds > http.requestTimeoutSeconds) {
    problems.push("HTTP_HEADERS_TIMEOUT_SECONDS must not exceed HTTP_REQUEST_TIMEOUT_SECONDS");
  }

  const logLevel = (value("LOG_LEVEL") ?? "info") as LogLevel;
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}`);
  const accessLogRaw = (value("ACCESS_LOG") ?? "true").toLowerCase();
  if (!["true", "false", "1", "0"].includes(accessLogRaw)) {
    problems.push(`ACCESS_LOG must be true or false (got "${accessLogRaw}")`);
  }
  const tracing = parseTracingConfig(value, problems);

  const devDefaults = {
    memoryStore: store.kind === "memory",
    ephemeralSigningKey: !signingKeysFile,
    demoClients: clientsFile === DEMO_CLIENTS_FILE || hasDemoClient(clients),
    generatedInternalApiKey: internalApiKeyRaw === undefined,
    ephemeralSecretsKey: secretsKeyRaw === undefined,
  };
  if (!production && store.kind !== "memory" && devDefaults.ephemeralSecretsKey) {
    // A per-run key cannot decrypt what earlier runs stored in a persistent
    // store: every enrolled user would be locked out at the next restart.
    // (Production names it among the refused development defaults below.)
    problems.push(
      `SECRETS_KEY is required with ${storeVariable}: a key generated per run cannot decrypt what earlier runs stored, so every enrolled user would be locked out at the next restart (generate one with \`token-service secrets-key\`)`,
    );
  }
  if (workers > 1) {
    const perWorker = [
      devDefaults.ephemeralSigningKey && [
        "SIGNING_KEYS_FILE",
        "token-service keys generate --add-to signing-keys.json",
      ],
      devDefaults.ephemeralSecretsKey && ["SECRETS_KEY", "token-service secrets-key"],
      devDefaults.generatedInternalApiKey && ["INTERNAL_API_KEY", "token-service internal-api-key"],
    ].filter((x): x is string[] => Array.isArray(x));
    if (perWorker.length > 0) {
      problems.push(
        `WORKERS > 1 needs ${perWorker.map(([name]) => name).join(", ")} set: generated values would differ per worker (${perWorker.map(([name, command]) => `${name}: \`${command}\``).join("; ")})`,
      );
    }
  }
  if (production) {
    const refused = [
      devDefaults.memoryStore &&
        "the in-process memory store (set REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES or DATABASE_URL)",
      devDefaults.ephemeralSigningKey &&
        "an ephemeral signing key (set SIGNING_KEYS_FILE; write one with `token-service keys generate --add-to signing-keys.json`)",
      devDefaults.demoClients &&
        "the demo client (recognised by its public secret wherever the file lives; set CLIENTS_FILE to your own clients: `token-service client new --id <id> --add-to clients.json`)",
      devDefaults.ephemeralSecretsKey && "a missing SECRETS_KEY (`token-service secrets-key`)",
      devDefaults.generatedInternalApiKey &&
        "a missing INTERNAL_API_KEY (`token-service internal-api-key`)",
      productionIssuerRefusal(value("ISSUER_URL")),
    ].filter((x): x is string => typeof x === "string");
    if (refused.length > 0) {
      problems.push(`NODE_ENV=production refuses development defaults: ${refused.join("; ")}`);
    }
  }

  // DEMO (default: on with the demo client outside production; never in production).
  const demo = resolveDemoSetting(value("DEMO"), {
    production,
    demoClient: hasDemoClient(clients),
  });
  if (demo.problem !== undefined) problems.push(demo.problem);

  // SPEC §7 "Redis durability, checked", "Replica acknowledgement": the
  // checks are on in production; off elsewhere (the test Redis runs without AOF).
  const onOff = (name: string, fallback: boolean): { on: boolean; explicitOff: boolean } => {
    const raw = value(name)?.toLowerCase();
    if (raw === undefined) return { on: fallback, explicitOff: false };
    if (["on", "true", "1"].includes(raw)) return { on: true, explicitOff: false };
    if (["off", "false", "0"].includes(raw)) return { on: false, explicitOff: true };
    problems.push(`${name} must be on or off (got "${raw}")`);
    return { on: fallback, explicitOff: false };
  };
  const durabilityCheck = onOff("REDIS_DURABILITY_CHECK", production);
  const redisSafety: RedisSafetySettings = {
    durabilityCheck: durabilityCheck.on,
    durabilityCheckDisabled: durabilityCheck.explicitOff,
    datasetCheck: onOff("REDIS_DATASET_CHECK", production).on,
    minReplicasAck:
      value("REDIS_MIN_REPLICAS_ACK") === undefined
        ? undefined
        : integer("REDIS_MIN_REPLICAS_ACK", 0, 0, 100),
    // Below the 2 s every Redis command is given (redis-client.ts).
    ackTimeoutMs: integer("REDIS_ACK_TIMEOUT_MS", 200, 1, 1_500),
  };

  const config: Config = {
    port,
    host,
    workers,
    issuerUrl,
    issuerName,
    store,
    redisSafety,
    clients,
    internalApiKey,
    internal: internalPortSet ? { port: internalPort, host: internalHost } : undefined,
    signingKeys,
    secretsKey,
    mfaTokenTtlSeconds: integer("MFA_TOKEN_TTL_SECONDS", 600, 1, 86_400),
    accessTokenTtlSeconds: integer("ACCESS_TOKEN_TTL_SECONDS", 86_400, 1, 31_536_000),
    mfaApiTokenTtlSeconds: integer("MFA_API_TOKEN_TTL_SECONDS", 300, 1, 86_400),
    pendingEnrollmentTtlSeconds: integer("PENDING_ENROLLMENT_TTL_SECONDS", 900, 60, 86_400),
    maxSessionsPerUser: integer("MAX_SESSIONS_PER_USER", 100, 1, 100_000),
    otpMaxFailures: integer("OTP_MAX_FAILURES", 10, 1, 1_000),
    otpFailureRefillSeconds: integer("OTP_FAILURE_REFILL_SECONDS", 360, 1, 86_400),
    clientAddress,
    addressThrottling,
    logLevel,
    accessLog: accessLogRaw !== "false" && accessLogRaw !== "0",
    tracing,
    dpop: {
      iatSkewSeconds: integer("DPOP_IAT_SKEW_SECONDS", 60, 1, 3_600),
      requireNonce: requireNonceRaw === "true" || requireNonceRaw === "1",
      nonceWindowSeconds: integer("DPOP_NONCE_WINDOW_SECONDS", 300, 10, 86_400),
    },
    http,
    streams,
    shutdown,
    storeDeadlineMs,
    management: {
      port: managementPort,
      explicit: value("MANAGEMENT_PORT") !== undefined,
      host: value("MANAGEMENT_HOST") ?? "127.0.0.1",
    },
    publicMetrics: publicMetricsRaw === "true" || publicMetricsRaw === "1",
    demo: demo.enabled,
    devDefaults,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

/** SPEC §2: production refuses an INTERNAL_API_KEY shorter than this… */
const STRONG_KEY_LENGTH = 32;
/** …or with fewer distinct characters (a hex key of 32 characters has up to 16). */
const STRONG_KEY_DISTINCT = 8;

/**
 * A key a guesser or a typo could produce: too short, or too few distinct
 * characters ("aaaa…", "abababab…"). `token-service internal-api-key` makes
 * 43 characters of base64url.
 */
export function isWeakInternalApiKey(key: string): boolean {
  return key.length < STRONG_KEY_LENGTH || new Set(key).size < STRONG_KEY_DISTINCT;
}

export type { LogLevel, StoreConfig };

/** Where `token-service users …` reaches the running service's internal API, and with what key. */
export interface AdminClientConfig {
  /** The internal listener (INTERNAL_HOST:INTERNAL_PORT) when set, else the public port (HOST:PORT). */
  url: string;
  internalApiKey: string;
}

/**
 * The part of the configuration the administrator's commands read: the same
 * variables, defaults and checks as the service's, so a command run with
 * the service's environment calls that service. Throws a ConfigError.
 */
export function loadAdminClientConfig(
  env: Readonly<Record<string, string | undefined>>,
  /** `--url`: names the service instead of the listen variables. */
  url?: string,
): AdminClientConfig {
  const problems: string[] = [];
  const value = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  };
  const port = (name: string, fallback: number): number => {
    const raw = value(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n > 65535) {
      problems.push(`${name} must be an integer from 0 to 65535 (got "${raw}")`);
    }
    return n;
  };
  const internal = value("INTERNAL_PORT") !== undefined;
  const chosenPort =
    url !== undefined ? -1 : internal ? port("INTERNAL_PORT", 0) : port("PORT", 8080);
  const host = (internal ? value("INTERNAL_HOST") : value("HOST")) ?? "127.0.0.1";
  if (url !== undefined && !(URL.canParse(url) && /^https?:$/.test(new URL(url).protocol))) {
    problems.push(`--url must be an http(s) URL (got "${url}")`);
  }
  if (chosenPort === 0) {
    problems.push(
      `${internal ? "INTERNAL_PORT" : "PORT"} is 0 (a free port chosen at start-up): pass --url with the port the service printed`,
    );
  }
  const internalApiKey = value("INTERNAL_API_KEY");
  if (internalApiKey === undefined) {
    problems.push("INTERNAL_API_KEY is not set: the service's internal API needs it");
  }
  if (problems.length > 0) throw new ConfigError(problems);
  if (url !== undefined)
    return { url: url.replace(/\/+$/, ""), internalApiKey: internalApiKey ?? "" };
  // A wildcard listen address is reached on loopback.
  const reachable =
    host === "0.0.0.0"
      ? "127.0.0.1"
      : host === "::"
        ? "[::1]"
        : host.includes(":")
          ? `[${host}]`
          : host;
  return { url: `http://${reachable}:${chosenPort}`, internalApiKey: internalApiKey ?? "" };
}
