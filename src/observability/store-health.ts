import type { Logger } from "./logger.js";
import { storeOutageLog } from "./store-outage-log.js";

/** What readiness probes read: `/readyz` on both listeners and grpc.health.v1. */
export interface Readiness {
  /** True while the store answered its last background ping in time. */
  readonly ready: boolean;
  /** Called on every change of `ready`; returns the unsubscribe function. */
  onChange(listener: (ready: boolean) => void): () => void;
}

export interface StoreHealth extends Readiness {
  /** Starts the background pings; resolves once the first one has answered (or timed out). */
  start(): Promise<void>;
  /** Pings now and updates `ready` (the background loop calls it; tests may too). */
  refresh(): Promise<boolean>;
  /** Stops pinging; `ready` is false from now on (shutdown). */
  stop(): void;
}

export interface StoreHealthOptions {
  /** Time between the end of one ping and the start of the next (default 1 000 ms). */
  intervalMs?: number;
  /** A ping slower than this counts as a failure (default 1 000 ms). */
  timeoutMs?: number;
  logger?: Logger;
}

/**
 * The store's reachability, refreshed in the background (one ping at a time,
 * every `intervalMs`, each bounded by `timeoutMs`). Probes read the last
 * result instead of pinging: a flood of probes then costs no store round trip
 * and cannot turn a healthy instance unready by queueing pings behind a busy
 * event loop (a load balancer would drop it). Not ready until the first ping
 * answers.
 */
export function createStoreHealth(
  store: { ping(): Promise<void> },
  options: StoreHealthOptions = {},
): StoreHealth {
  const intervalMs = options.intervalMs ?? 1_000;
  const timeoutMs = options.timeoutMs ?? 1_000;
  const listeners = new Set<(ready: boolean) => void>();
  let ready = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<boolean> | undefined;

  const outage = options.logger && storeOutageLog(options.logger);
  let lastFailure: unknown;
  const set = (next: boolean): void => {
    // Logged as the store's state changes (store-outage-log.ts), once each.
    if (next) outage?.available();
    else outage?.unavailable(lastFailure);
    if (next === ready) return;
    ready = next;
    for (const listener of listeners) listener(next);
  };

  const pingOnce = async (): Promise<boolean> => {
    let timeout: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        store.ping(),
        new Promise<never>((_, reject) => {
          timeout = setTimeout(() => reject(new Error("ping timed out")), timeoutMs);
        }),
      ]);
      return true;
    } catch (error) {
      lastFailure = error;
      return false;
    } finally {
      clearTimeout(timeout);
    }
  };

  const refresh = (): Promise<boolean> => {
    // One ping at a time: a caller during a ping shares its answer.
    inFlight ??= pingOnce().then((ok) => {
      inFlight = undefined;
      if (!stopped) set(ok);
      return ok;
    });
    return inFlight;
  };

  const loop = (): void => {
    timer = setTimeout(() => {
      void refresh().then(() => {
        if (!stopped) loop();
      });
    }, intervalMs).unref();
  };

  return {
    get ready() {
      return ready && !stopped;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async start() {
      if (timer !== undefined || stopped) return;
      await refresh();
      if (!stopped) loop();
    },
    refresh,
    stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      if (ready) {
        ready = false;
        for (const listener of listeners) listener(false);
      }
    },
  };
}
