import { createLocalJWKSet, type JWTPayload, jwtVerify } from "jose";
import { derived } from "../util/derived.js";
import type { SigningKey } from "./signing-keys.js";

/** The claims of an access token this service issued (RFC 9068 §2.2), as a protected resource reads them. */
export interface AccessTokenClaims {
  sub: string;
  clientId: string;
  /** Every audience the token names (`aud` may be a string or an array, RFC 7519 §4.1.3). */
  audiences: readonly string[];
  scopes: readonly string[];
  amr: readonly string[];
  /** RFC 9449 §6.1: the DPoP key thumbprint the token is bound to, if any. */
  jkt?: string;
}

export interface AccessTokenVerifier {
  /**
   * The token's claims when it is an access token this service signed
   * (signature against one of its own keys, `typ: at+jwt`, our issuer, not
   * expired); null otherwise. Audience and scope are the caller's rules.
   */
  verify(token: string, nowMs: number): Promise<AccessTokenClaims | null>;
}

/** Larger than any token this service signs; anything longer is refused unparsed. */
const MAX_ACCESS_TOKEN_LENGTH = 8 * 1024;

/**
 * Verifies access tokens against the service's own public keys with jose
 * (not on the verify path of a login, so the WebCrypto cost that made the
 * signer hand-written does not matter here). RFC 9068 §4: the resource server
 * MUST check `typ` (`at+jwt`, so an ID token signed by the same keys is
 * never taken for an access token), the issuer, the signature and `exp`.
 */
export function createAccessTokenVerifier(options: {
  issuerUrl: string;
  /** Read per token: a reload swaps the keys (SIGHUP); every published key verifies. */
  keys: () => readonly SigningKey[];
}): AccessTokenVerifier {
  const keySet = derived(options.keys, (keys) => ({
    jwks: createLocalJWKSet({ keys: keys.map((k) => ({ ...k.publicJwk })) }),
    algorithms: [...new Set(keys.map((k) => k.alg))],
  }));
  return {
    async verify(token, nowMs) {
      if (token.length > MAX_ACCESS_TOKEN_LENGTH) return null;
      const { jwks, algorithms } = keySet();
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, jwks, {
          issuer: options.issuerUrl,
          typ: "at+jwt",
          algorithms,
          currentDate: new Date(nowMs),
          requiredClaims: ["sub", "exp", "iat", "aud"],
        }));
      } catch {
        return null;
      }
      const {
        sub,
        aud,
        scope,
        amr,
        client_id: clientId,
        cnf,
      } = payload as JWTPayload & {
        scope?: unknown;
        amr?: unknown;
        client_id?: unknown;
        cnf?: { jkt?: unknown };
      };
      if (typeof sub !== "string" || sub === "" || typeof clientId !== "string") return null;
      const audiences = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud : [];
      const jkt = cnf?.jkt;
      if (cnf !== undefined && typeof jkt !== "string") return null;
      return {
        sub,
        clientId,
        audiences,
        scopes: typeof scope === "string" ? scope.split(" ").filter((s) => s !== "") : [],
        amr: Array.isArray(amr) ? amr.filter((m): m is string => typeof m === "string") : [],
        ...(typeof jkt === "string" ? { jkt } : {}),
      };
    },
  };
}
