/**
 * Which public keys the service verifies signatures with (SPEC §4): a key
 * must fit its algorithm and cost a bounded amount of work, checked on the
 * JWK's members before the key is imported or any signature is checked.
 *
 * Why each bound:
 * - RSA: the modulus from 2,048 bits (RFC 7518 §3.3 and §3.5: "a key of size
 *   2048 bits or larger MUST be used") to 4,096 bits, and the public exponent
 *   exactly 65537. A verification is one modular exponentiation by `e`: with
 *   e = 65537 it is 17 multiplications; a proof carrying a 3,000-bit exponent
 *   costs as much as a private-key operation (about 10 ms of CPU each, seen
 *   from one public client at 140 requests a second). The modulus bound caps
 *   the cost of each multiplication.
 * - EC: the curve of the algorithm (RFC 7518 §3.4: ES256 on P-256, ES384 on
 *   P-384), coordinates of the curve's size; node:crypto refuses a point off
 *   the curve when importing.
 * - OKP: Ed25519 only (RFC 8037 §3.1), a 32-byte key.
 * - A public key only: no private or symmetric members.
 *
 * Used for DPoP proofs' `jwk` (row 11 when refused, embedded-jwk-jws.ts) and
 * for clients' registered `jwks` (refused at start-up and reload,
 * client-registry.ts). Adding an algorithm is one line of KEY_RULES.
 */

/** The key an algorithm needs. */
export interface KeyRule {
  kty: "RSA" | "EC" | "OKP";
  /** EC and OKP: the one curve allowed. */
  crv?: string;
}

const RSA: KeyRule = { kty: "RSA" };
const P256: KeyRule = { kty: "EC", crv: "P-256" };
const P384: KeyRule = { kty: "EC", crv: "P-384" };
const ED25519: KeyRule = { kty: "OKP", crv: "Ed25519" };

/** One line per JWS algorithm the service verifies (jose-algorithms.ts lists which are accepted). */
export const KEY_RULES: Readonly<Record<string, KeyRule>> = {
  ES256: P256,
  ES384: P384,
  EdDSA: ED25519,
  // RFC 9864's fully-specified name for EdDSA on Ed25519 (SPEC §4: accepted wherever EdDSA is).
  Ed25519: ED25519,
  RS256: RSA,
  PS256: RSA,
};

/** RSA modulus bounds in bits (RFC 7518 §3.3 below, verification cost above). */
export const MIN_RSA_MODULUS_BITS = 2048;
export const MAX_RSA_MODULUS_BITS = 4096;
/** The only public exponent accepted, as its minimal base64url (RFC 7518 §6.3.1.2, Base64urlUInt). */
const RSA_EXPONENT_65537 = "AQAB";
/** Coordinate (EC) or key (OKP) size in bytes per curve. */
const CURVE_BYTES: Readonly<Record<string, number>> = { "P-256": 32, "P-384": 48, Ed25519: 32 };
/** The rule in one sentence, for refusals that name it (clients file, CLI). */
export const ACCEPTED_PUBLIC_KEYS =
  "keys must be RSA of 2048 to 4096 bits with exponent 65537, EC on P-256 or P-384, or Ed25519";

/** JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4). */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Why `jwk` may not verify signatures of `alg`, or undefined when it may.
 * Without `alg` (a registered key that names none), the key must fit one of
 * the algorithms of KEY_RULES. The reason names the rule, never the key.
 */
export function publicKeyProblem(jwk: unknown, alg?: string): string | undefined {
  if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) return "not a JSON object";
  const key = jwk as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((member) => member in key)) return "not a public key";
  const named = alg ?? (typeof key.alg === "string" ? key.alg : undefined);
  if (named !== undefined) {
    const rule = KEY_RULES[named];
    if (rule === undefined) return `alg ${named} is not accepted`;
    return ruleProblem(key, rule, named);
  }
  // No algorithm named: the key must fit some accepted algorithm's rule.
  const rule = Object.values(KEY_RULES).find((r) => r.kty === key.kty && r.crv === key.crv);
  if (rule === undefined) return "kty and crv fit no accepted algorithm";
  return ruleProblem(key, rule, rule.kty);
}

function ruleProblem(
  key: Record<string, unknown>,
  rule: KeyRule,
  what: string,
): string | undefined {
  if (key.kty !== rule.kty) return `${what} needs kty ${rule.kty}`;
  if (rule.kty === "RSA") return rsaProblem(key);
  if (key.crv !== rule.crv) return `${what} needs crv ${rule.crv}`;
  const size = CURVE_BYTES[rule.crv as string] as number;
  const coordinates = rule.kty === "EC" ? ["x", "y"] : ["x"];
  for (const name of coordinates) {
    if (base64urlBytes(key[name]) !== size) return `${rule.crv} "${name}" must be ${size} bytes`;
  }
  return undefined;
}

function rsaProblem(key: Record<string, unknown>): string | undefined {
  if (key.e !== RSA_EXPONENT_65537) return "RSA public exponent must be 65537";
  const bits = modulusBits(key.n);
  if (bits === undefined) return 'RSA "n" is not base64url';
  if (bits < MIN_RSA_MODULUS_BITS || bits > MAX_RSA_MODULUS_BITS) {
    return `RSA modulus must be ${MIN_RSA_MODULUS_BITS} to ${MAX_RSA_MODULUS_BITS} bits`;
  }
  return undefined;
}

/** Decoded length of a base64url string, or -1 when it is not one. */
function base64urlBytes(value: unknown): number {
  if (typeof value !== "string" || !BASE64URL.test(value) || value.length % 4 === 1) return -1;
  return Math.floor((value.length * 3) / 4);
}

/** The bit length of a base64url big-endian integer (leading zero bytes ignored). */
function modulusBits(value: unknown): number | undefined {
  if (typeof value !== "string" || base64urlBytes(value) < 0) return undefined;
  const bytes = Buffer.from(value, "base64url");
  let first = 0;
  while (first < bytes.length && bytes[first] === 0) first++;
  if (first === bytes.length) return 0;
  return (bytes.length - first - 1) * 8 + (32 - Math.clz32(bytes[first] as number));
}
