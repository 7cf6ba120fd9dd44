import type { MfaTokenCodec } from "../../mfa/mfa-token-codec.js";
import { generateRecoveryCode, hashRecoveryCode } from "../../mfa/recovery-code.js";
import type { SecurityEvents } from "../../observability/security-events.js";
import type { BucketPolicy, Store } from "../../store/store.js";
import { oauthErrors } from "../oauth-error.js";
import { codeGrantOutcome, openGrantMfaToken, refuseSharedOutcome } from "./code-grant.js";
import type { Grant } from "./grant.js";

export const MFA_RECOVERY_CODE_GRANT = "http://auth0.com/oauth/grant-type/mfa-recovery-code";

/** RFC 8176: multi-factor, without naming the factor (Auth0's value for recovery codes). */
const AMR_RECOVERY = ["mfa"] as const;

export interface MfaRecoveryCodeGrantDeps {
  store: Pick<Store, "redeemRecoveryCode">;
  mfaTokens: MfaTokenCodec;
  /** HMAC key of recovery-code hashes (codes are never stored in clear). */
  recoveryCodeKey: Buffer;
  bucket: BucketPolicy;
  events: SecurityEvents;
}

/**
 * Auth0's mfa-recovery-code grant: the mfa_token (rows 5–7), then one atomic
 * store step that records the DPoP proof, checks the mfa_token and the
 * bucket, compares the code's hash, and on a match consumes the mfa_token and
 * replaces the code (a wrong code drains the same failure buckets, row 8:
 * the user's, and the client address's when throttling is on).
 */
export function createMfaRecoveryCodeGrant(
  deps: MfaRecoveryCodeGrantDeps,
): Grant<"mfa_token" | "recovery_code"> {
  return {
    uri: MFA_RECOVERY_CODE_GRANT,
    required: ["mfa_token", "recovery_code"],
    async redeem(input) {
      const { claims, ref } = openGrantMfaToken(deps.mfaTokens, input);
      const { client, params, dpop, address, nowMs } = input;
      const newCode = generateRecoveryCode();
      const result = await deps.store.redeemRecoveryCode(
        ref,
        hashRecoveryCode(deps.recoveryCodeKey, claims.userId, params.recovery_code),
        hashRecoveryCode(deps.recoveryCodeKey, claims.userId, newCode),
        nowMs,
        deps.bucket,
        dpop?.proof,
        address,
      );
      refuseSharedOutcome(result, deps.events, {
        userId: claims.userId,
        clientId: client.clientId,
        address,
      });
      if (result.kind === "invalid") throw oauthErrors.invalidGrant.invalidRecoveryCode();
      deps.events.record("recovery_code_used", {
        userId: claims.userId,
        clientId: client.clientId,
        outcome: "redeemed",
      });
      return { ...codeGrantOutcome(claims, AMR_RECOVERY, dpop), recoveryCode: newCode };
    },
  };
}
