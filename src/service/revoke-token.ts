import type { ClientAuthenticator, ClientCredentials } from "../oauth/client-auth.js";
import type { RegisteredClient } from "../oauth/client-registry.js";
import { revokeRefreshToken } from "../oauth/sessions/revoke-refresh-token.js";
import type { SessionDeps } from "../oauth/sessions/session-deps.js";
import type { Clock } from "../util/clock.js";
import { optionalString, requireString, type WireString } from "./wire-values.js";

/** A revocation request (RFC 7009 §2.1) as both surfaces hand it over. */
export interface RevokeTokenRequest {
  client: ClientCredentials;
  token: WireString;
  tokenTypeHint: WireString;
  /** Told which client authenticated (the surface allows its browser origins, CORS). */
  onClientAuthenticated?: (client: RegisteredClient) => void;
}

export interface RevokeTokenDeps {
  clientAuth: ClientAuthenticator;
  sessions: SessionDeps;
  clock: Clock;
}

/**
 * Token revocation (RFC 7009; `POST /oauth/revoke`, TokenService.RevokeToken).
 * Client authentication first (row 1, §2.1: the client authenticates as at
 * the token endpoint), then `token` (rows 3, 4) and `token_type_hint` (row
 * 4). The token's family is revoked when it is a refresh token issued to
 * this client; anything else — unknown, malformed, expired, an access token,
 * another client's token — is left alone with the same empty success
 * (§2.2), so the answer reveals nothing about tokens the caller does not
 * own. The hint is accepted and ignored (§2.1 allows it: only refresh tokens
 * are revocable here).
 */
export function createRevokeToken(deps: RevokeTokenDeps) {
  return async function revokeToken(request: RevokeTokenRequest): Promise<void> {
    const client = await deps.clientAuth.authenticate(request.client);
    request.onClientAuthenticated?.(client);
    const token = requireString(request.token, "token");
    optionalString(request.tokenTypeHint, "token_type_hint");
    await revokeRefreshToken(deps.sessions, { client, token, nowMs: deps.clock.nowMs() });
  };
}
