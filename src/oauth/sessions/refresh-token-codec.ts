import { randomBytes } from "node:crypto";
import { createSecretBox } from "../../mfa/secret-box.js";

/**
 * What a refresh token carries: where its family lives in the store, and the
 * login it continues. The grant rides in the token (sealed, so clients can
 * neither read nor change it) rather than in the store: the checks that need
 * no state (another client's token, the DPoP binding, the scope) run before
 * any store call, and the store keeps only hashes and times per family.
 */
export interface RefreshTokenClaims {
  userId: string;
  /** Random id of the family (one login's session); names its store keys. */
  familyId: string;
  clientId: string;
  audience: string;
  /** The scope granted at the login; an exchange may narrow it, never widen it. */
  scope: string;
  /** RFC 8176 method references of the login (`["mfa","otp"]` or `["mfa"]`). */
  amr: readonly string[];
  /**
   * When the login happened (Unix seconds): a refreshed ID token's
   * `auth_time` is the original authentication's (OpenID Connect Core §12.2).
   */
  authTime: number;
  /** RFC 7638 thumbprint of the DPoP key the family is bound to (RFC 9449 §5), if any. */
  jkt?: string;
}

const PREFIX = "rt1.";
const PURPOSE = "refresh-token";
const CONTEXT = "refresh_token";
/** Random bytes sealed into every token, so no two tokens of a family are alike. */
const NONCE_BYTES = 16;
/**
 * Upper bound on a refresh token's length: anything longer is malformed
 * without decrypting. Generous for the claims (an mfa_token, which carries
 * more, has the same bound); `seal` refuses to issue a token over it.
 */
export const MAX_REFRESH_TOKEN_LENGTH = 4096;

export interface RefreshTokenCodec {
  /** A new family id (128 random bits). */
  newFamilyId(): string;
  /** A fresh opaque token for these claims (`rt1.` + AES-256-GCM sealed claims and random bytes). */
  seal(claims: RefreshTokenClaims): string;
  /** null when not one of ours: wrong prefix, too long, tampered, truncated, or sealed under another key. */
  open(token: string): RefreshTokenClaims | null;
}

/**
 * Sealed with the same AES-256-GCM box as mfa_tokens (mfa/secret-box.ts),
 * under its own HKDF-derived key and associated data, so a sealed value of
 * one kind never opens as the other.
 */
export function createRefreshTokenCodec(secretsKey: Buffer): RefreshTokenCodec {
  const box = createSecretBox(secretsKey, PURPOSE);
  return {
    newFamilyId: () => randomBytes(16).toString("base64url"),

    seal(claims) {
      const payload = [
        claims.userId,
        claims.familyId,
        claims.clientId,
        claims.audience,
        claims.scope,
        claims.amr,
        claims.authTime,
        claims.jkt ?? "",
        randomBytes(NONCE_BYTES).toString("base64url"),
      ];
      const token = PREFIX + box.seal(Buffer.from(JSON.stringify(payload), "utf8"), CONTEXT);
      if (token.length > MAX_REFRESH_TOKEN_LENGTH) {
        throw new Error("refresh token claims too large to seal");
      }
      return token;
    },

    open(token) {
      if (
        typeof token !== "string" ||
        !token.startsWith(PREFIX) ||
        token.length > MAX_REFRESH_TOKEN_LENGTH
      ) {
        return null;
      }
      const plain = box.open(token.slice(PREFIX.length), CONTEXT);
      if (plain === null) return null;
      try {
        const parsed: unknown = JSON.parse(plain.toString("utf8"));
        if (!Array.isArray(parsed) || parsed.length !== 9) return null;
        const [userId, familyId, clientId, audience, scope, amr, authTime, jkt] =
          parsed as unknown[];
        if (
          typeof userId !== "string" ||
          typeof familyId !== "string" ||
          typeof clientId !== "string" ||
          typeof audience !== "string" ||
          typeof scope !== "string" ||
          !Number.isSafeInteger(authTime) ||
          typeof jkt !== "string" ||
          !Array.isArray(amr) ||
          !amr.every((m) => typeof m === "string")
        ) {
          return null;
        }
        return {
          userId,
          familyId,
          clientId,
          audience,
          scope,
          amr: amr as string[],
          authTime: authTime as number,
          ...(jkt === "" ? {} : { jkt }),
        };
      } catch {
        return null;
      }
    },
  };
}
