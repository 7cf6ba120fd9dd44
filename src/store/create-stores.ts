/**
 * The main Store and the SessionStore together, on one backend: one ioredis
 * client (standalone or Cluster) serves both, so sessions cost no extra
 * connection and share the store's fail-fast options; in memory, proof marks
 * share one key space (a DPoP proof is used once across every grant).
 * `store.close()` closes the shared client; `sessions.close()` owns nothing.
 */
import type { Clock } from "../clock.js";
import type { StoreConfig } from "../config.js";
import type { Logger } from "../observability/logger.js";
import { createMemorySessionStore } from "./memory-session-store.js";
import { createMemoryStore } from "./memory-store.js";
import { createRedisClient, createRedisClusterClient } from "./redis-client.js";
import { createRedisSessionStore } from "./redis-session-store.js";
import { createRedisStore } from "./redis-store.js";
import type { SessionStore } from "./session-store.js";
import type { Store } from "./store.js";

export interface Stores {
  store: Store;
  sessions: SessionStore;
}

export function createStores(config: StoreConfig, clock: Clock, logger: Logger): Stores {
  const onError = (err: Error) =>
    logger.warn({ event: "redis_error", message: err.message }, "redis error");
  switch (config.kind) {
    case "memory": {
      const store = createMemoryStore({ now: clock.nowMs });
      const sessions = createMemorySessionStore({
        rememberOnce: (scope, value, ttlMs) => store.rememberOnce(scope, value, ttlMs),
      });
      return { store, sessions };
    }
    case "redis": {
      const client = createRedisClient(config.url, { onError });
      return { store: createRedisStore(client), sessions: createRedisSessionStore(client) };
    }
    case "redis-cluster": {
      const client = createRedisClusterClient(config.nodes, { onError });
      return { store: createRedisStore(client), sessions: createRedisSessionStore(client) };
    }
  }
}
