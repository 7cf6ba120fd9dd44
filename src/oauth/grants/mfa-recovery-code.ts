import { generateRecoveryCode, hashRecoveryCode } from "../../mfa/recovery-code.js";
import type { ServiceContext } from "../../service-context.js";
import type { TokenResponse } from "../../tokens/token-issuer.js";
import { dpopProofReplayed } from "../dpop.js";
import { MFA_RECOVERY_CODE_GRANT, oauthErrors } from "../oauth-error.js";
import { type GrantRequest, verifyGrantRequest } from "./grant-request.js";

const AMR_RECOVERY = ["mfa"] as const;

/**
 * Auth0's mfa-recovery-code grant: the same prelude as mfa-otp, then one
 * atomic store step that checks the mfa_token and the bucket, compares the
 * code's hash, and on a match consumes the mfa_token and replaces the code
 * (a wrong code drains the same failure bucket, SPEC §5 row 8).
 */
export async function verifyMfaRecoveryCode(
  ctx: ServiceContext,
  request: GrantRequest,
): Promise<TokenResponse & { recoveryCode: string }> {
  const nowMs = ctx.clock.nowMs();
  const verified = await verifyGrantRequest(
    ctx,
    request,
    MFA_RECOVERY_CODE_GRANT,
    "recovery_code",
    nowMs,
  );
  const { token, tokenRef, code } = verified;
  const newCode = generateRecoveryCode();
  const result = await ctx.store.redeemRecoveryCode(
    tokenRef,
    hashRecoveryCode(ctx.recoveryCodeKey, token.userId, code),
    hashRecoveryCode(ctx.recoveryCodeKey, token.userId, newCode),
    nowMs,
    ctx.bucket,
    verified.dpop?.proof,
  );
  if (result.kind === "proof_replayed") throw dpopProofReplayed();
  if (result.kind === "mfa_token_used") throw oauthErrors.expiredMfaToken();
  if (result.kind === "locked") throw oauthErrors.tooManyAttempts(result.retryAfterSeconds);
  if (result.kind === "invalid") throw oauthErrors.invalidRecoveryCode();

  const tokens = ctx.tokenIssuer.issue({
    userId: token.userId,
    clientId: token.clientId,
    audience: token.audience,
    scope: token.scope,
    amr: AMR_RECOVERY,
    ...(verified.dpop ? { dpopJkt: verified.dpop.jkt } : {}),
    nowSeconds: Math.floor(nowMs / 1000),
  });
  return { ...tokens, recoveryCode: newCode };
}
