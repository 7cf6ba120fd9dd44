import { MFA_OTP_GRANT, oauthErrors } from "../oauth/oauth-error.js";
import type { ServiceContext } from "../service-context.js";

export interface IssuedMfaToken {
  mfaToken: string;
  expiresIn: number;
  /** Auth0's `mfa_requirements`: challenge when an active OTP authenticator exists, else enroll. */
  requirement: "challenge" | "enroll";
}

export interface IssueMfaTokenInput {
  userId: string;
  clientId: string;
  audience: string;
  scope: string;
  userLabel: string;
}

/**
 * MfaTokenService.IssueMfaToken (SPEC §3, §5): the caller (already
 * authenticated with INTERNAL_API_KEY) names the user and client; the token is
 * sealed, so issuing it writes nothing to the store.
 */
export async function issueMfaToken(
  ctx: ServiceContext,
  input: IssueMfaTokenInput,
): Promise<IssuedMfaToken> {
  if (input.userId === "") throw oauthErrors.missingParameter("user_id");
  if (input.clientId === "") throw oauthErrors.missingParameter("client_id");
  const client = ctx.config.clients.get(input.clientId);
  if (client === undefined) throw oauthErrors.unknownClient();
  if (!client.grantTypes.includes(MFA_OTP_GRANT)) throw oauthErrors.grantNotAllowed(MFA_OTP_GRANT);
  // Rounded up: the token lives at least the whole TTL (it is checked in ms).
  const nowSeconds = Math.ceil(ctx.clock.nowMs() / 1000);
  const { token } = ctx.mfaTokens.issue({
    userId: input.userId,
    clientId: input.clientId,
    audience: input.audience,
    scope: input.scope,
    userLabel: input.userLabel,
    expiresAt: nowSeconds + ctx.config.mfaTokenTtlSeconds,
  });
  const authenticator = await ctx.store.getAuthenticator(input.userId);
  return {
    mfaToken: token,
    expiresIn: ctx.config.mfaTokenTtlSeconds,
    requirement: authenticator?.active ? "challenge" : "enroll",
  };
}
