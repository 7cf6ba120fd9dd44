import type { Logger } from "./logger.js";

/**
 * Store outages logged as state changes (SPEC §7): one line when the store
 * becomes unavailable — with the request that met it, when one did — and one
 * when it is available again, never one per failed request or reconnection
 * attempt. Whoever learns something reports it: a request answering row 12,
 * the client's connection events, the readiness ping. One state per logger
 * (one per service).
 */
export interface StoreOutageLog {
  /** A request or a ping met the store unavailable. */
  unavailable(cause: unknown, requestId?: string): void;
  /**
   * A ping succeeded. The outage ends at a ping with no failure reported
   * since the previous ping: a Cluster with one master down answers pings
   * (any node) while its slots keep failing, and must not flap.
   */
  available(): void;
}

const states = new WeakMap<Logger, StoreOutageLog>();

export function storeOutageLog(logger: Logger): StoreOutageLog {
  const known = states.get(logger);
  if (known !== undefined) return known;
  let down = false;
  let failedSincePing = false;
  const log: StoreOutageLog = {
    unavailable(cause, requestId) {
      failedSincePing = true;
      if (down) return;
      down = true;
      const message = cause instanceof Error ? cause.message : String(cause);
      logger.error(
        {
          event: "store_unavailable",
          ...(requestId !== undefined ? { request_id: requestId } : {}),
          cause: message,
        },
        "store unavailable: requests that need it answer 503 until it recovers",
      );
    },
    available() {
      const failed = failedSincePing;
      failedSincePing = false;
      if (!down || failed) return;
      down = false;
      logger.info({ event: "store_available" }, "store available again");
    },
  };
  states.set(logger, log);
  return log;
}
