import { randomBytes } from "node:crypto";
import { signJwt } from "./jwt-signer.js";
import type { SigningKey } from "./signing-keys.js";

/** The RFC 6749 §5.1 token response, as both surfaces render it. */
export interface TokenResponse {
  accessToken: string;
  tokenType: "Bearer" | "DPoP";
  expiresIn: number;
  scope: string;
  /** Only when the scope holds "openid". */
  idToken?: string;
}

export interface TokenGrant {
  userId: string;
  clientId: string;
  audience: string;
  scope: string;
  /** RFC 8176 method references: ["mfa","otp"] or ["mfa"] (SPEC §4). */
  amr: readonly string[];
  /** RFC 7638 thumbprint of the DPoP key, when the token is sender-constrained (RFC 9449 §6.1). */
  dpopJkt?: string;
  /**
   * When the user authenticated, if not now (a refresh): OpenID Connect Core
   * §12.2 keeps the original `auth_time` in a refreshed ID token.
   */
  authTimeSeconds?: number;
  nowSeconds: number;
}

export interface TokenIssuer {
  issue(grant: TokenGrant): TokenResponse;
}

/**
 * Signs the access token (RFC 9068 JWT profile: `typ: at+jwt`, iss, sub, aud,
 * client_id, iat, exp, jti, scope) and, for OpenID scopes, the ID token
 * (OIDC Core §2: aud = client_id). The first configured key signs.
 */
export function createTokenIssuer(options: {
  issuerUrl: string;
  signingKey: SigningKey;
  accessTokenTtlSeconds: number;
}): TokenIssuer {
  const { issuerUrl, signingKey, accessTokenTtlSeconds } = options;
  return {
    issue(grant) {
      const iat = grant.nowSeconds;
      const exp = iat + accessTokenTtlSeconds;
      const accessToken = signJwt(signingKey, "at+jwt", {
        iss: issuerUrl,
        sub: grant.userId,
        // RFC 9068 §2.2 requires aud; without a requested audience the client is the audience.
        aud: grant.audience || grant.clientId,
        client_id: grant.clientId,
        iat,
        exp,
        jti: randomBytes(16).toString("base64url"),
        scope: grant.scope,
        amr: grant.amr,
        ...(grant.dpopJkt ? { cnf: { jkt: grant.dpopJkt } } : {}),
      });
      const response: TokenResponse = {
        accessToken,
        tokenType: grant.dpopJkt ? "DPoP" : "Bearer",
        expiresIn: accessTokenTtlSeconds,
        scope: grant.scope,
      };
      if (grant.scope.split(" ").includes("openid")) {
        response.idToken = signJwt(signingKey, "JWT", {
          iss: issuerUrl,
          sub: grant.userId,
          aud: grant.clientId,
          iat,
          exp,
          auth_time: grant.authTimeSeconds ?? iat,
          amr: grant.amr,
        });
      }
      return response;
    },
  };
}
