/**
 * Turning Redis client failures into StoreUnavailableError (row 12 of the
 * error table: `temporarily_unavailable`), for stores that wrap a client of
 * their own kind. The rule is the one redis-store.ts applies to the main
 * store (kept private there); the two can share this file.
 */
import { StoreUnavailableError } from "./store.js";

/**
 * Reply errors that mean "Redis cannot serve right now" rather than "this
 * code sent something wrong" (the latter are bugs and propagate as they are).
 */
const UNAVAILABLE_REPLY =
  /^(LOADING|BUSY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|READONLY|OOM|NOREPLICAS)\b/;

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
