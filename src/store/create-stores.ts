/**
 * The stores the configuration names — `REDIS_URL`, `REDIS_SENTINELS`,
 * `REDIS_CLUSTER_NODES`, `DATABASE_URL`, or the in-process default — built
 * together on one backend: the main Store and the SessionStore
 * (refresh-token families).
 * One ioredis client (standalone, Sentinel or Cluster) serves both, so sessions cost
 * no extra connection and share the client's fail-fast options; in memory,
 * DPoP proof marks share one key space (a proof is used once across every
 * grant). `store.close()` closes the shared client; `sessions.close()` owns
 * nothing. PostgreSQL: one connection pool for both (postgres-stores.ts).
 */

import type { Logger } from "../observability/logger.js";
import type { Clock } from "../util/clock.js";
import { createMemorySessionStore } from "./memory-session-store.js";
import { createMemoryStore } from "./memory-store.js";
import { createPostgresStores } from "./postgres-stores.js";
import { createRedisClient, createRedisClusterClient } from "./redis-client.js";
import { createRedisSentinelClient } from "./redis-sentinel-client.js";
import { createRedisSessionStore } from "./redis-session-store.js";
import { createRedisStore } from "./redis-store.js";
import type { SessionStore } from "./session-store.js";
import type { Store } from "./store.js";
import type { StoreConfig } from "./store-config.js";

export interface Stores {
  store: Store;
  sessions: SessionStore;
  /**
   * Runs before the service listens; a rejection refuses the start (e.g.
   * PostgreSQL with an older schema: SchemaOutdatedError).
   */
  startupCheck?: () => Promise<void>;
}

export function createStores(config: StoreConfig, clock: Clock, logger: Logger): Stores {
  const onError = (err: Error) =>
    logger.warn({ event: "redis_error", message: err.message }, "redis error");
  switch (config.kind) {
    case "memory":
      return sessionsBeside(createMemoryStore({ now: clock.nowMs }));
    case "redis": {
      const client = createRedisClient(config.url, { onError });
      return { store: createRedisStore(client), sessions: createRedisSessionStore(client) };
    }
    case "redis-sentinel": {
      const client = createRedisSentinelClient(config, { onError });
      return { store: createRedisStore(client), sessions: createRedisSessionStore(client) };
    }
    case "redis-cluster": {
      const client = createRedisClusterClient(config.nodes, { onError });
      return { store: createRedisStore(client), sessions: createRedisSessionStore(client) };
    }
    case "postgres": {
      const { store, sessions, startupCheck } = createPostgresStores(config, { clock, logger });
      return { store, sessions, startupCheck };
    }
  }
}

/**
 * An in-process SessionStore beside a given Store, recording DPoP proof
 * marks through that store (the default backend, and what an app built
 * around a ready-made store gets unless it is given a SessionStore too).
 */
export function sessionsBeside(store: Store): Stores {
  return {
    store,
    sessions: createMemorySessionStore({
      rememberOnce: (scope, value, ttlMs) => store.rememberOnce(scope, value, ttlMs),
    }),
  };
}
