import { openTotpSecret } from "../../mfa/authenticator-secret.js";
import { OTP_ID_PREFIX } from "../../mfa/enrollment.js";
import type { MfaTokenCodec } from "../../mfa/mfa-token-codec.js";
import type { SecretBox } from "../../mfa/secret-box.js";
import { checkTotp } from "../../mfa/totp.js";
import type { SecurityEvents } from "../../observability/security-events.js";
import type { BucketPolicy, Store } from "../../store/store.js";
import { oauthErrors } from "../oauth-error.js";
import { codeGrantOutcome, openGrantMfaToken, refuseSharedOutcome } from "./code-grant.js";
import type { Grant } from "./grant.js";

export const MFA_OTP_GRANT = "http://auth0.com/oauth/grant-type/mfa-otp";

/** RFC 8176: a one-time password as the second factor. */
const AMR_OTP = ["mfa", "otp"] as const;

export interface MfaOtpGrantDeps {
  store: Pick<Store, "beginVerify" | "commitOtp">;
  mfaTokens: MfaTokenCodec;
  /** Opens sealed TOTP secrets. */
  totpSecrets: SecretBox;
  bucket: BucketPolicy;
  events: SecurityEvents;
}

/**
 * Auth0's mfa-otp grant: the mfa_token (rows 5–7), then at most two store
 * round trips:
 * 1. `beginVerify`: the DPoP proof recorded once, the mfa_token unused, the
 *    failure buckets (the user's, and the client address's when throttling
 *    is on) not empty, one attempt taken from each, the authenticator loaded;
 * 2. only on a matching code, `commitOtp`: consume the mfa_token, record the
 *    time step (RFC 6238 §5.2: a code is accepted once), activate a pending
 *    authenticator and give the attempts back — all or nothing.
 * A wrong code costs one round trip and leaves the attempts taken.
 */
export function createMfaOtpGrant(deps: MfaOtpGrantDeps): Grant<"mfa_token" | "otp"> {
  return {
    uri: MFA_OTP_GRANT,
    required: ["mfa_token", "otp"],
    async redeem(input) {
      const { claims, ref } = openGrantMfaToken(deps.mfaTokens, input);
      const { client, params, dpop, address, nowMs } = input;
      const begun = await deps.store.beginVerify(ref, nowMs, deps.bucket, dpop?.proof, address);
      refuseSharedOutcome(begun, deps.events, {
        userId: claims.userId,
        clientId: client.clientId,
        address,
      });

      const authenticator = begun.authenticator;
      // A user with no authenticator: row 9, like a wrong code (and its event).
      if (authenticator === null) {
        deps.events.record("otp_failed", {
          userId: claims.userId,
          clientId: client.clientId,
          ...(address ? { address_id: address.id } : {}),
          outcome: "no_authenticator",
        });
        throw oauthErrors.invalidGrant.invalidOtp();
      }
      const secret = openTotpSecret(
        deps.totpSecrets,
        claims.userId,
        authenticator.id,
        authenticator.encryptedSecret,
      );
      if (secret === null) {
        // Sealed under another SECRETS_KEY or tampered: an operator problem, not the user's.
        throw oauthErrors.serverError(
          new Error("TOTP secret does not decrypt (SECRETS_KEY changed?)"),
        );
      }
      const who = {
        userId: claims.userId,
        clientId: client.clientId,
        authenticatorId: OTP_ID_PREFIX + authenticator.id,
        ...(address ? { address_id: address.id } : {}),
      };
      const check = checkTotp(secret, params.otp, Math.floor(nowMs / 1000), authenticator.lastStep);
      if (check.kind !== "matched") {
        // Both answer row 9; the audit trail tells a guess from a replayed code.
        deps.events.record(check.kind === "replayed" ? "otp_replayed" : "otp_failed", {
          ...who,
          outcome: "refused",
        });
        throw oauthErrors.invalidGrant.invalidOtp();
      }
      const step = check.step;

      const committed = await deps.store.commitOtp({
        token: ref,
        authenticatorId: authenticator.id,
        step,
        nowMs,
        bucket: deps.bucket,
        ...(address ? { address } : {}),
      });
      if (committed === "mfa_token_used") throw oauthErrors.expiredToken();
      if (committed === "replayed") {
        // Another request used this step between our two round trips.
        deps.events.record("otp_replayed", { ...who, outcome: "refused" });
      }
      if (committed !== "committed") throw oauthErrors.invalidGrant.invalidOtp();
      if (!authenticator.active) {
        deps.events.record("authenticator_activated", {
          userId: claims.userId,
          clientId: client.clientId,
          authenticatorId: who.authenticatorId,
          outcome: "activated",
        });
      }

      return codeGrantOutcome(claims, AMR_OTP, dpop);
    },
  };
}
