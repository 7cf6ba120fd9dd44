import { revokeUserSessions } from "../oauth/sessions/revoke-refresh-token.js";
import type { SessionDeps } from "../oauth/sessions/session-deps.js";
import type { SecurityEvents } from "../observability/security-events.js";

/** Why every session of a user ended (the `reason` of `sessions_revoked`). */
export type SessionsRevokedReason =
  /** RevokeUserSessions: the account system asked (compromise, password change). */
  | "revoke_user_sessions"
  /** The user removed their authenticator: sessions end with the factor (SPEC §4). */
  | "authenticator_deleted"
  /** An administrator reset the user's MFA (ResetUserMfa). */
  | "user_mfa_reset";

export interface EndUserSessionsDeps {
  sessions: SessionDeps;
  events: SecurityEvents;
}

/**
 * Revokes every refresh-token family of the user (bounded work on every
 * store: session-store.ts `revokeUserFamilies`) and records one
 * `sessions_revoked` event with the number of live sessions ended, even when
 * it is 0 (the audit trail shows that the step ran). Access tokens already
 * issued are JWTs and live until they expire.
 */
export async function endUserSessions(
  deps: EndUserSessionsDeps,
  input: { userId: string; clientId?: string; reason: SessionsRevokedReason; nowMs: number },
): Promise<number> {
  const count = await revokeUserSessions(deps.sessions, {
    userId: input.userId,
    nowMs: input.nowMs,
  });
  deps.events.record("sessions_revoked", {
    userId: input.userId,
    ...(input.clientId !== undefined ? { clientId: input.clientId } : {}),
    outcome: "revoked",
    count,
    reason: input.reason,
  });
  return count;
}
