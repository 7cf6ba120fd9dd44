import type { SessionDeps } from "../sessions/session-deps.js";
import { startSession } from "../sessions/start-session.js";
import type { Grant, TokenParameterName } from "./grant.js";

/**
 * A login grant (mfa-otp, mfa-recovery-code) that starts a session when the
 * login earns one: the granted scope holds `offline_access` and the client's
 * `grant_types` holds `refresh_token` (sessions/start-session.ts). The
 * session starts only after the grant succeeded, with one more store step
 * (`createFamily`); a login without `offline_access` costs nothing more.
 * The family is bound to the login's DPoP key for public clients (RFC 9449
 * §5).
 *
 * Should that step fail (the store went away between the two), the login
 * answers `temporarily_unavailable` though its mfa_token is spent: handing
 * out tokens without the refresh token the client asked for would break the
 * contract silently, and the user can log in again.
 */
export function startingSessions<P extends TokenParameterName>(
  grant: Grant<P>,
  sessions: SessionDeps,
): Grant<P> {
  return {
    ...grant,
    async redeem(input) {
      const outcome = await grant.redeem(input);
      const { subject } = outcome;
      const refreshToken = await startSession(sessions, {
        client: input.client,
        userId: subject.userId,
        audience: subject.audience,
        scope: subject.scope,
        amr: subject.amr,
        dpopJkt: outcome.dpopJkt,
        nowMs: input.nowMs,
      });
      return refreshToken === undefined ? outcome : { ...outcome, refreshToken };
    },
  };
}
