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

import type { Cluster, Redis } from "ioredis";
import type { Logger } from "../observability/logger.js";
import type { Clock } from "../util/clock.js";
import { createMemorySessionStore } from "./memory-session-store.js";
import { createMemoryStore } from "./memory-store.js";
import { createPostgresStores } from "./postgres-stores.js";
import { createRedisClient, createRedisClusterClient } from "./redis-client.js";
import { createRedisSafety, type RedisSafety } from "./redis-safety.js";
import { DEFAULT_REDIS_SAFETY, type RedisSafetySettings } from "./redis-safety-settings.js";
import { createRedisSentinelClient } from "./redis-sentinel-client.js";
import { createRedisSessionStore } from "./redis-session-store.js";
import { createRedisStore } from "./redis-store.js";
import { attachWriteGuard } from "./redis-write-guard.js";
import type { SessionStore } from "./session-store.js";
import { type Store, StoreUnavailableError } from "./store.js";
import type { StoreConfig } from "./store-config.js";

export interface Stores {
  store: Store;
  sessions: SessionStore;
  /**
   * Runs before the service listens; a rejection refuses the start (e.g.
   * PostgreSQL with an older schema: SchemaOutdatedError).
   */
  startupCheck?: () => Promise<void>;
  /** Redis: the masters' durability, dataset marker and replicas (redis-safety.ts). */
  redisSafety?: RedisSafety;
}

export function createStores(
  config: StoreConfig,
  clock: Clock,
  logger: Logger,
  redisSafety: RedisSafetySettings = DEFAULT_REDIS_SAFETY,
): Stores {
  // Outages are logged as state changes by the requests and the readiness
  // ping that meet them (store-outage-log.ts), not once per reconnection attempt.
  const onError = (err: Error) =>
    logger.debug({ event: "redis_error", message: err.message }, "redis error");
  switch (config.kind) {
    case "memory":
      return sessionsBeside(createMemoryStore({ now: clock.nowMs }));
    case "redis":
      return redisStores(createRedisClient(config.url, { onError }), redisSafety, logger, clock);
    case "redis-sentinel": {
      const onSentinelError = (err: Error) =>
        logger.warn(
          { event: "redis_sentinel_unreachable", cause: err.message },
          "a Redis Sentinel did not answer; asking the next",
        );
      const client = createRedisSentinelClient(config, { onError, onSentinelError });
      return redisStores(client, redisSafety, logger, clock);
    }
    case "redis-cluster":
      return redisStores(
        createRedisClusterClient(config.nodes, { onError }),
        redisSafety,
        logger,
        clock,
      );
    case "postgres": {
      const { store, sessions, startupCheck } = createPostgresStores(config, { clock, logger });
      return { store, sessions, startupCheck };
    }
  }
}

/**
 * Both stores on one client whose every write goes through the safety
 * monitor (redis-write-guard.ts): refused while a master does not comply,
 * acknowledged by the replicas. Its ping fails too while writes are refused,
 * so readiness and gRPC health turn 503 / NOT_SERVING.
 */
export function redisStores(
  client: Redis | Cluster,
  settings: RedisSafetySettings,
  logger: Logger,
  clock?: Clock,
): Stores {
  const safety = createRedisSafety(client, settings, logger);
  attachWriteGuard(client, safety);
  const store = createRedisStore(client, clock === undefined ? {} : { now: clock.nowMs });
  return {
    store: {
      ...store,
      ping: async () => {
        await store.ping();
        const refused = safety.refusal();
        if (refused !== undefined) throw new StoreUnavailableError(`writes refused: ${refused}`);
      },
      close: async () => {
        safety.stop();
        await store.close();
      },
    },
    sessions: createRedisSessionStore(client),
    startupCheck: () => safety.startupCheck(),
    redisSafety: safety,
  };
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
