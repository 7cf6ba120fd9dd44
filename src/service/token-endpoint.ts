import type { AddressThrottle } from "../oauth/address-throttle.js";
import type { ClientAuthenticator, ClientCredentials } from "../oauth/client-auth.js";
import type { RegisteredClient } from "../oauth/client-registry.js";
import type { DpopVerifier } from "../oauth/dpop.js";
import type { Grant, TokenParameterName } from "../oauth/grants/grant.js";
import type { GrantTable } from "../oauth/grants/grant-table.js";
import { oauthErrors } from "../oauth/oauth-error.js";
import type { TokenIssuer, TokenResponse } from "../tokens/token-issuer.js";
import type { Clock } from "../util/clock.js";
import { optionalString, requireString, type WireString } from "./wire-values.js";

/** A token request as both surfaces hand it over (REST `POST /oauth/token`, TokenService RPCs). */
export interface TokenRequest {
  grantType: WireString;
  client: ClientCredentials;
  /** The grant's parameters as the wire gave them (`wireString`). */
  params: Readonly<Partial<Record<TokenParameterName, WireString>>>;
  dpop: {
    /** The `DPoP` proof(s) of the request (RFC 9449 §4.1). */
    proofs: string | string[] | undefined;
    /** The URL the proof's `htu` must name (RFC 9449 §4.3 check 9). */
    htu: string;
  };
  /**
   * The client's network address: the socket's peer, or the X-Forwarded-For
   * entry that TRUST_PROXY points at (server/client-address.ts).
   */
  clientAddress: string;
  /** Auth0's `auth0-forwarded-for` header when sent (believed only from confidential clients). */
  auth0ForwardedFor?: string;
  /** Told which client authenticated (the surface allows its browser origins, CORS). */
  onClientAuthenticated?: (client: RegisteredClient) => void;
}

/** The RFC 6749 §5.1 response plus what some grants add. */
export interface TokenResult {
  tokens: TokenResponse;
  /** The recovery-code grant's replacement code. */
  recoveryCode?: string;
  /** A refresh token (RFC 6749 §1.5): a new session's, or a rotated successor. */
  refreshToken?: string;
  /** RFC 9449 §8.2: in nonce mode every token response carries the current nonce. */
  dpopNonce?: string;
}

export interface TokenEndpointDeps {
  grants: GrantTable;
  clientAuth: ClientAuthenticator;
  dpop: DpopVerifier;
  tokenIssuer: TokenIssuer;
  clock: Clock;
  /** Per-address throttling of code verification; undefined when off (ADDRESS_THROTTLING). */
  addressThrottle?: AddressThrottle;
}

export interface TokenEndpoint {
  exchange(request: TokenRequest): Promise<TokenResult>;
}

/**
 * The token endpoint (RFC 6749 §3.2) over the grant table. The checks every
 * grant shares run here, in the order of the error reference: grant_type
 * missing or unknown (row 10), client authentication (1), grant allowed for
 * the client (2, only for known grants), the grant's parameters (3, 4), the
 * DPoP proof (11, before anything single-use is looked at: a bad proof
 * consumes nothing); then the grant itself, then token issuance.
 */
export function createTokenEndpoint(deps: TokenEndpointDeps): TokenEndpoint {
  return {
    async exchange(request) {
      const grantType = requireString(request.grantType, "grant_type");
      const grant = deps.grants.get(grantType);
      if (grant === undefined) throw oauthErrors.unsupportedGrantType(grantType.slice(0, 256));
      const client = await deps.clientAuth.authenticate(request.client);
      request.onClientAuthenticated?.(client);
      if (!client.grantTypes.includes(grant.uri)) throw oauthErrors.unauthorizedClient(grant.uri);
      const { params, optional } = grantParameters(grant, request.params);
      const nowMs = deps.clock.nowMs();
      const dpop = await deps.dpop.verify(
        request.dpop.proofs,
        { htm: "POST", htu: request.dpop.htu },
        nowMs,
      );
      const address = deps.addressThrottle?.bucketFor(request, client);
      const outcome = await grant.redeem({
        client,
        params,
        optional,
        ...(dpop ? { dpop } : {}),
        ...(address ? { address } : {}),
        nowMs,
      });
      const tokens = deps.tokenIssuer.issue({
        ...outcome.subject,
        ...(outcome.dpopJkt ? { dpopJkt: outcome.dpopJkt } : {}),
        idTokenAlg: client.idTokenSigningAlg,
        nowSeconds: Math.floor(nowMs / 1000),
      });
      const nonce = deps.dpop.nonceFor(nowMs);
      return {
        tokens,
        ...(outcome.recoveryCode !== undefined ? { recoveryCode: outcome.recoveryCode } : {}),
        ...(outcome.refreshToken !== undefined ? { refreshToken: outcome.refreshToken } : {}),
        ...(nonce !== undefined ? { dpopNonce: nonce } : {}),
      };
    },
  };
}

/** Rows 3 and 4, in the grant's order (mfa_token before otp). */
function grantParameters(grant: Grant, wire: TokenRequest["params"]) {
  const params: Partial<Record<TokenParameterName, string>> = {};
  for (const name of grant.required) params[name] = requireString(wire[name], name);
  const optional: Partial<Record<TokenParameterName, string>> = {};
  for (const name of grant.optional ?? []) {
    const value = optionalString(wire[name], name);
    if (value !== undefined) optional[name] = value;
  }
  return { params: params as Record<TokenParameterName, string>, optional };
}
