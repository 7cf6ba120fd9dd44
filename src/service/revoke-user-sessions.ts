import type { SessionDeps } from "../oauth/sessions/session-deps.js";
import type { SecurityEvents } from "../observability/security-events.js";
import type { Clock } from "../util/clock.js";
import { endUserSessions } from "./end-user-sessions.js";
import { createInternalUserCall } from "./internal-api-key.js";

export interface RevokeUserSessionsRequest {
  /** The bearer credential the caller presented (`INTERNAL_API_KEY`). */
  apiKey: string | undefined;
  userId: string;
}

export interface RevokeUserSessionsDeps {
  internalApiKey: string;
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
  const checkCall = createInternalUserCall(deps.internalApiKey);
  return async function revokeAllSessions(request: RevokeUserSessionsRequest): Promise<number> {
    checkCall(request);
    return endUserSessions(deps, {
      userId: request.userId,
      reason: "revoke_user_sessions",
      nowMs: deps.clock.nowMs(),
    });
  };
}
