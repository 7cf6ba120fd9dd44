// The hand-written embedded-JWK JWS verifier (src/oauth/embedded-jwk-jws.ts)
// against jose: it must accept what jose signs for every allowed algorithm,
// and refuse everything jose's jwtVerify(EmbeddedJWK) refused.

import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync, sign as nodeSign } from "node:crypto";
import { describe, test } from "node:test";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { createEmbeddedJwkJwsVerifier } from "../../src/oauth/embedded-jwk-jws.js";
import { ASYMMETRIC_JWS_ALGORITHMS } from "../../src/oauth/jose-algorithms.js";

const NOW_MS = 1_800_000_000_000;
const NOW = NOW_MS / 1000;
const TYP = "dpop+jwt";

const newVerifier = (cacheSize?: number) =>
  createEmbeddedJwkJwsVerifier({ typ: TYP, algorithms: ASYMMETRIC_JWS_ALGORITHMS, cacheSize });

async function keyFor(alg: string) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, jwk: await exportJWK(publicKey) };
}

async function sign(
  alg: string,
  claims: Record<string, unknown> = { jti: "j", iat: NOW },
  header: Record<string, unknown> = {},
  key?: Awaited<ReturnType<typeof keyFor>>,
): Promise<{ jws: string; jwk: JWK }> {
  const { privateKey, jwk } = key ?? (await keyFor(alg));
  const jws = await new SignJWT(claims)
    .setProtectedHeader({ alg, typ: TYP, jwk, ...header })
    .sign(privateKey);
  return { jws, jwk };
}

/** An ES256 JWS over any payload text, signed with node:crypto in either signature encoding. */
async function signRawEs256(payloadText: string, dsaEncoding: "ieee-p1363" | "der") {
  const key = await keyFor("ES256");
  const head = b64url(JSON.stringify({ alg: "ES256", typ: TYP, jwk: key.jwk }));
  const body = b64url(payloadText);
  const privateKey = createPrivateKey({ key: await exportJWK(key.privateKey), format: "jwk" });
  const signature = nodeSign("sha256", Buffer.from(`${head}.${body}`), {
    key: privateKey,
    dsaEncoding,
  });
  return `${head}.${body}.${signature.toString("base64url")}`;
}

const b64url = (text: string) => Buffer.from(text).toString("base64url");

describe("embedded-JWK JWS verifier", () => {
  for (const alg of ASYMMETRIC_JWS_ALGORITHMS) {
    test(`${alg}: accepts jose's signature, returns the payload and the RFC 7638 thumbprint`, async () => {
      const verifier = newVerifier();
      const { jws, jwk } = await sign(alg, { jti: "a", iat: NOW, htm: "POST" });
      const result = await verifier.verify(jws, NOW_MS);
      assert.ok(typeof result === "object", `refused: ${String(result)}`);
      assert.deepEqual(result.payload, { jti: "a", iat: NOW, htm: "POST" });
      assert.equal(result.jkt, await calculateJwkThumbprint(jwk, "sha256"));
      assert.equal(result.header.alg, alg);
    });

    test(`${alg}: a changed payload is refused, also once the header is cached`, async () => {
      const verifier = newVerifier();
      const { jws } = await sign(alg);
      assert.equal(typeof (await verifier.verify(jws, NOW_MS)), "object");
      const [header, , signature] = jws.split(".");
      const forged = Buffer.from(JSON.stringify({ jti: "b", iat: NOW })).toString("base64url");
      assert.equal(await verifier.verify(`${header}.${forged}.${signature}`, NOW_MS), "signature");
    });
  }

  test("the same key signs many proofs: each verifies, each forgery fails (LRU of 1)", async () => {
    const verifier = newVerifier(1);
    const es = await keyFor("ES256");
    const ed = await keyFor("EdDSA");
    for (let i = 0; i < 3; i++) {
      for (const [alg, key] of [
        ["ES256", es],
        ["EdDSA", ed],
      ] as const) {
        const { jws } = await sign(alg, { jti: `${alg}${i}`, iat: NOW }, {}, key);
        const result = await verifier.verify(jws, NOW_MS);
        assert.ok(typeof result === "object");
        assert.equal(result.payload.jti, `${alg}${i}`);
        assert.equal(await verifier.verify(`${jws.slice(0, -4)}AAAA`, NOW_MS), "signature");
      }
    }
  });

  test("EdDSA and Ed25519 (RFC 9864) name one algorithm: a jwk naming either verifies both", async () => {
    const verifier = newVerifier();
    const key = await keyFor("Ed25519");
    for (const [proofAlg, jwkAlg] of [
      ["Ed25519", "EdDSA"],
      ["EdDSA", "Ed25519"],
      ["Ed25519", "Ed25519"],
    ] as const) {
      const named = { ...key, jwk: { ...key.jwk, alg: jwkAlg } };
      const { jws } = await sign(proofAlg, { jti: `${proofAlg}-${jwkAlg}`, iat: NOW }, {}, named);
      assert.equal(typeof (await verifier.verify(jws, NOW_MS)), "object", `${proofAlg}/${jwkAlg}`);
    }
    // A jwk that names another algorithm is still refused.
    const wrong = { ...key, jwk: { ...key.jwk, alg: "ES256" } };
    const { jws } = await sign("Ed25519", { jti: "x", iat: NOW }, {}, wrong);
    assert.equal(await verifier.verify(jws, NOW_MS), "signature");
  });

  const refusals: { rule: string; expected: string; jws: () => Promise<string> }[] = [
    {
      rule: "typ other than dpop+jwt",
      expected: "typ",
      jws: async () => (await sign("ES256", undefined, { typ: "JWT" })).jws,
    },
    {
      rule: "alg outside the allow-list (ES512)",
      expected: "alg",
      jws: async () => (await sign("ES512")).jws,
    },
    {
      rule: "alg HS256",
      expected: "alg",
      jws: async () => {
        const { jwk } = await keyFor("ES256");
        return new SignJWT({ jti: "j" })
          .setProtectedHeader({ alg: "HS256", typ: TYP, jwk })
          .sign(new Uint8Array(32));
      },
    },
    {
      rule: "no jwk",
      expected: "jwk",
      jws: async () => {
        const { privateKey } = await keyFor("ES256");
        return new SignJWT({ jti: "j" })
          .setProtectedHeader({ alg: "ES256", typ: TYP })
          .sign(privateKey);
      },
    },
    {
      rule: "a private jwk",
      expected: "public",
      jws: async () => {
        const { privateKey } = await keyFor("ES256");
        const jwk = await exportJWK(privateKey);
        return new SignJWT({ jti: "j" })
          .setProtectedHeader({ alg: "ES256", typ: TYP, jwk })
          .sign(privateKey);
      },
    },
    {
      rule: "ES384 header over a P-256 key (the key policy)",
      expected: "key",
      jws: async () => {
        const es256 = await keyFor("ES256");
        const es384 = await keyFor("ES384");
        return new SignJWT({ jti: "j" })
          .setProtectedHeader({ alg: "ES384", typ: TYP, jwk: es256.jwk })
          .sign(es384.privateKey);
      },
    },
    {
      rule: "an RSA key under 2048 bits (RFC 7518 §3.3; the key policy)",
      expected: "key",
      jws: async () => {
        const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 1024 });
        const jwk = publicKey.export({ format: "jwk" });
        // jose refuses to sign with it; node:crypto does, as an attacker would.
        const head = Buffer.from(JSON.stringify({ alg: "RS256", typ: TYP, jwk })).toString(
          "base64url",
        );
        const body = Buffer.from(JSON.stringify({ jti: "j" })).toString("base64url");
        const signature = nodeSign("sha256", Buffer.from(`${head}.${body}`), privateKey);
        return `${head}.${body}.${signature.toString("base64url")}`;
      },
    },
    {
      rule: "a jwk meant for encryption (use: enc)",
      expected: "signature",
      jws: async () => {
        const key = await keyFor("ES256");
        return (await sign("ES256", undefined, { jwk: { ...key.jwk, use: "enc" } }, key)).jws;
      },
    },
    {
      rule: "a jwk bound to another alg",
      expected: "signature",
      jws: async () => {
        const key = await keyFor("ES256");
        return (await sign("ES256", undefined, { jwk: { ...key.jwk, alg: "ES384" } }, key)).jws;
      },
    },
    {
      rule: "a crit extension (RFC 7515 §4.1.11)",
      expected: "header",
      jws: async () => {
        const key = await keyFor("ES256");
        const head = Buffer.from(
          JSON.stringify({ alg: "ES256", typ: TYP, jwk: key.jwk, crit: ["x"], x: 1 }),
        ).toString("base64url");
        return `${head}.e30.AAAA`;
      },
    },
    {
      rule: "a header that is not a JSON object",
      expected: "header",
      jws: async () => `${Buffer.from("[1]").toString("base64url")}.e30.AAAA`,
    },
    {
      rule: "a payload that is not a JSON object",
      expected: "signature",
      jws: () => signRawEs256("[]", "ieee-p1363"),
    },
    {
      rule: "exp in the past",
      expected: "signature",
      jws: async () => (await sign("ES256", { jti: "j", exp: NOW - 1 })).jws,
    },
    {
      rule: "exp not a number",
      expected: "signature",
      jws: async () => (await sign("ES256", { jti: "j", exp: String(NOW + 60) })).jws,
    },
    {
      rule: "nbf in the future",
      expected: "signature",
      jws: async () => (await sign("ES256", { jti: "j", nbf: NOW + 1 })).jws,
    },
    {
      rule: "a truncated ES256 signature",
      expected: "signature",
      jws: async () => (await sign("ES256")).jws.slice(0, -8),
    },
    {
      rule: "a DER-encoded ES256 signature (JWS wants R‖S, RFC 7518 §3.4)",
      expected: "signature",
      jws: () => signRawEs256(JSON.stringify({ jti: "j" }), "der"),
    },
  ];

  for (const { rule, expected, jws } of refusals) {
    test(`refuses ${rule}`, async () => {
      assert.equal(await newVerifier().verify(await jws(), NOW_MS), expected);
    });
  }
});
