import { OTP_ID_PREFIX } from "../mfa/enrollment.js";
import type { MfaTokenCodec } from "../mfa/mfa-token-codec.js";
import type { ClientAuthenticator, ClientCredentials } from "../oauth/client-auth.js";
import type { RegisteredClient } from "../oauth/client-registry.js";
import { openClientMfaToken } from "../oauth/grants/live-mfa-token.js";
import { MFA_OTP_GRANT } from "../oauth/grants/mfa-otp.js";
import { oauthErrors } from "../oauth/oauth-error.js";
import type { Store } from "../store/store.js";
import type { Clock } from "../util/clock.js";
import { optionalString, requireString, type WireString } from "./wire-values.js";

/** Auth0's `POST /mfa/challenge` request (and `MfaService.Challenge`). */
export interface ChallengeRequest {
  client: ClientCredentials;
  mfaToken: WireString;
  /** Space-separated challenge types the app can handle, e.g. "otp" or "otp oob". */
  challengeType: WireString;
  /** The authenticator to challenge (optional). */
  authenticatorId: WireString;
  /** Told which client authenticated (the surface allows its browser origins, CORS). */
  onClientAuthenticated?: (client: RegisteredClient) => void;
}

export interface ChallengeDeps {
  clientAuth: ClientAuthenticator;
  mfaTokens: MfaTokenCodec;
  store: Pick<Store, "isMfaTokenConsumed" | "getAuthenticator">;
  clock: Clock;
}

/** The only challenge type this service has: a TOTP code the user reads from their app. */
const OTP = "otp";

/**
 * Auth0's challenge step, which its client libraries call before verifying.
 * For an OTP authenticator there is nothing to send: the answer only tells
 * the app to ask for the code. The checks are the token endpoint's, in its
 * order — client (row 1), the mfa-otp grant allowed (row 2), parameters
 * (rows 3, 4), the mfa_token (rows 5, 6, 7, then 6 by use) — then the
 * authenticator id when given (row 17) and the requested types (row 20).
 * Nothing single-use changes and the failure bucket is not touched.
 */
export function createChallenge(deps: ChallengeDeps) {
  return async function challenge(request: ChallengeRequest): Promise<{ challengeType: "otp" }> {
    const client = await deps.clientAuth.authenticate(request.client);
    request.onClientAuthenticated?.(client);
    if (!client.grantTypes.includes(MFA_OTP_GRANT)) {
      throw oauthErrors.unauthorizedClient(MFA_OTP_GRANT);
    }
    const rawToken = requireString(request.mfaToken, "mfa_token");
    const challengeType = optionalString(request.challengeType, "challenge_type");
    const authenticatorId = optionalString(request.authenticatorId, "authenticator_id");
    const { claims, ref } = openClientMfaToken(
      deps.mfaTokens,
      rawToken,
      client.clientId,
      deps.clock.nowMs(),
    );
    if (await deps.store.isMfaTokenConsumed(ref)) throw oauthErrors.expiredToken();
    const authenticator = await deps.store.getAuthenticator(claims.userId);
    if (
      authenticatorId !== undefined &&
      (authenticator === null || authenticatorId !== OTP_ID_PREFIX + authenticator.id)
    ) {
      throw oauthErrors.notFound.authenticator();
    }
    // No list means "whatever you have"; a list must name a type the user has.
    const requested = challengeType?.split(/\s+/).filter((t) => t !== "") ?? [OTP];
    if (authenticator === null || !requested.includes(OTP)) {
      throw oauthErrors.unsupportedChallengeType();
    }
    return { challengeType: OTP };
  };
}
