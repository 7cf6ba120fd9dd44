import type { Clock } from "../clock.js";
import type { StoreConfig } from "../config.js";
import type { Logger } from "../observability/logger.js";
import { createMemoryStore } from "./memory-store.js";
import { connectRedisClusterStore, connectRedisStore } from "./redis-store.js";
import type { Store } from "./store.js";

/** The store SPEC §6 asks for: REDIS_URL, REDIS_CLUSTER_NODES, or the in-process default. */
export function createStore(config: StoreConfig, clock: Clock, logger: Logger): Store {
  const onError = (err: Error) =>
    logger.warn({ event: "redis_error", message: err.message }, "redis error");
  switch (config.kind) {
    case "memory":
      return createMemoryStore({ now: clock.nowMs });
    case "redis":
      return connectRedisStore(config.url, { onError });
    case "redis-cluster":
      return connectRedisClusterStore(config.nodes, { onError });
  }
}
