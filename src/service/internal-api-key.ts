import { createHash, timingSafeEqual } from "node:crypto";
import { oauthErrors } from "../oauth/oauth-error.js";

const sha256 = (value: string) => createHash("sha256").update(value, "utf8").digest();

/**
 * The gate of the internal RPCs (MfaTokenService): the caller's bearer
 * credential must be `INTERNAL_API_KEY`, compared in constant time over
 * SHA-256 digests (equal lengths whatever was presented). Anything else is
 * `Unauthenticated`.
 */
export function createInternalApiKeyCheck(internalApiKey: string) {
  const expected = sha256(internalApiKey);
  return function requireInternalApiKey(presented: string | undefined): void {
    if (presented === undefined || !timingSafeEqual(expected, sha256(presented))) {
      throw oauthErrors.accessDenied.internalApiKey();
    }
  };
}
