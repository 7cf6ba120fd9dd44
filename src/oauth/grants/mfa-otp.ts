import { openTotpSecret } from "../../mfa/authenticator-secret.js";
import { matchTotp } from "../../mfa/totp.js";
import type { ServiceContext } from "../../service-context.js";
import type { TokenResponse } from "../../tokens/token-issuer.js";
import { dpopProofReplayed } from "../dpop.js";
import { MFA_OTP_GRANT, oauthErrors } from "../oauth-error.js";
import { type GrantRequest, verifyGrantRequest } from "./grant-request.js";

const AMR_OTP = ["mfa", "otp"] as const;

/**
 * Auth0's mfa-otp grant (SPEC §4): the shared prelude (client, grant,
 * parameters, mfa_token), then at most two store round trips:
 * 1. `beginVerify`: mfa_token unused, failure bucket not empty, one attempt
 *    taken, authenticator loaded;
 * 2. only on a matching code, `commitOtp`: consume the mfa_token, record the
 *    time step (RFC 6238 §5.2: a code is accepted once), activate a pending
 *    authenticator and give the attempt back — all or nothing.
 * A wrong code costs one round trip and leaves the attempt taken.
 */
export async function verifyMfaOtp(
  ctx: ServiceContext,
  request: GrantRequest,
): Promise<TokenResponse> {
  const nowMs = ctx.clock.nowMs();
  const verified = await verifyGrantRequest(ctx, request, MFA_OTP_GRANT, "otp", nowMs);
  const { token, tokenRef, code } = verified;

  const begun = await ctx.store.beginVerify(tokenRef, nowMs, ctx.bucket, verified.dpop?.proof);
  if (begun.kind === "proof_replayed") throw dpopProofReplayed();
  if (begun.kind === "mfa_token_used") throw oauthErrors.expiredMfaToken();
  if (begun.kind === "locked") throw oauthErrors.tooManyAttempts(begun.retryAfterSeconds);

  const authenticator = begun.authenticator;
  if (authenticator === null) throw oauthErrors.invalidOtp();
  const secret = openTotpSecret(
    ctx.totpSecrets,
    token.userId,
    authenticator.id,
    authenticator.encryptedSecret,
  );
  if (secret === null) {
    // Sealed under another SECRETS_KEY or tampered: an operator problem, not the user's.
    throw oauthErrors.serverError(new Error("TOTP secret does not decrypt (SECRETS_KEY changed?)"));
  }
  const step = matchTotp(secret, code, Math.floor(nowMs / 1000), authenticator.lastStep);
  if (step === null) throw oauthErrors.invalidOtp();

  const committed = await ctx.store.commitOtp({
    token: tokenRef,
    authenticatorId: authenticator.id,
    step,
    nowMs,
    bucket: ctx.bucket,
  });
  if (committed === "mfa_token_used") throw oauthErrors.expiredMfaToken();
  if (committed !== "committed") throw oauthErrors.invalidOtp();

  return ctx.tokenIssuer.issue({
    userId: token.userId,
    clientId: token.clientId,
    audience: token.audience,
    scope: token.scope,
    amr: AMR_OTP,
    ...(verified.dpop ? { dpopJkt: verified.dpop.jkt } : {}),
    nowSeconds: Math.floor(nowMs / 1000),
  });
}
