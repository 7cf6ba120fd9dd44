import type { SessionDeps } from "../oauth/sessions/session-deps.js";
import type { SecurityEvents } from "../observability/security-events.js";
import type { Store } from "../store/store.js";
import type { Clock } from "../util/clock.js";
import { endUserSessions } from "./end-user-sessions.js";
import {
  createInternalUserCall,
  type InternalCall,
  type InternalKeyGate,
} from "./internal-api-key.js";

export interface UserAdminRequest extends InternalCall {
  userId: string;
}

export interface UserAdminDeps {
  internalKey: InternalKeyGate;
  store: Pick<Store, "resetUserFactors" | "unlockUser" | "eraseUser">;
  sessions: SessionDeps;
  events: SecurityEvents;
  clock: Clock;
}

export interface UserMfaReset {
  /** OTP authenticators removed, active or pending. */
  authenticatorsRemoved: number;
  /** Live sessions (refresh-token families) revoked. */
  sessionsRevoked: number;
}

/**
 * The administrator's `ResetUserMfa` (SPEC §3), the help desk's "lost phone"
 * path: the user's authenticator (active or pending) and recovery code go in
 * one store step, then every session ends (removing a factor ends the
 * user's sessions, SPEC §4), so whoever holds the old phone or a stolen
 * refresh token is out, and the next login enrolls afresh. An unknown user
 * is not an error (counts 0). Events: `user_mfa_reset` and `sessions_revoked`.
 */
export function createResetUserMfa(deps: UserAdminDeps) {
  const checkCall = createInternalUserCall(deps.internalKey, "ResetUserMfa");
  return async function resetUserMfa(request: UserAdminRequest): Promise<UserMfaReset> {
    await checkCall(request);
    const authenticatorsRemoved = await deps.store.resetUserFactors(request.userId);
    const sessionsRevoked = await endUserSessions(deps, {
      userId: request.userId,
      reason: "user_mfa_reset",
      nowMs: deps.clock.nowMs(),
    });
    deps.events.record("user_mfa_reset", {
      userId: request.userId,
      outcome: "reset",
      authenticators_removed: authenticatorsRemoved,
      sessions_revoked: sessionsRevoked,
    });
    return { authenticatorsRemoved, sessionsRevoked };
  };
}
