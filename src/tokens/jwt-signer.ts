import { constants, sign } from "node:crypto";
import type { SigningKey } from "./signing-keys.js";

/**
 * Compact JWS (RFC 7515 §7.1) signed with node:crypto on a KeyObject imported
 * once at start-up. Written by hand because jose's SignJWT goes through
 * WebCrypto: ~40 CPU-µs per ES256 signature against ~21 µs here (issue 4),
 * on the hot path of every successful verify. Tokens are checked with jose
 * against the JWKS in the tests, so the output is standard.
 */
export function signJwt(key: SigningKey, typ: string, payload: Record<string, unknown>): string {
  const header = Buffer.from(JSON.stringify({ alg: key.alg, typ, kid: key.kid })).toString(
    "base64url",
  );
  const body = Buffer.from(JSON.stringify(payload)).toString("base64url");
  const signingInput = `${header}.${body}`;
  return `${signingInput}.${signatureOf(key, Buffer.from(signingInput, "latin1")).toString("base64url")}`;
}

function signatureOf(key: SigningKey, data: Buffer): Buffer {
  switch (key.alg) {
    // JWS ECDSA signatures are R || S, not DER (RFC 7518 §3.4).
    case "ES256":
      return sign("sha256", data, { key: key.privateKey, dsaEncoding: "ieee-p1363" });
    case "EdDSA":
    case "Ed25519":
      return sign(null, data, key.privateKey);
    case "RS256":
      return sign("sha256", data, key.privateKey);
    // RFC 7518 §3.5: salt length equals the hash length.
    case "PS256":
      return sign("sha256", data, {
        key: key.privateKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: 32,
      });
  }
}
