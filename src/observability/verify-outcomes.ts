import { MFA_OTP_GRANT } from "../oauth/grants/mfa-otp.js";
import { MFA_RECOVERY_CODE_GRANT } from "../oauth/grants/mfa-recovery-code.js";
import { OAuthError, oauthErrors } from "../oauth/oauth-error.js";
import type { TokenEndpoint } from "../service/token-endpoint.js";
import { StoreUnavailableError } from "../store/store.js";
import type { Metrics } from "./metrics.js";

/** The code-verification grants, by their label in the metric. */
const VERIFY_GRANTS = new Map<unknown, string>([
  [MFA_OTP_GRANT, "mfa-otp"],
  [MFA_RECOVERY_CODE_GRANT, "mfa-recovery-code"],
]);

/** Errors whose `error` code alone is too coarse, told apart by their (fixed) description. */
const BY_DESCRIPTION = new Map<string, string>([
  [oauthErrors.invalidGrant.invalidOtp().description, "invalid_code"],
  [oauthErrors.invalidGrant.invalidRecoveryCode().description, "invalid_code"],
  [oauthErrors.invalidGrant.malformedMfaToken().description, "malformed_token"],
  [oauthErrors.invalidRequest.mfaTokenOtherClient().description, "wrong_client"],
]);

/**
 * How a verification ended, as a closed label: ok, invalid_code (wrong,
 * stale or replayed code), locked (failure bucket empty), expired_token
 * (mfa_token expired or used), malformed_token, wrong_client (mfa_token of
 * another client), unavailable (store down), else the OAuth error code
 * (access_denied, invalid_dpop_proof, …) or server_error.
 */
export function verifyOutcomeOf(error: unknown): string {
  if (error instanceof StoreUnavailableError) return "unavailable";
  if (!(error instanceof OAuthError)) return "server_error";
  if (error.error === "too_many_attempts") return "locked";
  if (error.error === "temporarily_unavailable") return "unavailable";
  return BY_DESCRIPTION.get(error.description) ?? error.error;
}

/**
 * The token endpoint with each code verification (the mfa-otp and
 * mfa-recovery-code grants, on REST and RPC alike) counted by outcome.
 * Other grants pass through uncounted.
 */
export function countVerifyOutcomes(endpoint: TokenEndpoint, metrics: Metrics): TokenEndpoint {
  return {
    async exchange(request) {
      const grant = VERIFY_GRANTS.get(request.grantType);
      if (grant === undefined) return endpoint.exchange(request);
      try {
        const result = await endpoint.exchange(request);
        metrics.recordVerify(grant, "ok");
        return result;
      } catch (error) {
        metrics.recordVerify(grant, verifyOutcomeOf(error));
        throw error;
      }
    },
  };
}
