import { createHmac } from "node:crypto";
import { deriveKey } from "../../mfa/secret-box.js";

/**
 * The only form in which a refresh token reaches the store: HMAC-SHA-256
 * under a key derived from SECRETS_KEY (HKDF, its own purpose), base64url.
 * A keyed hash rather than a plain one: whoever reads the store (a backup, a
 * replica, `redis-cli`) learns nothing they could present, and cannot test
 * guesses offline without the key.
 *
 * The store compares these hashes with plain string equality. That is not a
 * timing leak worth closing: an attacker who could time it would learn bits of
 * an HMAC they cannot compute, and the tokens themselves are sealed, so a
 * guessed token never reaches the comparison.
 */
export type RefreshTokenHasher = (token: string) => string;

/** Length of every hash: 32 bytes in base64url, no padding. */
export const REFRESH_TOKEN_HASH_LENGTH = 43;

export function createRefreshTokenHasher(secretsKey: Buffer): RefreshTokenHasher {
  const key = deriveKey(secretsKey, "refresh-token-hash");
  return (token) => createHmac("sha256", key).update(token, "utf8").digest("base64url");
}
