import { createHmac, timingSafeEqual } from "node:crypto";
import { ScureBase32Plugin } from "@otplib/plugin-base32-scure";
import { NodeCryptoPlugin } from "@otplib/plugin-crypto-node";
import { generateSecret, generateSync } from "otplib";

/**
 * TOTP (RFC 6238) as docs/api.md fixes it: HMAC-SHA1, 6 digits, 30-second steps,
 * accepting the current and the previous step (RFC 6238 §5.2 allows a small
 * backward window for transmission delay).
 *
 * Secrets and codes for enrollment, tests and tools come from otplib. The
 * verify path's check is written by hand on node:crypto: otplib's verifySync
 * measured ~30–45 µs per two-step check here against ~6 µs for the same
 * RFC 4226 §5.3 truncation written directly (bench notes in README). The unit
 * tests cross-check it against otplib and the RFC 6238 Appendix B vectors.
 */
export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;

const crypto = new NodeCryptoPlugin();
const base32 = new ScureBase32Plugin();
const SIX_DIGITS = /^\d{6}$/;

/** A fresh 160-bit secret, base32 (RFC 4226 §4 recommends 160 bits). */
export function generateTotpSecret(): string {
  return generateSecret({ length: 20, crypto, base32 });
}

export function decodeBase32Secret(secret: string): Uint8Array {
  return base32.decode(secret);
}

export function timeStepOf(nowSeconds: number): number {
  return Math.floor(nowSeconds / TOTP_PERIOD_SECONDS);
}

/** RFC 4226 §5.3: HMAC-SHA1 over the 8-byte big-endian counter, dynamic truncation, 6 digits. */
function hotp6(secret: Uint8Array, counter: number): Buffer {
  const message = Buffer.allocUnsafe(8);
  message.writeUInt32BE(Math.floor(counter / 2 ** 32), 0);
  message.writeUInt32BE(counter >>> 0, 4);
  const mac = createHmac("sha1", secret).update(message).digest();
  const offset = (mac[19] as number) & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return Buffer.from((binary % 1_000_000).toString().padStart(TOTP_DIGITS, "0"), "latin1");
}

/** What a code is: a match of a usable step, a right code for a step already used, or wrong. */
export type TotpCheck =
  | { kind: "matched"; step: number }
  /** RFC 6238 §5.2: the code of a step at or below the last accepted one (a replay). */
  | { kind: "replayed" }
  | { kind: "wrong" };

/**
 * What the code is. Only steps strictly greater than `afterStep` are
 * accepted (the replay guard's last accepted step, docs/api.md); the store
 * re-checks that atomically when it records the step. A code of the current
 * or previous step that is not above `afterStep` is `replayed` (a security
 * event, answered as a wrong code). Both candidate steps are always computed
 * and compared in constant time, so the timing does not tell which step (if
 * any) matched.
 */
export function checkTotp(
  secret: Uint8Array,
  code: string,
  nowSeconds: number,
  afterStep: number,
): TotpCheck {
  if (!SIX_DIGITS.test(code)) return { kind: "wrong" };
  const given = Buffer.from(code, "latin1");
  const current = timeStepOf(nowSeconds);
  const matchesCurrent = timingSafeEqual(hotp6(secret, current), given);
  const matchesPrevious = timingSafeEqual(hotp6(secret, current - 1), given);
  if (matchesCurrent && current > afterStep) return { kind: "matched", step: current };
  if (matchesPrevious && current - 1 > afterStep) return { kind: "matched", step: current - 1 };
  return matchesCurrent || matchesPrevious ? { kind: "replayed" } : { kind: "wrong" };
}

/** The time step the code matches (see `checkTotp`), or null. */
export function matchTotp(
  secret: Uint8Array,
  code: string,
  nowSeconds: number,
  afterStep: number,
): number | null {
  const check = checkTotp(secret, code, nowSeconds, afterStep);
  return check.kind === "matched" ? check.step : null;
}

/**
 * A code for `nowSeconds` (otplib). Used by tests, the README walk-through and
 * the benchmarks; `digits`/`algorithm` exist for the RFC 6238 Appendix B vectors.
 */
export function generateTotp(
  secret: Uint8Array | string,
  nowSeconds: number,
  options: { digits?: 6 | 8; algorithm?: "sha1" | "sha256" | "sha512" } = {},
): string {
  return generateSync({
    secret,
    epoch: nowSeconds,
    digits: options.digits ?? TOTP_DIGITS,
    algorithm: options.algorithm ?? "sha1",
    period: TOTP_PERIOD_SECONDS,
    crypto,
    base32,
  });
}
