import { methodNamesOf } from "../util/method-names.js";
import { StoreUnavailableError } from "./store.js";

type AsyncMethod = (...args: unknown[]) => Promise<unknown>;

/**
 * The per-request store deadline (STORE_DEADLINE_MS): all the store work of
 * one request shares one budget counted from the request's arrival, so a
 * hung or paused store answers row 12 (503 with `Retry-After`) after at most
 * that long, not after a command timeout per round trip. A call that starts
 * after the budget is spent fails at once; one in flight when it runs out is
 * abandoned. What the abandoned call does on the server still happens (a code
 * burnt, a token rotated) — the same as any 503 after a write (see
 * docs/operations.md, "Replica acknowledgement"). Work outside a request
 * (readiness pings, the PostgreSQL sweeper) has no deadline here; its own
 * timeouts bound it.
 *
 * Each method is looked up on the target per call, so whoever replaces a
 * method of the store (a test simulating an outage) replaces it here too.
 */
export function withStoreDeadline<T extends object>(
  target: T,
  deadlineMs: number,
  /** When the request being served arrived (process.hrtime.bigint()), undefined outside one. */
  requestStartNs: () => bigint | undefined,
): T {
  const methods = target as unknown as Record<string, AsyncMethod>;
  const bounded: Record<string, unknown> = {};
  for (const name of methodNamesOf(target)) {
    bounded[name] = (...args: unknown[]) => {
      const call = () => (methods[name] as AsyncMethod).apply(target, args);
      const startNs = requestStartNs();
      if (startNs === undefined || name === "close") return call();
      const leftMs = deadlineMs - Number(process.hrtime.bigint() - startNs) / 1e6;
      if (leftMs <= 0) return Promise.reject(deadlinePassed(deadlineMs));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(deadlinePassed(deadlineMs)), leftMs);
        Promise.resolve(call()).then(
          (value) => {
            clearTimeout(timer);
            resolve(value);
          },
          (error: unknown) => {
            clearTimeout(timer);
            reject(error);
          },
        );
      });
    };
  }
  return bounded as T;
}

function deadlinePassed(deadlineMs: number): StoreUnavailableError {
  return new StoreUnavailableError(`the request's store deadline (${deadlineMs} ms) passed`);
}
