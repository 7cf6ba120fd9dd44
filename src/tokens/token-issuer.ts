import { randomBytes } from "node:crypto";
import { derived } from "../util/derived.js";
import type { SigningAlgorithm, SigningKey } from "./signing-keys.js";
import { signJwtTraced } from "./traced-jwt-signer.js";

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
  /** RFC 8176 method references: ["mfa","otp"] or ["mfa"] (docs/api.md). */
  amr: readonly string[];
  /** RFC 7638 thumbprint of the DPoP key, when the token is sender-constrained (RFC 9449 §6.1). */
  dpopJkt?: string;
  /** The client's ID-token algorithm (`id_token_signed_response_alg`). */
  idTokenAlg: SigningAlgorithm;
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
 * client_id, iat, exp, jti, scope, amr, auth_time) with the first configured key and, for
 * OpenID scopes, the ID token (OIDC Core §2: aud = client_id) with the first
 * key of the client's ID-token algorithm (the loader guarantees one exists).
 */
export function createTokenIssuer(options: {
  issuerUrl: string;
  /** Read per token: a reload swaps the keys (SIGHUP). */
  keys: () => readonly SigningKey[];
  accessTokenTtlSeconds: number;
  /**
   * Auth0's MFA API audience (`<issuer>mfa/`) and its tokens' lifetime: the
   * right to remove a factor is never older than one fresh second factor
   * (SPEC §4), so these tokens live the smaller of the two lifetimes.
   */
  mfaApi?: { audience: string; ttlSeconds: number };
}): TokenIssuer {
  const { issuerUrl, accessTokenTtlSeconds, mfaApi } = options;
  const lifetimeOf = (audience: string): number =>
    mfaApi !== undefined && audience === mfaApi.audience
      ? Math.min(mfaApi.ttlSeconds, accessTokenTtlSeconds)
      : accessTokenTtlSeconds;
  const keyring = derived(options.keys, (keys) => {
    const first = keys[0];
    if (first === undefined) throw new Error("no signing key configured");
    const idTokenKeys = new Map<SigningAlgorithm, SigningKey>();
    for (const key of keys) if (!idTokenKeys.has(key.alg)) idTokenKeys.set(key.alg, key);
    return { signingKey: first, idTokenKeys };
  });
  return {
    issue(grant) {
      const { signingKey, idTokenKeys } = keyring();
      const iat = grant.nowSeconds;
      const lifetime = lifetimeOf(grant.audience);
      const exp = iat + lifetime;
      // When the second factor was proven: now for a login, the login's for a refresh.
      const authTime = grant.authTimeSeconds ?? iat;
      const accessToken = signJwtTraced("access_token", signingKey, "at+jwt", {
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
        auth_time: authTime,
        ...(grant.dpopJkt ? { cnf: { jkt: grant.dpopJkt } } : {}),
      });
      const response: TokenResponse = {
        accessToken,
        tokenType: grant.dpopJkt ? "DPoP" : "Bearer",
        expiresIn: lifetime,
        scope: grant.scope,
      };
      if (grant.scope.split(" ").includes("openid")) {
        const idTokenKey = idTokenKeys.get(grant.idTokenAlg);
        if (idTokenKey === undefined) throw new Error(`no ${grant.idTokenAlg} key for ID tokens`);
        response.idToken = signJwtTraced("id_token", idTokenKey, "JWT", {
          iss: issuerUrl,
          sub: grant.userId,
          aud: grant.clientId,
          iat,
          exp,
          auth_time: authTime,
          amr: grant.amr,
        });
      }
      return response;
    },
  };
}
