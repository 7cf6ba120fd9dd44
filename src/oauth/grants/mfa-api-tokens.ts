import { OFFLINE_ACCESS } from "../sessions/session-policy.js";
import { scopeValues } from "../sessions/session-scope.js";
import type { Grant, GrantOutcome, TokenParameterName } from "./grant.js";

/**
 * MFA API access tokens (audience exactly `<issuer>mfa/`) never come with a
 * refresh token (SPEC §4): the right to remove a factor is never older than
 * one fresh second factor. A stolen refresh token could otherwise keep
 * minting tokens able to delete the user's authenticator for the family's
 * whole lifetime.
 *
 * Wrapped inside `startingSessions`, it drops `offline_access` from the
 * granted scope (the token's `scope` claim and the response's `scope`), so no
 * session starts; around the refresh grant it withholds the successor of a
 * family started before this rule (the family then ends with its last token).
 * Their short lifetime is the token issuer's (MFA_API_TOKEN_TTL_SECONDS).
 */
export function withoutSessionsForMfaApi<P extends TokenParameterName>(
  grant: Grant<P>,
  mfaApiAudience: string,
): Grant<P> {
  return {
    ...grant,
    async redeem(input) {
      const outcome = await grant.redeem(input);
      if (outcome.subject.audience !== mfaApiAudience) return outcome;
      const { refreshToken: _withheld, ...rest } = outcome;
      const scope = scopeValues(outcome.subject.scope)
        .filter((value) => value !== OFFLINE_ACCESS)
        .join(" ");
      const limited: GrantOutcome = { ...rest, subject: { ...outcome.subject, scope } };
      return limited;
    },
  };
}
