import { randomBytes } from "node:crypto";
import { decodeLiveMfaToken, mfaTokenRefOf } from "../oauth/grants/grant-request.js";
import { oauthErrors } from "../oauth/oauth-error.js";
import type { ServiceContext } from "../service-context.js";
import { sealTotpSecret } from "./authenticator-secret.js";
import type { MfaTokenClaims } from "./mfa-token-codec.js";
import { generateRecoveryCode, hashRecoveryCode } from "./recovery-code.js";
import {
  decodeBase32Secret,
  generateTotpSecret,
  TOTP_DIGITS,
  TOTP_PERIOD_SECONDS,
} from "./totp.js";

/** Auth0 MFA API ids of OTP authenticators start with "totp|" (SPEC §3). */
export const OTP_ID_PREFIX = "totp|";

export interface AssociateResult {
  authenticatorType: "otp";
  secret: string;
  barcodeUri: string;
  recoveryCodes: string[];
}

export interface AuthenticatorView {
  id: string;
  authenticatorType: "otp";
  active: boolean;
}

/**
 * The mfa_token that authorises an /mfa/* call: missing is row 3, unparsable
 * row 5, expired or consumed row 6 (SPEC §5, "Rows 5 and 6 apply to the
 * /mfa/* routes too").
 */
async function authorise(
  ctx: ServiceContext,
  rawToken: string | undefined,
): Promise<MfaTokenClaims> {
  if (rawToken === undefined || rawToken === "") throw oauthErrors.missingParameter("mfa_token");
  const token = decodeLiveMfaToken(ctx, rawToken, ctx.clock.nowMs());
  if (await ctx.store.isMfaTokenConsumed(mfaTokenRefOf(token))) throw oauthErrors.expiredMfaToken();
  return token;
}

/**
 * SPEC §4 Enrollment: allowed only while the user has no active OTP
 * authenticator; creates a pending one (replacing an earlier pending one),
 * which the first successful verify activates. Recovery codes are handed out
 * only with the user's first association.
 */
export async function associate(
  ctx: ServiceContext,
  rawToken: string | undefined,
  authenticatorTypes: readonly string[],
): Promise<AssociateResult> {
  const token = await authorise(ctx, rawToken);
  if (authenticatorTypes.length > 0 && !authenticatorTypes.includes("otp")) {
    throw oauthErrors.badBody(400, 'Unsupported authenticator_types: only "otp" is supported');
  }
  const secret = generateTotpSecret();
  const authenticatorId = randomBytes(12).toString("base64url");
  const recoveryCode = generateRecoveryCode();
  const result = await ctx.store.associatePending(
    token.userId,
    {
      id: authenticatorId,
      encryptedSecret: sealTotpSecret(
        ctx.totpSecrets,
        token.userId,
        authenticatorId,
        decodeBase32Secret(secret),
      ),
    },
    hashRecoveryCode(ctx.recoveryCodeKey, token.userId, recoveryCode),
  );
  if (result.kind === "already_enrolled") throw oauthErrors.alreadyEnrolled();
  return {
    authenticatorType: "otp",
    secret,
    barcodeUri: barcodeUri(ctx.config.issuerName, token.userLabel || token.userId, secret),
    recoveryCodes: result.recoveryCodeStored ? [recoveryCode] : [],
  };
}

/** Key Uri Format, percent-encoding issuer and label (SPEC §3). */
export function barcodeUri(issuerName: string, userLabel: string, secret: string): string {
  const issuer = encodeURIComponent(issuerName);
  return (
    `otpauth://totp/${issuer}:${encodeURIComponent(userLabel)}?secret=${secret}&issuer=${issuer}` +
    `&algorithm=SHA1&digits=${TOTP_DIGITS}&period=${TOTP_PERIOD_SECONDS}`
  );
}

export async function listAuthenticators(
  ctx: ServiceContext,
  rawToken: string | undefined,
): Promise<AuthenticatorView[]> {
  const token = await authorise(ctx, rawToken);
  const authenticator = await ctx.store.getAuthenticator(token.userId);
  if (authenticator === null) return [];
  return [
    {
      id: OTP_ID_PREFIX + authenticator.id,
      authenticatorType: "otp",
      active: authenticator.active,
    },
  ];
}

export async function deleteAuthenticator(
  ctx: ServiceContext,
  rawToken: string | undefined,
  authenticatorId: string,
): Promise<void> {
  const token = await authorise(ctx, rawToken);
  if (authenticatorId === "") throw oauthErrors.missingParameter("authenticator_id");
  const deleted =
    authenticatorId.startsWith(OTP_ID_PREFIX) &&
    (await ctx.store.deleteAuthenticator(
      token.userId,
      authenticatorId.slice(OTP_ID_PREFIX.length),
    ));
  if (!deleted) throw oauthErrors.authenticatorNotFound();
}
