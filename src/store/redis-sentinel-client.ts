/**
 * A Redis client that finds the master through Redis Sentinel
 * (`REDIS_SENTINELS`, `REDIS_SENTINEL_NAME`; docs/operations.md "Redis
 * Sentinel"), with ioredis's own Sentinel support. The stores built on it are
 * the standalone ones (redis-store.ts, redis-session-store.ts): to them it is
 * one Redis, whichever server is the master at the moment.
 *
 * Following a failover without a restart (SPEC §7: within 15 s):
 * - every (re)connection asks the Sentinels `SENTINEL get-master-addr-by-name`
 *   and checks that the server it reaches reports `role:master` (ioredis's
 *   ready check), so a reconnection always lands on the current master;
 * - `failoverDetector`: the client subscribes to `+switch-master` on the
 *   Sentinels and drops its connection the moment they announce a new
 *   master, instead of waiting for the old one to fail;
 * - `reconnectOnError` on `READONLY` (REDIS_CLIENT_OPTIONS): a master demoted
 *   under a live connection makes the client reconnect;
 * - `sentinelRetryStrategy`: while no Sentinel answers, ask again at most
 *   500 ms apart, forever (the service recovers by itself);
 *   `sentinelCommandTimeout`: a Sentinel that stops answering is given up
 *   on after 1 s and the next one is asked.
 * Commands in flight when the master goes away fail (row 12), and are never
 * resent (`autoResendUnfulfilledCommands: false`, as standalone).
 */
import type { ConnectionOptions } from "node:tls";
import { Redis, type RedisOptions } from "ioredis";
import { REDIS_CLIENT_OPTIONS, type RedisClientOptions } from "./redis-client.js";
import type { RedisSentinelSettings } from "./store-config.js";

const backoff = (times: number) => Math.min(100 * 2 ** (times - 1), 500);

/** ioredis options for `settings` (exported for the unit test: no secret is dropped or misplaced). */
export function sentinelClientOptions(settings: RedisSentinelSettings): RedisOptions {
  const tls: ConnectionOptions = settings.tlsCa ? { ca: settings.tlsCa } : {};
  return {
    ...REDIS_CLIENT_OPTIONS,
    sentinels: settings.sentinels.map(({ host, port }) => ({ host, port })),
    name: settings.name,
    role: "master",
    sentinelUsername: settings.sentinelUsername,
    sentinelPassword: settings.sentinelPassword,
    username: settings.username,
    password: settings.password,
    failoverDetector: true,
    sentinelCommandTimeout: 1000,
    sentinelRetryStrategy: backoff,
    sentinelReconnectStrategy: backoff,
    // TLS to the master: ioredis only uses `tls` in Sentinel mode with this flag.
    enableTLSForSentinelMode: settings.tls,
    tls: settings.tls ? tls : undefined,
    sentinelTLS: settings.sentinelTls ? tls : undefined,
  };
}

export interface RedisSentinelClientOptions extends RedisClientOptions {
  /**
   * One Sentinel did not answer while the master was being looked up (the
   * next one is asked): worth a warning, not an outage. When none answers,
   * the client's `error` (`onError`) says so.
   */
  onSentinelError?: (err: Error) => void;
}

/**
 * A Sentinel client that never gives up by itself. ioredis 6 ends a Sentinel
 * client for good (status `end`: every command fails at once, no more
 * reconnection) when the failover detector's `+switch-master` arrives while
 * a reconnection is asking the Sentinels (the detector's disconnect aborts
 * that attempt, and the aborted connect is treated as final). Seen in the
 * failover suite: the master killed, the client reconnecting, the Sentinels
 * announcing the promotion. Unless the store closed it (`quit`,
 * `disconnect()`), an ended client connects again.
 */
class SentinelRedis extends Redis {
  #closing = false;

  constructor(options: RedisOptions) {
    // The stores read replies in the default (RESP2, "legacy") mapping;
    // RedisOptions also admits "resp3", which the overloads keep apart.
    super(options as RedisOptions & { replyMapping?: "legacy" });
    this.on("end", () => {
      if (this.#closing) return;
      setTimeout(() => {
        if (this.#closing || this.status !== "end") return;
        this.emit(
          "sentinelError",
          new Error("the client had stopped reconnecting; connecting again"),
        );
        this.connect().catch(() => {});
      }, 100).unref();
    });
  }

  override quit(...args: Parameters<Redis["quit"]>): ReturnType<Redis["quit"]> {
    this.#closing = true;
    return super.quit(...args);
  }

  override disconnect(reconnect = false): void {
    if (!reconnect) this.#closing = true;
    super.disconnect(reconnect);
  }
}

/** A client of the master `settings.name` names; it starts connecting at once. */
export function createRedisSentinelClient(
  settings: RedisSentinelSettings,
  options: RedisSentinelClientOptions = {},
): Redis {
  const client = new SentinelRedis({ ...sentinelClientOptions(settings), ...options.redis });
  // Without listeners ioredis prints every reconnection error to stderr.
  client.on("error", (err: Error) => options.onError?.(err));
  client.on("sentinelError", (err: Error) => options.onSentinelError?.(err));
  return client;
}
