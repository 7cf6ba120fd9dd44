import { createHmac, randomInt } from "node:crypto";

/** Crockford-style alphabet without look-alikes (no I, L, O, U). */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const LENGTH = 24;

/** A new recovery code: 24 symbols of 5 bits = 120 bits, shown to the user once. */
export function generateRecoveryCode(): string {
  let code = "";
  for (let i = 0; i < LENGTH; i++) code += ALPHABET[randomInt(ALPHABET.length)];
  return code;
}

/**
 * Recovery codes are stored only as keyed hashes (docs/api.md). HMAC-SHA256 under
 * a key derived from SECRETS_KEY and bound to the user: a leaked store alone
 * cannot be brute-forced offline, and equal codes of two users hash apart.
 * The code is normalised (case, spaces, dashes) as users type it.
 */
export function hashRecoveryCode(key: Buffer, userId: string, code: string): string {
  const normalised = code.replace(/[\s-]/g, "").toUpperCase();
  return createHmac("sha256", key)
    .update(`${userId}\u0000${normalised}`, "utf8")
    .digest("base64url");
}

/**
 * The id of the user's recovery code as an MFA API authenticator
 * (`recovery-code|…`, as Auth0 lists it): stable for the user (the code
 * itself changes on every use) and revealing nothing about the user id.
 */
export function recoveryCodeAuthenticatorId(key: Buffer, userId: string): string {
  const tag = createHmac("sha256", key)
    .update(`authenticator-id\u0000${userId}`, "utf8")
    .digest("base64url")
    .slice(0, 22);
  return `recovery-code|${tag}`;
}
