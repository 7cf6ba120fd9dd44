import { OTP_ID_PREFIX } from "../mfa/enrollment.js";
import { recoveryCodeAuthenticatorId } from "../mfa/recovery-code.js";
import { oauthErrors } from "../oauth/oauth-error.js";
import type { ProtectedResourceRequest } from "../oauth/protected-resource.js";
import type { SessionDeps } from "../oauth/sessions/session-deps.js";
import type { SecurityEvents } from "../observability/security-events.js";
import type { Store } from "../store/store.js";
import type { Clock } from "../util/clock.js";
import { endUserSessions } from "./end-user-sessions.js";
import type { MfaApiAuthorizer } from "./mfa-api-caller.js";

export interface DeleteAuthenticatorRequest {
  credential: ProtectedResourceRequest;
  authenticatorId: string;
}

export interface DeleteAuthenticatorDeps {
  authorize: MfaApiAuthorizer;
  store: Pick<Store, "deleteAuthenticator">;
  events: SecurityEvents;
  /** Derives the recovery-code authenticator's id. */
  recoveryCodeKey: Buffer;
  /** The user's refresh-token families end with the factor. */
  sessions: SessionDeps;
  clock: Clock;
}

/**
 * Auth0's `DELETE /mfa/authenticators/{id}`. Removing a factor needs the
 * second factor: only an MFA API access token with `remove:authenticators`
 * (obtained by passing MFA) is accepted. With an mfa_token — all a
 * password-only attacker can get — anyone could delete the user's
 * authenticator, enroll their own and log in.
 *
 * Sessions end with the factor (SPEC §4): after the delete, every
 * refresh-token family of the user is revoked — a user who resets MFA because
 * the phone was stolen does not keep the thief's sessions. Two store steps
 * (the Store and the SessionStore are separate contracts); should the second
 * fail, the answer is 503 and the authenticator is already gone: the caller
 * can end the sessions with RevokeUserSessions (docs/architecture.md, Decisions).
 */
export function createDeleteAuthenticator(deps: DeleteAuthenticatorDeps) {
  return async function deleteAuthenticator(request: DeleteAuthenticatorRequest): Promise<void> {
    const caller = await deps.authorize.accessToken(request.credential, "remove:authenticators");
    const id = request.authenticatorId;
    if (id === "") throw oauthErrors.invalidRequest.missingParameter("authenticator_id");
    if (id === recoveryCodeAuthenticatorId(deps.recoveryCodeKey, caller.userId)) {
      // The recovery code is replaced on use, never removed: it is the way back in.
      throw oauthErrors.accessDenied.recoveryCodeAuthenticator();
    }
    const deleted =
      id.startsWith(OTP_ID_PREFIX) &&
      (await deps.store.deleteAuthenticator(caller.userId, id.slice(OTP_ID_PREFIX.length)));
    if (!deleted) throw oauthErrors.notFound.authenticator();
    deps.events.record("authenticator_deleted", {
      userId: caller.userId,
      clientId: caller.clientId,
      authenticatorId: id,
      outcome: "deleted",
    });
    await endUserSessions(deps, {
      userId: caller.userId,
      clientId: caller.clientId,
      reason: "authenticator_deleted",
      nowMs: deps.clock.nowMs(),
    });
  };
}
