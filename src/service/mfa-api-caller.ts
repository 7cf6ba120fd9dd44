import { looksLikeMfaToken, type MfaTokenCodec } from "../mfa/mfa-token-codec.js";
import { isCompactJws } from "../oauth/compact-jws.js";
import { openLiveMfaToken } from "../oauth/grants/live-mfa-token.js";
import { oauthErrors } from "../oauth/oauth-error.js";
import {
  authorizeAccessToken,
  type PresentedAccessToken,
  type ProtectedResourceDeps,
  type ProtectedResourceRequest,
} from "../oauth/protected-resource.js";
import { PROOF_SCOPE, type Store } from "../store/store.js";
import type { Clock } from "../util/clock.js";

/**
 * Who calls the MFA API: an mfa_token (associate, list, challenge), or an
 * MFA API access token — an access token for the audience `<issuer>mfa/`,
 * obtained by passing MFA (list with `read:authenticators`, delete with
 * `remove:authenticators`).
 */
export type MfaApiCredential =
  | { kind: "mfa_token"; token: string | undefined }
  | { kind: "access_token"; request: ProtectedResourceRequest };

/** Auth0's MFA API audience, `https://{domain}/mfa/`. */
export function mfaApiAudience(issuerUrl: string): string {
  return new URL("mfa/", issuerUrl).href;
}

/**
 * The MFA API credential an `Authorization` header carries: the DPoP scheme
 * is always an access token; a Bearer credential is an mfa_token when it has
 * the mfa_token's form, an access token when it has a JWT's, else a
 * malformed mfa_token (row 5). No header is a missing mfa_token (row 3).
 */
export function mfaApiCredentialOf(
  presented: PresentedAccessToken | undefined,
  request: Omit<ProtectedResourceRequest, "presented">,
): MfaApiCredential {
  if (presented === undefined) return { kind: "mfa_token", token: undefined };
  if (
    presented.scheme === "Bearer" &&
    (looksLikeMfaToken(presented.token) || !isCompactJws(presented.token))
  ) {
    return { kind: "mfa_token", token: presented.token };
  }
  return { kind: "access_token", request: { ...request, presented } };
}

export interface MfaApiCallerDeps {
  mfaTokens: MfaTokenCodec;
  store: Pick<Store, "isMfaTokenConsumed" | "rememberOnce">;
  clock: Clock;
  resource: Omit<ProtectedResourceDeps, "rememberProof">;
  /** `<issuer>mfa/`. */
  audience: string;
}

/** The user a call is for, and the client the credential was issued to. */
export interface MfaApiCaller {
  userId: string;
  clientId: string;
  /** Set for an mfa_token caller: its label for authenticator apps. */
  userLabel?: string;
}

export interface MfaApiAuthorizer {
  /**
   * An mfa_token: missing is row 3, unreadable row 5, expired or consumed
   * row 6 (the /mfa/* calls never consume it).
   */
  mfaToken(raw: string | undefined): Promise<MfaApiCaller>;
  /** An MFA API access token holding `scope`: rows 23 and 24. */
  accessToken(request: ProtectedResourceRequest, scope: string): Promise<MfaApiCaller>;
  /** Either, as the credential says; an access token must hold `scope`. */
  either(credential: MfaApiCredential, scope: string): Promise<MfaApiCaller>;
}

export function createMfaApiAuthorizer(deps: MfaApiCallerDeps): MfaApiAuthorizer {
  const rememberProof = (mark: { id: string; ttlMs: number }) =>
    deps.store.rememberOnce(PROOF_SCOPE, mark.id, mark.ttlMs);
  const authorizer: MfaApiAuthorizer = {
    async mfaToken(raw) {
      if (raw === undefined || raw === "") {
        throw oauthErrors.invalidRequest.missingParameter("mfa_token");
      }
      const { claims, ref } = openLiveMfaToken(deps.mfaTokens, raw, deps.clock.nowMs());
      if (await deps.store.isMfaTokenConsumed(ref)) throw oauthErrors.expiredToken();
      return { userId: claims.userId, clientId: claims.clientId, userLabel: claims.userLabel };
    },
    async accessToken(request, scope) {
      const claims = await authorizeAccessToken(
        { ...deps.resource, rememberProof },
        request,
        { audience: deps.audience, scope, amr: "mfa" },
        deps.clock.nowMs(),
      );
      return { userId: claims.sub, clientId: claims.clientId };
    },
    either(credential, scope) {
      return credential.kind === "mfa_token"
        ? authorizer.mfaToken(credential.token)
        : authorizer.accessToken(credential.request, scope);
    },
  };
  return authorizer;
}
