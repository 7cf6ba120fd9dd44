import type { ProofMark } from "../store/store.js";
import type { AccessTokenClaims, AccessTokenVerifier } from "../tokens/access-token-verifier.js";
import { type DpopVerifier, dpopProofReplayed } from "./dpop.js";
import { OAuthError, oauthErrors } from "./oauth-error.js";

/**
 * How an access token reached a protected resource: in an `Authorization`
 * header with the Bearer or DPoP scheme (RFC 6750 §2.1, RFC 9449 §7.1), or
 * in an RPC request field (no scheme; a DPoP proof then comes in the `dpop`
 * field or the `DPoP` header).
 */
export interface PresentedAccessToken {
  scheme: "Bearer" | "DPoP" | "field";
  token: string;
}

export interface ProtectedResourceRequest {
  /** undefined when the request carries no access token at all. */
  presented: PresentedAccessToken | undefined;
  /** The `DPoP` proof(s) of the request, if any. */
  dpopProof: string | string[] | undefined;
  /** The request's method and URL, which a proof must name. */
  htm: string;
  htu: string;
}

/** What a resource demands of the token. */
export interface ResourceRequirement {
  /** The `aud` the token must name (e.g. the MFA API's `<issuer>mfa/`). */
  audience: string;
  /** The scope the call needs (row 24 when the token lacks it). */
  scope: string;
  /** RFC 8176 method the login must have used (e.g. "mfa"). */
  amr: string;
}

export interface ProtectedResourceDeps {
  accessTokens: AccessTokenVerifier;
  dpop: DpopVerifier;
  /** Records a DPoP proof as used; false when it was used before (RFC 9449 §11.1). */
  rememberProof(mark: ProofMark): Promise<boolean>;
}

/**
 * A protected resource's check of an access token this service issued, in
 * this order: a token at all, its signature, issuer, type and expiry, the
 * audience and `amr` (row 23 for any of these, so a caller learns nothing
 * about why), the DPoP binding (RFC 9449 §7: a bound token only with the DPoP
 * scheme, or an RPC field, and a valid proof by the bound key for this very
 * request and token), then the scope (row 24). The proof's `jti` is recorded
 * last, once every other check passed.
 */
export async function authorizeAccessToken(
  deps: ProtectedResourceDeps,
  request: ProtectedResourceRequest,
  requirement: ResourceRequirement,
  nowMs: number,
): Promise<AccessTokenClaims> {
  const { presented } = request;
  const scheme = presented?.scheme === "DPoP" ? "DPoP" : "Bearer";
  if (presented === undefined) throw oauthErrors.invalidToken();
  const claims = await deps.accessTokens.verify(presented.token, nowMs);
  if (
    claims === null ||
    !claims.audiences.includes(requirement.audience) ||
    !claims.amr.includes(requirement.amr)
  ) {
    throw oauthErrors.invalidToken(scheme);
  }

  let proof: ProofMark | undefined;
  if (claims.jkt === undefined) {
    // RFC 9449 §7.1: the DPoP scheme is for DPoP-bound tokens only.
    if (presented.scheme === "DPoP") throw oauthErrors.invalidToken(scheme);
  } else {
    // RFC 9449 §7.2: a bound token presented as a bearer token is refused,
    // and so is one without a proof (it would be usable by whoever stole it).
    if (presented.scheme === "Bearer" || request.dpopProof === undefined) {
      throw oauthErrors.invalidToken(scheme);
    }
    const valid = await deps.dpop
      .verify(
        request.dpopProof,
        { htm: request.htm, htu: request.htu, accessToken: presented.token },
        nowMs,
      )
      .catch((error: unknown) => {
        // The token endpoint's nonce challenge (400) becomes a resource server's (401, RFC 9449 §9).
        if (error instanceof OAuthError && error.error === "use_dpop_nonce") {
          throw oauthErrors.useDpopNonceAtResource(error.headers["dpop-nonce"] ?? "");
        }
        throw error;
      });
    if (valid === undefined) throw oauthErrors.invalidToken(scheme);
    if (valid.jkt !== claims.jkt) {
      throw oauthErrors.invalidDpopProof("DPoP proof key does not match the access token");
    }
    proof = valid.proof;
  }

  if (!claims.scopes.includes(requirement.scope)) {
    throw oauthErrors.insufficientScope(requirement.scope, scheme);
  }
  if (proof !== undefined && !(await deps.rememberProof(proof))) throw dpopProofReplayed();
  return claims;
}

/**
 * Splits an `Authorization` header into scheme and token; undefined when it
 * is absent or not a Bearer/DPoP credential (RFC 6750 §2.1, RFC 9449 §7.1;
 * scheme names are case-insensitive, RFC 9110 §11.1).
 */
export function presentedFromHeader(
  authorization: string | null | undefined,
): PresentedAccessToken | undefined {
  if (!authorization) return undefined;
  const match = /^(Bearer|DPoP) +([^\s]+)\s*$/i.exec(authorization);
  if (match?.[1] === undefined || match[2] === undefined) return undefined;
  return { scheme: match[1].toLowerCase() === "dpop" ? "DPoP" : "Bearer", token: match[2] };
}
