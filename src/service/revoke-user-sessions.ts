import type { SessionDeps } from "../oauth/sessions/session-deps.js";
import type { SecurityEvents } from "../observability/security-events.js";
import type { Clock } from "../util/clock.js";
import { endUserSessions } from "./end-user-sessions.js";
import {
  createInternalUserCall,
  type InternalCall,
  type InternalKeyGate,
} from "./internal-api-key.js";

export interface RevokeUserSessionsRequest extends InternalCall {
  userId: string;
}

export interface RevokeUserSessionsDeps {
  internalKey: InternalKeyGate;
  sessions: SessionDeps;
  events: SecurityEvents;
  clock: Clock;
}

/**
 * The internal `RevokeUserSessions`: the account system ends every session
 * of one user (account compromise, password change) in one atomic store
 * step, and learns how many live sessions there were. Access tokens already
 * issued are JWTs and stay valid until they expire.
 */
export function createRevokeUserSessions(deps: RevokeUserSessionsDeps) {
  const checkCall = createInternalUserCall(deps.internalKey, "RevokeUserSessions");
  return async function revokeAllSessions(request: RevokeUserSessionsRequest): Promise<number> {
    await checkCall(request);
    return endUserSessions(deps, {
      userId: request.userId,
      reason: "revoke_user_sessions",
      nowMs: deps.clock.nowMs(),
    });
  };
}
