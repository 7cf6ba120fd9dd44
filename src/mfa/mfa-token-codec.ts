import { randomBytes } from "node:crypto";
import { createSecretBox } from "./secret-box.js";

/** What an mfa_token is bound to (docs/api.md): client, user, audience, scope. */
export interface MfaTokenClaims {
  /** Unique id; its single-use state lives in the store. */
  tokenId: string;
  userId: string;
  clientId: string;
  audience: string;
  scope: string;
  userLabel: string;
  /** Unix seconds. */
  expiresAt: number;
}

const PREFIX = "mt1.";
const CONTEXT = "mfa_token";
/**
 * Upper bound on an mfa_token's length; anything longer is malformed without
 * decrypting. The largest token IssueMfaToken can mint (its input limits, at
 * most 3 UTF-8 bytes per character, no control characters) stays below it.
 */
export const MAX_MFA_TOKEN_LENGTH = 12 * 1024;

/**
 * mfa_tokens are self-contained and opaque: the claims are sealed with
 * AES-256-GCM (so clients can neither read the user label nor alter the
 * binding), and only their consumed marker is kept in the store. Verifying a
 * token therefore costs no store read; tampering is caught by the GCM tag
 * (error row 5), expiry by `expiresAt` (row 6). Several instances that share
 * SECRETS_KEY accept each other's tokens.
 */
/** Whether a bearer credential is meant as an mfa_token (rather than an access token). */
export function looksLikeMfaToken(token: string): boolean {
  return token.startsWith(PREFIX);
}

export interface MfaTokenCodec {
  issue(claims: Omit<MfaTokenClaims, "tokenId">): { token: string; claims: MfaTokenClaims };
  /** null when unparsable or tampered. */
  decode(token: string): MfaTokenClaims | null;
}

export function createMfaTokenCodec(secretsKey: Buffer): MfaTokenCodec {
  const box = createSecretBox(secretsKey, "mfa-token");
  return {
    issue(input) {
      const claims: MfaTokenClaims = { tokenId: randomBytes(16).toString("base64url"), ...input };
      const payload = [
        claims.tokenId,
        claims.userId,
        claims.clientId,
        claims.audience,
        claims.scope,
        claims.userLabel,
        claims.expiresAt,
      ];
      const sealed = box.seal(Buffer.from(JSON.stringify(payload), "utf8"), CONTEXT);
      return { token: PREFIX + sealed, claims };
    },
    decode(token) {
      if (!token.startsWith(PREFIX) || token.length > MAX_MFA_TOKEN_LENGTH) return null;
      const plain = box.open(token.slice(PREFIX.length), CONTEXT);
      if (plain === null) return null;
      try {
        const [tokenId, userId, clientId, audience, scope, userLabel, expiresAt] = JSON.parse(
          plain.toString("utf8"),
        ) as [string, string, string, string, string, string, number];
        return { tokenId, userId, clientId, audience, scope, userLabel, expiresAt };
      } catch {
        return null;
      }
    },
  };
}
