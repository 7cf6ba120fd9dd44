import { exchangeRefreshToken } from "../sessions/exchange-refresh-token.js";
import type { SessionDeps } from "../sessions/session-deps.js";
import { REFRESH_TOKEN_GRANT } from "../sessions/session-policy.js";
import type { Grant } from "./grant.js";

export interface RefreshTokenGrantDeps {
  sessions: SessionDeps;
}

/**
 * The `refresh_token` grant (RFC 6749 §6): a session's token buys new tokens
 * for the login it continues — same subject, audience, client and `amr`,
 * the scope narrowed on request — and, for rotating clients, its successor.
 * The rules (reuse detection, lifetimes, DPoP binding, scope) live in
 * sessions/exchange-refresh-token.ts; one store step per exchange.
 */
export function createRefreshTokenGrant(deps: RefreshTokenGrantDeps): Grant<"refresh_token"> {
  return {
    uri: REFRESH_TOKEN_GRANT,
    required: ["refresh_token"],
    optional: ["scope"],
    async redeem({ client, params, optional, dpop, nowMs }) {
      const grant = await exchangeRefreshToken(deps.sessions, {
        client,
        refreshToken: params.refresh_token,
        scope: optional.scope,
        dpop,
        nowMs,
      });
      return {
        subject: {
          userId: grant.userId,
          clientId: grant.clientId,
          audience: grant.audience,
          scope: grant.scope,
          amr: grant.amr,
          authTimeSeconds: grant.authTimeSeconds,
        },
        ...(grant.dpopJkt !== undefined ? { dpopJkt: grant.dpopJkt } : {}),
        ...(grant.refreshToken !== undefined ? { refreshToken: grant.refreshToken } : {}),
      };
    },
  };
}
