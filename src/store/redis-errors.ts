import { StoreUnavailableError } from "./store.js";

/**
 * Reply errors that mean "Redis cannot serve right now" rather than "this
 * code sent something wrong" (the latter are bugs and propagate as they are):
 * SPEC §7, every Redis error of that kind is row 12. MOVED and ASK reach here
 * only when ioredis gave up following them (a dead node, too many
 * redirections); MISCONF is a master refusing writes it cannot persist.
 */
const UNAVAILABLE_REPLY =
  /^(LOADING|BUSY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|READONLY|OOM|NOREPLICAS|MOVED|ASK|MISCONF)\b/;

export function toStoreError(err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return err;
  if (err instanceof Error && err.name === "ReplyError" && !UNAVAILABLE_REPLY.test(err.message)) {
    return err;
  }
  // Anything else is about the connection: ECONNREFUSED, "Connection is
  // closed.", MaxRetriesPerRequestError, "Command timed out", …
  const reason = err instanceof Error ? err.message : String(err);
  return new StoreUnavailableError(`redis unavailable: ${reason}`, { cause: err });
}

export async function guarded<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw toStoreError(err);
  }
}
