// The hand-written JWS signer (src/tokens/jwt-signer.ts) checked with jose, for every
// algorithm SIGNING_KEYS_FILE allows (docs/api.md: ES256 default; EdDSA, Ed25519, RS256, PS256).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compactVerify, decodeProtectedHeader, importJWK, jwtVerify } from "jose";
import { buildJwks } from "../../src/service/discovery.js";
import { signJwt } from "../../src/tokens/jwt-signer.js";
import {
  generateEphemeralSigningKeys,
  generateSigningPrivateKey,
  importSigningKey,
  type SigningAlgorithm,
  type SigningKey,
} from "../../src/tokens/signing-keys.js";

function signingKey(alg: SigningAlgorithm): SigningKey {
  const jwk = {
    ...generateSigningPrivateKey(alg).export({ format: "jwk" }),
    kid: `kid-${alg}`,
    alg,
  };
  const key = importSigningKey(jwk, "test");
  if (typeof key === "string") throw new Error(key);
  return key;
}

const PAYLOAD = {
  iss: "https://issuer.test/",
  sub: "user-1",
  aud: "api",
  iat: 1,
  exp: 4_000_000_000,
};

describe("signJwt", () => {
  for (const alg of ["ES256", "EdDSA", "Ed25519", "RS256", "PS256"] as const) {
    test(`${alg}: verifies with jose against the published JWK`, async () => {
      const key = signingKey(alg);
      const token = signJwt(key, "at+jwt", PAYLOAD);
      assert.deepEqual(decodeProtectedHeader(token), { alg, typ: "at+jwt", kid: `kid-${alg}` });
      const [publicJwk] = buildJwks([key]).keys;
      assert.equal(publicJwk?.d, undefined);
      assert.deepEqual([publicJwk?.kid, publicJwk?.alg, publicJwk?.use], [key.kid, alg, "sig"]);
      const { payload, protectedHeader } = await jwtVerify(
        token,
        await importJWK(publicJwk ?? {}, alg),
        { typ: "at+jwt", algorithms: [alg] },
      );
      assert.deepEqual(payload, PAYLOAD);
      assert.equal(protectedHeader.kid, key.kid);
    });
  }

  test("ES256 signatures are R || S, 64 bytes (RFC 7518 §3.4)", () => {
    const token = signJwt(signingKey("ES256"), "JWT", PAYLOAD);
    assert.equal(Buffer.from(token.split(".")[2] ?? "", "base64url").length, 64);
  });

  test("a changed payload does not verify", async () => {
    const [key] = generateEphemeralSigningKeys() as [SigningKey];
    const [header, , signature] = signJwt(key, "JWT", PAYLOAD).split(".");
    const forged = Buffer.from(JSON.stringify({ ...PAYLOAD, sub: "admin" })).toString("base64url");
    await assert.rejects(
      compactVerify(`${header}.${forged}.${signature}`, await importJWK(key.publicJwk, "ES256")),
      { code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" },
    );
  });

  test("the ephemeral keys: ES256 first (access tokens), then RS256 (ID tokens), each with a kid", () => {
    const [es256, rs256, ...rest] = generateEphemeralSigningKeys();
    assert.equal(rest.length, 0);
    assert.equal(es256?.alg, "ES256");
    assert.match(es256?.kid ?? "", /^ephemeral-es256-/);
    assert.deepEqual([es256?.publicJwk.kty, es256?.publicJwk.crv], ["EC", "P-256"]);
    assert.equal(rs256?.alg, "RS256");
    assert.match(rs256?.kid ?? "", /^ephemeral-rs256-/);
    assert.equal(rs256?.publicJwk.kty, "RSA");
  });
});
