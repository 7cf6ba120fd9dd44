import type { SecretBox } from "./secret-box.js";

/** Binds a sealed TOTP secret to its user and authenticator (GCM additional data). */
function contextOf(userId: string, authenticatorId: string): string {
  return `totp\u0000${userId}\u0000${authenticatorId}`;
}

export function sealTotpSecret(
  box: SecretBox,
  userId: string,
  authenticatorId: string,
  secret: Uint8Array,
): string {
  return box.seal(secret, contextOf(userId, authenticatorId));
}

/** The raw secret bytes, or null when the sealed value does not belong to this authenticator. */
export function openTotpSecret(
  box: SecretBox,
  userId: string,
  authenticatorId: string,
  sealed: string,
): Buffer | null {
  return box.open(sealed, contextOf(userId, authenticatorId));
}
