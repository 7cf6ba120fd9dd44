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

/** The longest user id an internal call accepts (IssueMfaToken's limit: no login exists for a longer one). */
export const MAX_USER_ID_LENGTH = 255;

/**
 * What every internal call about one user checks first, in order: the key
 * (`Unauthenticated`), then `user_id` present (row 3) and within its limit.
 */
export function createInternalUserCall(internalApiKey: string) {
  const requireInternalApiKey = createInternalApiKeyCheck(internalApiKey);
  return (request: { apiKey: string | undefined; userId: string }): void => {
    requireInternalApiKey(request.apiKey);
    if (request.userId === "") throw oauthErrors.invalidRequest.missingParameter("user_id");
    if (request.userId.length > MAX_USER_ID_LENGTH) {
      throw oauthErrors.invalidRequest.tooLong("user_id", MAX_USER_ID_LENGTH);
    }
  };
}
