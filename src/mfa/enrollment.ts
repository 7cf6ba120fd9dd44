import { randomBytes } from "node:crypto";
import { sealTotpSecret } from "./authenticator-secret.js";
import { generateRecoveryCode, hashRecoveryCode } from "./recovery-code.js";
import type { SecretBox } from "./secret-box.js";
import {
  decodeBase32Secret,
  generateTotpSecret,
  TOTP_DIGITS,
  TOTP_PERIOD_SECONDS,
} from "./totp.js";

/** Auth0 MFA API ids of OTP authenticators start with "totp|". */
export const OTP_ID_PREFIX = "totp|";
/** Auth0 lists the user's recovery code as an authenticator with this id prefix. */
export const RECOVERY_CODE_ID_PREFIX = "recovery-code|";

/**
 * A new pending OTP authenticator: what the store keeps (the secret sealed
 * to this user and authenticator, the recovery code hashed) and what the user
 * sees once (the secret in base32, the recovery code in clear).
 */
export interface NewEnrollment {
  authenticatorId: string;
  /** Base32 (RFC 4648), 160 bits (RFC 4226 §4). */
  secret: string;
  sealedSecret: string;
  recoveryCode: string;
  recoveryCodeHash: string;
}

export function newEnrollment(
  userId: string,
  totpSecrets: SecretBox,
  recoveryCodeKey: Buffer,
): NewEnrollment {
  const secret = generateTotpSecret();
  const authenticatorId = randomBytes(12).toString("base64url");
  const recoveryCode = generateRecoveryCode();
  return {
    authenticatorId,
    secret,
    sealedSecret: sealTotpSecret(totpSecrets, userId, authenticatorId, decodeBase32Secret(secret)),
    recoveryCode,
    recoveryCodeHash: hashRecoveryCode(recoveryCodeKey, userId, recoveryCode),
  };
}

/** Key Uri Format for authenticator apps, issuer and label percent-encoded. */
export function barcodeUri(issuerName: string, userLabel: string, secret: string): string {
  const issuer = encodeURIComponent(issuerName);
  return (
    `otpauth://totp/${issuer}:${encodeURIComponent(userLabel)}?secret=${secret}&issuer=${issuer}` +
    `&algorithm=SHA1&digits=${TOTP_DIGITS}&period=${TOTP_PERIOD_SECONDS}`
  );
}
