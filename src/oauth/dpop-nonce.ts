import { createHmac, timingSafeEqual } from "node:crypto";
import { deriveKey } from "../mfa/secret-box.js";

/**
 * Server-provided DPoP nonces (RFC 9449 §8), stateless: a nonce is the
 * rotation window it was minted in plus an HMAC of that window under a key
 * derived from SECRETS_KEY. Every instance that shares SECRETS_KEY mints and
 * accepts the same nonces with no shared state; a nonce is accepted in its
 * own window and the next one, so it lives between one and two windows.
 */
export interface DpopNonces {
  current(nowMs: number): string;
  isFresh(nonce: string, nowMs: number): boolean;
}

const MAC_BYTES = 16;

export function createDpopNonces(secretsKey: Buffer, windowSeconds: number): DpopNonces {
  const key = deriveKey(secretsKey, "dpop-nonce");
  const windowOf = (nowMs: number) => Math.floor(nowMs / 1000 / windowSeconds);
  const mint = (window: number) => {
    const counter = Buffer.alloc(6);
    counter.writeUIntBE(window, 0, 6);
    const mac = createHmac("sha256", key).update(counter).digest().subarray(0, MAC_BYTES);
    return Buffer.concat([counter, mac]);
  };
  return {
    current: (nowMs) => mint(windowOf(nowMs)).toString("base64url"),
    isFresh(nonce, nowMs) {
      const raw = Buffer.from(nonce, "base64url");
      if (raw.length !== 6 + MAC_BYTES) return false;
      const window = raw.readUIntBE(0, 6);
      const now = windowOf(nowMs);
      if (window !== now && window !== now - 1) return false;
      return timingSafeEqual(mint(window), raw);
    },
  };
}
