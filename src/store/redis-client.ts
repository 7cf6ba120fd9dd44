/**
 * The Redis connection: client options chosen to fail fast and fail closed,
 * for standalone Redis (`REDIS_URL`) and Redis Cluster
 * (`REDIS_CLUSTER_NODES`). The stores built on a client (redis-store.ts,
 * redis-session-store.ts) only send commands and scripts.
 */
import {
  Cluster,
  type ClusterNode,
  type ClusterOptions,
  type Command,
  Redis,
  type RedisOptions,
} from "ioredis";

/**
 * Client options chosen to fail fast (docs/api.md "Errors": a store outage must become a
 * prompt error, never a hung request):
 * - `commandTimeout: 2000`: every command settles within 2 s, including one
 *   queued while disconnected or sent to a server that stopped answering
 *   without closing the socket.
 * - `enableOfflineQueue` stays on: commands issued while the first connection
 *   (or a reconnection) is in progress wait for it instead of failing at
 *   once, which would be too strict at startup; `maxRetriesPerRequest: 1`
 *   flushes that queue with an error after two failed connection attempts.
 * - `retryStrategy`: reconnect forever, at most 500 ms apart, so the service
 *   recovers by itself once Redis is back; with `maxRetriesPerRequest: 1`
 *   a queued command is then rejected after about 1 s during an outage
 *   (measured: 0.5–1 s; `commandTimeout` is the hard bound).
 * - `connectTimeout: 1000`: a connection attempt to an unreachable host
 *   fails in 1 s rather than the 10 s default.
 * - `autoResendUnfulfilledCommands: false`: a script in flight when the
 *   connection dropped may already have run; resending it could apply it
 *   twice (e.g. charge the failure bucket twice), so it fails instead
 *   (fail closed; `commandTimeout` guarantees it settles).
 * - `enableAutoPipelining: true`: commands issued in the same event-loop
 *   tick (by concurrent requests) leave in one socket write. Each request
 *   still sends the same commands in the same order and waits for each
 *   reply: round trips per request are unchanged, `write(2)` calls per
 *   request fall (the top frame after the signature in the success-path
 *   profile; README "Performance").
 * - `reconnectOnError` on `READONLY`: the server behind the address was
 *   demoted to a replica (a Sentinel failover, or a VIP / DNS name moved to
 *   the promoted replica while this connection stayed on the old master).
 *   The command fails (row 12) and the client reconnects, reaching whatever
 *   is the master now instead of failing every write on a stale connection.
 */
export const REDIS_CLIENT_OPTIONS: RedisOptions = {
  enableAutoPipelining: true,
  commandTimeout: 2000,
  connectTimeout: 1000,
  maxRetriesPerRequest: 1,
  enableOfflineQueue: true,
  autoResendUnfulfilledCommands: false,
  retryStrategy: (times) => Math.min(100 * 2 ** (times - 1), 500),
  reconnectOnError: (err) => err.message.startsWith("READONLY"),
};

export interface RedisClientOptions {
  /** Connection errors also reach callers as StoreUnavailableError; this is for logging. */
  onError?: (err: Error) => void;
  /** Overrides of REDIS_CLIENT_OPTIONS. */
  redis?: RedisOptions;
}

/** A client with REDIS_CLIENT_OPTIONS; it starts connecting at once. */
export function createRedisClient(url: string, options: RedisClientOptions = {}): Redis {
  const client = new Redis(url, { ...REDIS_CLIENT_OPTIONS, ...options.redis });
  // Without a listener ioredis prints every reconnection error to stderr.
  client.on("error", (err: Error) => options.onError?.(err));
  return client;
}

/**
 * Options of a Cluster client (docs/configuration.md `REDIS_CLUSTER_NODES`), chosen for the
 * same fail-fast, fail-closed behaviour as REDIS_CLIENT_OPTIONS. ioredis
 * splits them in two levels, and not every standalone option means the same
 * thing on a cluster:
 * - Per-node connections (`redisOptions`): `commandTimeout`,
 *   `connectTimeout` and `autoResendUnfulfilledCommands` as standalone.
 *   `retryStrategy` and `enableOfflineQueue` are not node options here
 *   (ioredis forces them: a lost node is not reconnected, the cluster
 *   refreshes its slots instead), so they are not passed.
 * - `enableOfflineQueue: true` (cluster level): commands issued before the
 *   cluster is ready (start-up, reconnection) wait for it. That queue has no
 *   limit of its own (`maxRetriesPerRequest` is standalone only), so
 *   `createRedisClusterClient` gives every command the `commandTimeout`
 *   deadline from the moment it is issued, queued or not.
 * - `clusterRetryStrategy`: reconnect forever, at most 500 ms apart, so the
 *   service recovers by itself.
 * - `scaleReads: "master"`: every read goes to the slot's master. Single-use
 *   state (the consumed marker behind `isMfaTokenConsumed`, the
 *   authenticator's `last_step`) must never be read from a lagging replica.
 * - `retryDelayOnFailover: 0`: a command whose node connection closed may
 *   already have run (a script in flight); ioredis would resend it after a
 *   delay, applying it twice (e.g. charging the failure bucket twice). It
 *   fails instead, as `autoResendUnfulfilledCommands: false` does standalone.
 *   MOVED, ASK, TRYAGAIN and CLUSTERDOWN mean the command did not run, so
 *   they are still retried (`retryDelayOnClusterDown`, `retryDelayOnTryAgain`,
 *   at most `maxRedirections` times, within the deadline).
 * - `slotsRefreshTimeout: 1000`, `slotsRefreshInterval: 5000`: the topology
 *   refresh (CLUSTER SLOTS) gives up on a dead node in 1 s and runs every
 *   5 s, on top of the refresh a MOVED reply triggers.
 * - `enableReadyCheck: true`: ready only once CLUSTER INFO says the cluster
 *   is not failing.
 * - `enableAutoPipelining: true`: as standalone; ioredis groups the tick's
 *   commands per node.
 */
export const REDIS_CLUSTER_OPTIONS: ClusterOptions = {
  enableAutoPipelining: true,
  redisOptions: {
    commandTimeout: 2000,
    connectTimeout: 1000,
    autoResendUnfulfilledCommands: false,
  },
  enableOfflineQueue: true,
  enableReadyCheck: true,
  scaleReads: "master",
  clusterRetryStrategy: (times) => Math.min(100 * 2 ** (times - 1), 500),
  retryDelayOnFailover: 0,
  retryDelayOnClusterDown: 100,
  retryDelayOnTryAgain: 100,
  maxRedirections: 16,
  slotsRefreshTimeout: 1000,
  slotsRefreshInterval: 5000,
};

export interface RedisClusterClientOptions {
  /** Connection errors also reach callers as StoreUnavailableError; this is for logging. */
  onError?: (err: Error) => void;
  /** Overrides of REDIS_CLUSTER_OPTIONS (`redisOptions` is merged, not replaced). */
  cluster?: ClusterOptions;
}

/**
 * A Cluster whose commands all settle within the nodes' `commandTimeout`,
 * counted from when they are issued. Without it, a command issued while the
 * cluster is unreachable waits in the cluster's offline queue for as long as
 * the outage lasts (the nodes' `commandTimeout` only starts once a command
 * reaches a node). A command that timed out while queued is dropped rather
 * than sent late, when the queue is replayed through `sendCommand`.
 */
class DeadlineCluster extends Cluster {
  override sendCommand(command: Command, stream?: unknown, node?: unknown): unknown {
    if (command.isSettled) return command.promise;
    const deadline = this.options.redisOptions?.commandTimeout;
    // Sets the timer once; the node keeps it (Command#setTimeout is a no-op when set).
    if (typeof deadline === "number") command.setTimeout(deadline);
    return super.sendCommand(command, stream as Parameters<Cluster["sendCommand"]>[1], node);
  }
}

/** A Cluster client with REDIS_CLUSTER_OPTIONS; it starts connecting at once. */
export function createRedisClusterClient(
  nodes: ClusterNode[],
  options: RedisClusterClientOptions = {},
): Cluster {
  const merged: ClusterOptions = {
    ...REDIS_CLUSTER_OPTIONS,
    ...options.cluster,
    redisOptions: { ...REDIS_CLUSTER_OPTIONS.redisOptions, ...options.cluster?.redisOptions },
  };
  // The store reads replies in the default (RESP2, "legacy") mapping.
  const cluster = new DeadlineCluster(
    nodes,
    merged as ConstructorParameters<typeof DeadlineCluster>[1],
  );
  // Without a listener ioredis prints cluster errors to stderr; node errors
  // (one master unreachable) are worth logging too.
  cluster.on("error", (err: Error) => options.onError?.(err));
  cluster.on("node error", (err: Error) => options.onError?.(err));
  return cluster;
}
