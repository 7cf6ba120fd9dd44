import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { type App, createApp } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/observability/logger.js";
import { createStores } from "../../src/store/create-stores.js";
import { createMemoryStore } from "../../src/store/memory-store.js";
import type { SessionStore } from "../../src/store/session-store.js";
import type { Store } from "../../src/store/store.js";
import { createFakeClock } from "../../src/util/clock.js";

export const FIXTURE_CLIENTS_FILE = fileURLToPath(
  new URL("../fixtures/clients.json", import.meta.url),
);
export const TEST_INTERNAL_API_KEY = "test-internal-api-key-0123456789";
export const TEST_SECRETS_KEY = Buffer.alloc(32, 7).toString("base64");

/** The fixture clients (test/fixtures/clients.json). */
export const CLIENTS = {
  post: { id: "post-client", secret: "post-client-secret-0123456789" },
  basic: { id: "basic-client", secret: "basic-client-secret-0123456789" },
  public: { id: "public-client" },
  noGrant: { id: "no-grant-client", secret: "no-grant-client-secret-0123456789" },
} as const;

export type FakeClock = ReturnType<typeof createFakeClock>;

export interface TestService {
  app: App;
  /** e.g. http://127.0.0.1:41234 (no trailing slash). */
  baseUrl: string;
  port: number;
  /** The management listener (/metrics, /healthz, /readyz), e.g. http://127.0.0.1:41235. */
  managementUrl: string;
  /** The internal listener (INTERNAL_PORT set in `env`), e.g. http://127.0.0.1:41236. */
  internalUrl?: string;
  clock: FakeClock;
  store: Store;
  /** Every log line the service wrote (level debug), for the no-secret-in-logs checks. */
  logs: string[];
  close(): Promise<void>;
}

export interface TestServiceOptions {
  /**
   * Default memory; "redis" needs `redisUrl`, "postgres" `databaseUrl` (a
   * migrated database: postgres-server.ts freshDatabase). "config": the app builds the
   * store from the configuration like `npm start` does (e.g. with
   * `env.REDIS_CLUSTER_NODES`), so its real client options are the ones tested.
   */
  store?: "memory" | "redis" | "postgres" | "config";
  redisUrl?: string;
  databaseUrl?: string;
  /** Extra environment for loadConfig (e.g. MFA_TOKEN_TTL_SECONDS). */
  env?: Record<string, string>;
  /** Start time of the fake clock; defaults to the real time so TOTP codes from otplib line up. */
  startMs?: number;
  /**
   * A ready-made store (e.g. one whose ping rejects); wins over `store`. The
   * app closes it on close(). (`store` already names the kind, hence the name.)
   */
  storeOverride?: Store;
  /** Passed to createApp: false serves every RPC through connect-es (the differential test). */
  rpcFastPath?: boolean;
  /**
   * Listen on this port instead of a free one (a client that discovers the
   * issuer needs ISSUER_URL to name the port before the service starts).
   */
  port?: number;
}

/**
 * A real service on a loopback port 0 with the fixture clients, fixed keys, a
 * fake clock and captured logs.
 */
export async function startTestService(options: TestServiceOptions = {}): Promise<TestService> {
  const config = loadConfig({
    PORT: "0",
    // A free port per service: parallel test files never collide.
    MANAGEMENT_PORT: "0",
    CLIENTS_FILE: FIXTURE_CLIENTS_FILE,
    INTERNAL_API_KEY: TEST_INTERNAL_API_KEY,
    SECRETS_KEY: TEST_SECRETS_KEY,
    ISSUER_NAME: "Token Service Test",
    ...options.env,
  });
  const clock = createFakeClock(options.startMs ?? Date.now());
  const logs: string[] = [];
  const logger = createLogger(
    "debug",
    new Writable({
      write(chunk, _encoding, callback) {
        // One entry per line: access lines arrive several to a write.
        for (const line of String(chunk).split(/(?<=\n)/)) logs.push(line);
        callback();
      },
    }),
  );
  let store: Store | undefined;
  let sessions: SessionStore | undefined;
  if (options.storeOverride) {
    store = options.storeOverride;
  } else if (options.store === "config") {
    store = undefined; // createApp builds it from config.store
  } else if (options.store === "redis") {
    if (!options.redisUrl) throw new Error("redisUrl is required for the redis store");
    // The store and the session store on one client, as the app builds them.
    ({ store, sessions } = createStores({ kind: "redis", url: options.redisUrl }, clock, logger));
  } else if (options.store === "postgres") {
    if (!options.databaseUrl) throw new Error("databaseUrl is required for the postgres store");
    // Both stores on one pool, as the app builds them (DATABASE_* defaults).
    ({ store, sessions } = createStores(
      {
        kind: "postgres",
        url: options.databaseUrl,
        poolSize: 10,
        statementTimeoutMs: 2000,
        connectTimeoutMs: 2000,
      },
      clock,
      logger,
    ));
  } else {
    store = createMemoryStore({ now: clock.nowMs });
  }
  const app = createApp(config, {
    store,
    sessions,
    clock,
    logger,
    rpcFastPath: options.rpcFastPath,
  });
  const { port } = await app.listen(options.port ?? 0);
  return {
    app,
    baseUrl: `http://127.0.0.1:${port}`,
    port,
    managementUrl: `http://127.0.0.1:${app.managementPort}`,
    ...(app.internalPort !== undefined
      ? { internalUrl: `http://127.0.0.1:${app.internalPort}` }
      : {}),
    clock,
    store: store ?? app.ctx.store,
    logs,
    close: () => app.close(1000),
  };
}
