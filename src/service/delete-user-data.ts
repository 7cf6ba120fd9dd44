import { revokeUserSessions } from "../oauth/sessions/revoke-refresh-token.js";
import { createInternalUserCall } from "./internal-api-key.js";
import type { UserAdminDeps, UserAdminRequest } from "./reset-user-mfa.js";

/**
 * The administrator's `DeleteUserData` (SPEC §3; a data subject's erasure):
 * every session ends, then everything the store holds about the user —
 * authenticator, recovery code, failure bucket, consumed mfa_token marks,
 * whatever is left of the sessions — is erased in bounded steps
 * (Store.eraseUser). Afterwards no record names the user; the security
 * event `user_data_deleted` (in the log, not the store) says it happened.
 * mfa_tokens already issued are sealed, not stored: one still live could
 * start a new enrollment, as a new login could.
 */
export function createDeleteUserData(deps: UserAdminDeps) {
  const checkCall = createInternalUserCall(deps.internalKey, "DeleteUserData");
  return async function deleteUserData(request: UserAdminRequest): Promise<void> {
    await checkCall(request);
    const sessionsRevoked = await revokeUserSessions(deps.sessions, {
      userId: request.userId,
      nowMs: deps.clock.nowMs(),
    });
    await deps.store.eraseUser(request.userId);
    deps.events.record("user_data_deleted", {
      userId: request.userId,
      outcome: "deleted",
      sessions_revoked: sessionsRevoked,
    });
  };
}
