import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

/**
 * Authenticated encryption for everything secret the service hands to the
 * store or to clients (docs/api.md "Secrets at rest"): AES-256-GCM with a random
 * 96-bit IV (NIST SP 800-38D §8.2.2), under a key derived from SECRETS_KEY
 * per purpose with HKDF-SHA256 (RFC 5869), so one key never serves two uses.
 * `context` is bound as additional data: a ciphertext moved to another user
 * or authenticator does not decrypt.
 */
export interface SecretBox {
  seal(plaintext: Uint8Array, context: string): string;
  /** null when the input is not a ciphertext of this box and context (tampered, truncated, foreign). */
  open(sealed: string, context: string): Buffer | null;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

export function deriveKey(secretsKey: Buffer, purpose: string): Buffer {
  return Buffer.from(
    hkdfSync("sha256", secretsKey, Buffer.alloc(0), `token-service:${purpose}`, 32),
  );
}

export function createSecretBox(secretsKey: Buffer, purpose: string): SecretBox {
  const key = deriveKey(secretsKey, purpose);
  return {
    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      cipher.setAAD(Buffer.from(context, "utf8"));
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url");
    },
    open(sealed, context) {
      const raw = Buffer.from(sealed, "base64url");
      // Node's decoder skips stray characters and a dangling last one; only the
      // canonical encoding is accepted, so no two strings open to one secret.
      if (raw.length < IV_BYTES + TAG_BYTES || raw.toString("base64url") !== sealed) return null;
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, IV_BYTES));
        decipher.setAAD(Buffer.from(context, "utf8"));
        decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
        return Buffer.concat([
          decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)),
          decipher.final(),
        ]);
      } catch {
        return null;
      }
    },
  };
}
