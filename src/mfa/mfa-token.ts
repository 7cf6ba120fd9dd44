import type { MfaTokenRef } from "../store/store.js";
import type { MfaTokenClaims, MfaTokenCodec } from "./mfa-token-codec.js";

/**
 * An mfa_token as presented: unreadable (tampered, truncated, foreign), past
 * its expiry, or live. Whether a live token was already used is decided by
 * the store (its consumed marker), inside the step that would use it.
 */
export type OpenedMfaToken =
  | { kind: "malformed" }
  | { kind: "expired" }
  | { kind: "live"; claims: MfaTokenClaims; ref: MfaTokenRef };

export function openMfaToken(codec: MfaTokenCodec, raw: string, nowMs: number): OpenedMfaToken {
  const claims = codec.decode(raw);
  if (claims === null) return { kind: "malformed" };
  if (claims.expiresAt * 1000 <= nowMs) return { kind: "expired" };
  return { kind: "live", claims, ref: mfaTokenRefOf(claims) };
}

/** The store's handle on one mfa_token's single-use state; the marker lives until the token expires. */
export function mfaTokenRefOf(claims: MfaTokenClaims): MfaTokenRef {
  return { userId: claims.userId, tokenId: claims.tokenId, expiresAtMs: claims.expiresAt * 1000 };
}
