import { createInternalUserCall } from "./internal-api-key.js";
import type { UserAdminDeps, UserAdminRequest } from "./reset-user-mfa.js";

/**
 * The administrator's `UnlockUser` (SPEC §3): the user's failure bucket is
 * full again, so a user locked out by wrong codes (`too_many_attempts`) can
 * log in at once. The address buckets are left alone: they hold back
 * whoever guessed from an address, not the user. Event: `user_unlocked`.
 */
export function createUnlockUser(deps: Pick<UserAdminDeps, "internalKey" | "store" | "events">) {
  const checkCall = createInternalUserCall(deps.internalKey, "UnlockUser");
  return async function unlockUser(request: UserAdminRequest): Promise<void> {
    await checkCall(request);
    await deps.store.unlockUser(request.userId);
    deps.events.record("user_unlocked", { userId: request.userId, outcome: "unlocked" });
  };
}
