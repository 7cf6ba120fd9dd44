import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";

/**
 * Algorithms a signing key may use (docs/api.md: ES256 default; EdDSA,
 * Ed25519, RS256, PS256 allowed). `Ed25519` is RFC 9864's fully-specified
 * name for EdDSA on Ed25519: tokens carry the key's own `alg`, which its
 * published JWK names too (relying parties match the two).
 */
export const SIGNING_ALGORITHMS = ["ES256", "EdDSA", "Ed25519", "RS256", "PS256"] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  /** Imported once at start-up: the verify path never parses a key. */
  privateKey: KeyObject;
  /** The public half as a JWK, published in the JWKS (RFC 7517 §4). */
  publicJwk: Record<string, unknown>;
}

const EXPECTED_KEY: Record<SigningAlgorithm, { kty: string; crv?: string }> = {
  ES256: { kty: "EC", crv: "P-256" },
  EdDSA: { kty: "OKP", crv: "Ed25519" },
  Ed25519: { kty: "OKP", crv: "Ed25519" },
  RS256: { kty: "RSA" },
  PS256: { kty: "RSA" },
};

/**
 * Imports one private JWK from SIGNING_KEYS_FILE. Returns a problem string
 * instead of throwing so the config loader can report every problem at once.
 */
export function importSigningKey(jwk: unknown, where: string): SigningKey | string {
  if (typeof jwk !== "object" || jwk === null) return `${where}: not a JSON object`;
  const { kid, alg, kty, crv, d } = jwk as Record<string, unknown>;
  if (typeof kid !== "string" || kid === "") return `${where}: "kid" is required`;
  if (typeof alg !== "string" || !(SIGNING_ALGORITHMS as readonly string[]).includes(alg)) {
    return `${where}: "alg" must be one of ${SIGNING_ALGORITHMS.join(", ")}`;
  }
  const expected = EXPECTED_KEY[alg as SigningAlgorithm];
  if (kty !== expected.kty || (expected.crv !== undefined && crv !== expected.crv)) {
    return `${where}: alg ${alg} needs kty ${expected.kty}${expected.crv ? ` and crv ${expected.crv}` : ""}`;
  }
  if (typeof d !== "string") return `${where}: not a private key (no "d")`;
  try {
    const privateKey = createPrivateKey({ key: jwk as JsonWebKey, format: "jwk" });
    // node:crypto accepts an EC JWK whose `d` does not belong to its x/y; its
    // published public key would then verify no token. Prove the pair once.
    const filePublicKey = createPublicKey({ key: publicMembers(jwk as JsonWebKey), format: "jwk" });
    if (!keyPairMatches(privateKey, filePublicKey)) {
      return `${where}: the private key does not belong to its public part`;
    }
    return toSigningKey(kid, alg as SigningAlgorithm, privateKey);
  } catch {
    return `${where}: not a valid ${alg} private key`;
  }
}

/**
 * The embedded default: a fresh ES256 key (first: it signs access tokens) and
 * a fresh RS256 key (OpenID Connect's default ID-token algorithm), lost on
 * restart (refused in production).
 */
export function generateEphemeralSigningKeys(): SigningKey[] {
  const stamp = Date.now().toString(36);
  return [
    toSigningKey(`ephemeral-es256-${stamp}`, "ES256", generateSigningPrivateKey("ES256")),
    toSigningKey(`ephemeral-rs256-${stamp}`, "RS256", generateSigningPrivateKey("RS256")),
  ];
}

/** RSA keys the service generates: 2048 bits, the size RFC 7518 §3.3 requires at least. */
const RSA_MODULUS_BITS = 2048;

/** A fresh private key for `alg` (the embedded default, `keys generate`). */
export function generateSigningPrivateKey(alg: SigningAlgorithm): KeyObject {
  switch (alg) {
    case "ES256":
      return generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    case "EdDSA":
    case "Ed25519":
      return generateKeyPairSync("ed25519").privateKey;
    case "RS256":
    case "PS256":
      return generateKeyPairSync("rsa", { modulusLength: RSA_MODULUS_BITS }).privateKey;
  }
}

function toSigningKey(kid: string, alg: SigningAlgorithm, privateKey: KeyObject): SigningKey {
  const publicJwk = createPublicKey(privateKey).export({ format: "jwk" }) as Record<
    string,
    unknown
  >;
  return { kid, alg, privateKey, publicJwk: { ...publicJwk, kid, alg, use: "sig" } };
}

/** The JWK without its private members (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2). */
function publicMembers(jwk: JsonWebKey): JsonWebKey {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...rest } = jwk;
  return rest;
}

function keyPairMatches(privateKey: KeyObject, publicKey: KeyObject): boolean {
  const probe = Buffer.from("token-service signing key check");
  const digest = privateKey.asymmetricKeyType === "ed25519" ? null : "sha256";
  return verify(digest, probe, publicKey, sign(digest, probe, privateKey));
}
