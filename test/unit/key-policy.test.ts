// SPEC §4: every public key the service verifies with fits its alg with a
// bounded cost (src/oauth/key-policy.ts): each rule, both sides of each bound;
// the clients file refuses such keys at load; a DPoP proof carrying one is
// refused before any import (row 11).

import assert from "node:assert/strict";
import { generateKeyPairSync, sign as nodeSign } from "node:crypto";
import { describe, test } from "node:test";
import { ConfigError, loadConfig } from "../../src/config.js";
import { parseClients } from "../../src/oauth/client-registry.js";
import { createEmbeddedJwkJwsVerifier } from "../../src/oauth/embedded-jwk-jws.js";
import { ASYMMETRIC_JWS_ALGORITHMS } from "../../src/oauth/jose-algorithms.js";
import { KEY_RULES, publicKeyProblem } from "../../src/oauth/key-policy.js";

/** A base64url big-endian integer of exactly `bits` bits (top bit set, odd). */
function integerOfBits(bits: number, leadingZeroBytes = 0): string {
  const bytes = Buffer.alloc(leadingZeroBytes + Math.ceil(bits / 8), 0xff);
  bytes.fill(0, 0, leadingZeroBytes);
  const topBits = bits % 8 === 0 ? 8 : bits % 8;
  bytes[leadingZeroBytes] = 0xff >> (8 - topBits);
  return bytes.toString("base64url");
}

const rsa = (bits: number, e = "AQAB") => ({ kty: "RSA", n: integerOfBits(bits), e });
const bytes = (n: number) => Buffer.alloc(n, 7).toString("base64url");
const ec = (crv: string, size: number) => ({ kty: "EC", crv, x: bytes(size), y: bytes(size) });
const okp = (crv: string, size = 32) => ({ kty: "OKP", crv, x: bytes(size) });

describe("key policy: RSA", () => {
  for (const alg of ["RS256", "PS256", undefined]) {
    test(`${alg ?? "no alg"}: the modulus from 2048 to 4096 bits, both sides of each bound`, () => {
      assert.equal(publicKeyProblem(rsa(2048), alg), undefined);
      assert.equal(publicKeyProblem(rsa(3072), alg), undefined);
      assert.equal(publicKeyProblem(rsa(4096), alg), undefined);
      const bounds = "RSA modulus must be 2048 to 4096 bits";
      assert.equal(publicKeyProblem(rsa(2047), alg), bounds);
      assert.equal(publicKeyProblem(rsa(1024), alg), bounds);
      assert.equal(publicKeyProblem(rsa(4097), alg), bounds);
      assert.equal(publicKeyProblem(rsa(16_384), alg), bounds);
    });
  }

  test("the modulus counts its significant bits (leading zero bytes do not make it longer)", () => {
    const padded = { kty: "RSA", n: integerOfBits(4096, 2), e: "AQAB" };
    assert.equal(publicKeyProblem(padded, "RS256"), undefined);
    const small = { kty: "RSA", n: integerOfBits(2047, 1), e: "AQAB" };
    assert.equal(publicKeyProblem(small, "RS256"), "RSA modulus must be 2048 to 4096 bits");
  });

  test("the public exponent is exactly 65537, in its minimal encoding", () => {
    const exponent = "RSA public exponent must be 65537";
    assert.equal(publicKeyProblem(rsa(2048, "AQAB"), "RS256"), undefined);
    assert.equal(publicKeyProblem(rsa(2048, "Aw"), "RS256"), exponent); // 3
    assert.equal(publicKeyProblem(rsa(2048, "AQAC"), "RS256"), exponent); // 65538
    assert.equal(publicKeyProblem(rsa(2048, "AQAA"), "RS256"), exponent); // 65536
    assert.equal(publicKeyProblem(rsa(2048, "AAEAAQ"), "RS256"), exponent); // 65537, padded
    // The proof seen in the wild: a 3,064-bit exponent (about 10 ms per verification).
    assert.equal(publicKeyProblem(rsa(2048, integerOfBits(3064)), "RS256"), exponent);
    assert.equal(publicKeyProblem({ kty: "RSA", n: integerOfBits(2048) }, "RS256"), exponent);
  });

  test("n must be base64url", () => {
    assert.equal(
      publicKeyProblem({ kty: "RSA", n: "not+base64/", e: "AQAB" }, "RS256"),
      'RSA "n" is not base64url',
    );
    assert.equal(
      publicKeyProblem({ kty: "RSA", n: 42, e: "AQAB" }, "RS256"),
      'RSA "n" is not base64url',
    );
  });

  test("an RSA key is not an EC or OKP key", () => {
    assert.equal(publicKeyProblem(rsa(2048), "ES256"), "ES256 needs kty EC");
    assert.equal(publicKeyProblem(ec("P-256", 32), "RS256"), "RS256 needs kty RSA");
  });
});

describe("key policy: EC", () => {
  test("ES256 on P-256 only, 32-byte coordinates", () => {
    assert.equal(publicKeyProblem(ec("P-256", 32), "ES256"), undefined);
    assert.equal(publicKeyProblem(ec("P-384", 48), "ES256"), "ES256 needs crv P-256");
    assert.equal(publicKeyProblem(ec("secp256k1", 32), "ES256"), "ES256 needs crv P-256");
    assert.equal(publicKeyProblem(ec("P-256", 31), "ES256"), 'P-256 "x" must be 32 bytes');
    assert.equal(publicKeyProblem(ec("P-256", 33), "ES256"), 'P-256 "x" must be 32 bytes');
    const badY = { ...ec("P-256", 32), y: bytes(48) };
    assert.equal(publicKeyProblem(badY, "ES256"), 'P-256 "y" must be 32 bytes');
  });

  test("ES384 on P-384 only, 48-byte coordinates", () => {
    assert.equal(publicKeyProblem(ec("P-384", 48), "ES384"), undefined);
    assert.equal(publicKeyProblem(ec("P-256", 32), "ES384"), "ES384 needs crv P-384");
    assert.equal(publicKeyProblem(ec("P-384", 47), "ES384"), 'P-384 "x" must be 48 bytes');
  });

  test("without an alg: P-256 and P-384 fit, P-521 and secp256k1 fit nothing", () => {
    assert.equal(publicKeyProblem(ec("P-256", 32)), undefined);
    assert.equal(publicKeyProblem(ec("P-384", 48)), undefined);
    assert.equal(publicKeyProblem(ec("P-521", 66)), "kty and crv fit no accepted algorithm");
    assert.equal(publicKeyProblem(ec("secp256k1", 32)), "kty and crv fit no accepted algorithm");
  });
});

describe("key policy: OKP", () => {
  for (const alg of ["EdDSA", "Ed25519"]) {
    test(`${alg}: Ed25519 only, a 32-byte key`, () => {
      assert.equal(publicKeyProblem(okp("Ed25519"), alg), undefined);
      assert.equal(publicKeyProblem(okp("Ed448", 57), alg), `${alg} needs crv Ed25519`);
      assert.equal(publicKeyProblem(okp("X25519"), alg), `${alg} needs crv Ed25519`);
      assert.equal(publicKeyProblem(okp("Ed25519", 31), alg), 'Ed25519 "x" must be 32 bytes');
      assert.equal(publicKeyProblem(okp("Ed25519", 33), alg), 'Ed25519 "x" must be 32 bytes');
    });
  }
});

describe("key policy: every key", () => {
  test("a public key only: private and symmetric members are refused", () => {
    for (const member of ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]) {
      assert.equal(publicKeyProblem({ ...rsa(2048), [member]: "AA" }, "RS256"), "not a public key");
    }
  });

  test("an algorithm outside the table, or a key naming one, is refused", () => {
    assert.equal(publicKeyProblem(rsa(2048), "HS256"), "alg HS256 is not accepted");
    assert.equal(publicKeyProblem({ ...rsa(2048), alg: "RS512" }), "alg RS512 is not accepted");
    assert.equal(publicKeyProblem({ ...rsa(2048), alg: "RS256" }), undefined);
    assert.equal(publicKeyProblem({ ...ec("P-256", 32), alg: "RS256" }), "RS256 needs kty RSA");
  });

  test("not an object", () => {
    for (const value of [null, "key", 1, []]) {
      assert.equal(publicKeyProblem(value, "ES256"), "not a JSON object");
    }
  });

  test("every accepted JWS algorithm has a key rule", () => {
    for (const alg of ASYMMETRIC_JWS_ALGORITHMS) assert.ok(KEY_RULES[alg], alg);
  });

  test("real keys of every accepted size pass", () => {
    for (const modulusLength of [2048, 4096]) {
      const { publicKey } = generateKeyPairSync("rsa", { modulusLength });
      assert.equal(publicKeyProblem(publicKey.export({ format: "jwk" }), "PS256"), undefined);
    }
    for (const [alg, namedCurve] of [
      ["ES256", "P-256"],
      ["ES384", "P-384"],
    ] as const) {
      const { publicKey } = generateKeyPairSync("ec", { namedCurve });
      assert.equal(publicKeyProblem(publicKey.export({ format: "jwk" }), alg), undefined);
    }
    const { publicKey } = generateKeyPairSync("ed25519");
    assert.equal(publicKeyProblem(publicKey.export({ format: "jwk" }), "EdDSA"), undefined);
  });
});

describe("clients' jwks are refused at load", () => {
  const client = (keys: unknown[]) => ({
    clients: [
      {
        client_id: "jwt-client",
        token_endpoint_auth_method: "private_key_jwt",
        grant_types: [],
        jwks: { keys },
      },
    ],
  });

  test("each refused key is one problem naming the client, the key and the rule", () => {
    const { problems } = parseClients(
      client([rsa(2048), rsa(2048, "Aw"), ec("P-256", 32), rsa(8192), okp("Ed448", 57)]),
      "CLIENTS_FILE",
    );
    const rules =
      "keys must be RSA of 2048 to 4096 bits with exponent 65537, EC on P-256 or P-384, or Ed25519";
    assert.deepEqual(problems, [
      `CLIENTS_FILE: clients[0]: "jwks" keys[1] is refused (RSA public exponent must be 65537): ${rules}`,
      `CLIENTS_FILE: clients[0]: "jwks" keys[3] is refused (RSA modulus must be 2048 to 4096 bits): ${rules}`,
      `CLIENTS_FILE: clients[0]: "jwks" keys[4] is refused (kty and crv fit no accepted algorithm): ${rules}`,
    ]);
  });

  test("start-up refuses such a clients file with one clear message", () => {
    const file = JSON.stringify(client([rsa(2048, integerOfBits(3064))]));
    assert.throws(
      () => loadConfig({ CLIENTS_FILE: "/clients.json" }, { readFile: () => file }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(
          error.message,
          /CLIENTS_FILE: clients\[0\]: "jwks" keys\[0\] is refused \(RSA public exponent must be 65537\)/,
        );
        return true;
      },
    );
  });
});

describe("DPoP proofs: a key outside the policy is refused before any signature work", () => {
  const verifier = createEmbeddedJwkJwsVerifier({
    typ: "dpop+jwt",
    algorithms: ASYMMETRIC_JWS_ALGORITHMS,
  });
  /** A proof signed with node:crypto (jose refuses to sign with such keys; an attacker does not). */
  const proofWith = (jwk: Record<string, unknown>, alg = "RS256") => {
    const head = Buffer.from(JSON.stringify({ alg, typ: "dpop+jwt", jwk })).toString("base64url");
    const body = Buffer.from(JSON.stringify({ jti: "j", iat: 1 })).toString("base64url");
    return `${head}.${body}.${Buffer.alloc(256, 1).toString("base64url")}`;
  };

  test("huge exponent, huge modulus, small modulus, wrong curve: 'key'", async () => {
    for (const jwk of [
      rsa(2048, integerOfBits(3064)),
      rsa(4096, integerOfBits(4000)),
      rsa(16_384),
      rsa(1024),
    ]) {
      assert.equal(await verifier.verify(proofWith(jwk), 1000), "key");
    }
    assert.equal(await verifier.verify(proofWith(ec("P-384", 48), "ES256"), 1000), "key");
  });

  test("a well-formed key within the policy gets as far as the signature", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = publicKey.export({ format: "jwk" }) as Record<string, unknown>;
    assert.equal(await verifier.verify(proofWith(jwk), 1000), "signature");
    const head = Buffer.from(JSON.stringify({ alg: "RS256", typ: "dpop+jwt", jwk })).toString(
      "base64url",
    );
    const body = Buffer.from(JSON.stringify({ jti: "j", iat: 1 })).toString("base64url");
    const signature = nodeSign("sha256", Buffer.from(`${head}.${body}`), privateKey);
    const result = await verifier.verify(
      `${head}.${body}.${signature.toString("base64url")}`,
      1000,
    );
    assert.equal(typeof result, "object");
  });
});
