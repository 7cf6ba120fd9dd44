import type { SecurityEvents } from "../../observability/security-events.js";
import type { LockedResult } from "../../store/store.js";
import type { ThrottledAddress } from "../address-throttle.js";

/**
 * Security events of a code refused because a failure bucket is empty (row
 * 8): `user_locked_out` for the user's bucket, `address_locked_out` for the
 * client address's (both when both are empty). The address is named by its
 * bucket id (a keyed hash: lockouts of one address can be told apart and
 * counted) and its coarse network, never in full.
 */
export function recordLockout(
  events: SecurityEvents,
  locked: LockedResult,
  who: { userId: string; clientId: string; address: ThrottledAddress | undefined },
): void {
  const base = {
    userId: who.userId,
    clientId: who.clientId,
    outcome: "refused",
    retry_after_seconds: locked.retryAfterSeconds,
  };
  if (locked.by !== "address") events.record("user_locked_out", base);
  if (locked.by !== undefined && who.address !== undefined) {
    events.record("address_locked_out", {
      ...base,
      address_id: who.address.id,
      address_network: who.address.network,
    });
  }
}
