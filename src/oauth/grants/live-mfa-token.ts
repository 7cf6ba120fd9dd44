import { openMfaToken } from "../../mfa/mfa-token.js";
import type { MfaTokenClaims, MfaTokenCodec } from "../../mfa/mfa-token-codec.js";
import type { MfaTokenRef } from "../../store/store.js";
import { oauthErrors } from "../oauth-error.js";

/**
 * Rows 5 and 6 (by time) for an mfa_token, wherever one is presented (the
 * code grants, the MFA API, the challenge). Whether it was already used is
 * the store's answer, given inside the step that would use it.
 */
export function openLiveMfaToken(
  codec: MfaTokenCodec,
  raw: string,
  nowMs: number,
): { claims: MfaTokenClaims; ref: MfaTokenRef } {
  const opened = openMfaToken(codec, raw, nowMs);
  if (opened.kind === "malformed") throw oauthErrors.invalidGrant.malformedMfaToken();
  if (opened.kind === "expired") throw oauthErrors.expiredToken();
  return opened;
}

/** Rows 5, 6 and 7: a live mfa_token issued to the authenticated client. */
export function openClientMfaToken(
  codec: MfaTokenCodec,
  raw: string,
  clientId: string,
  nowMs: number,
): { claims: MfaTokenClaims; ref: MfaTokenRef } {
  const token = openLiveMfaToken(codec, raw, nowMs);
  if (token.claims.clientId !== clientId) throw oauthErrors.invalidRequest.mfaTokenOtherClient();
  return token;
}
