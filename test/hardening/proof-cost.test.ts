// SPEC §4: every public key the service verifies with has a bounded cost. A
// public client sends DPoP proofs carrying RSA keys with a huge public
// exponent (3,064 bits on a 3,072-bit modulus) or a huge modulus (16,384
// bits): each is refused (row 11) before any signature work. The service's
// CPU per request (utime + stime from /proc/<pid>/stat) is reported beside
// an ES256 proof's — a valid one, with a new key each time (nothing cached)
// or the same key (cached) — and a request without a proof. Asserted: the
// answers; the costs are diagnostics only (SECURITY.md has the figures).

import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fixtureEnv } from "../support/process-flows.js";
import { startServiceProcess } from "../support/service-process.js";
import { CLIENTS } from "../support/test-service.js";

const ISSUER_URL = "http://issuer.test/";
const REQUESTS = 400;
const CONCURRENCY = 4;
const b64url = (value: string | Buffer) => Buffer.from(value).toString("base64url");

/** A base64url big-endian integer of `bits` bits, odd, top bit set, random in between. */
function randomInteger(bits: number): string {
  const bytes = Buffer.alloc(Math.ceil(bits / 8));
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  const top = bits % 8 === 0 ? 8 : bits % 8;
  bytes[0] = ((bytes[0] as number) & (0xff >> (8 - top))) | (1 << (top - 1));
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) | 1;
  return bytes.toString("base64url");
}

const claims = () => ({
  htm: "POST",
  htu: `${ISSUER_URL}oauth/token`,
  iat: Math.floor(Date.now() / 1000),
  jti: b64url(String(Math.random())),
});

/** An RSA proof whose signature is random bytes: what it costs is the key, not the signature. */
function rsaProof(n: string, e: string): string {
  const head = b64url(JSON.stringify({ alg: "RS256", typ: "dpop+jwt", jwk: { kty: "RSA", n, e } }));
  const modulusBytes = Buffer.from(n, "base64url").length;
  // As long as the modulus (OpenSSL refuses another length at once), and below it.
  const signature = Buffer.concat([
    Buffer.alloc(1),
    Buffer.from(randomInteger(modulusBytes * 8 - 8), "base64url"),
  ]);
  return `${head}.${b64url(JSON.stringify(claims()))}.${signature.toString("base64url")}`;
}

function es256Proof(privateKey: KeyObject): string {
  const pub = createPublicKey(privateKey).export({ format: "jwk" });
  const head = b64url(JSON.stringify({ alg: "ES256", typ: "dpop+jwt", jwk: pub }));
  const body = b64url(JSON.stringify(claims()));
  const signature = sign("sha256", Buffer.from(`${head}.${body}`), {
    key: privateKey,
    dsaEncoding: "ieee-p1363",
  });
  return `${head}.${body}.${signature.toString("base64url")}`;
}

const kinds: Array<{ kind: string; expected: [number, string]; proof: () => string | undefined }> =
  [
    { kind: "no DPoP proof", expected: [400, "invalid_grant"], proof: () => undefined },
    {
      kind: "ES256 proof, same key (cached)",
      expected: [400, "invalid_grant"],
      proof: (() => {
        const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
        return () => es256Proof(privateKey);
      })(),
    },
    {
      kind: "ES256 proof, a new key each time",
      expected: [400, "invalid_grant"],
      proof: () => es256Proof(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey),
    },
    {
      kind: "RSA 3,072-bit modulus, 3,064-bit exponent",
      expected: [400, "invalid_dpop_proof"],
      proof: () => rsaProof(randomInteger(3072), randomInteger(3064)),
    },
    {
      kind: "RSA 16,384-bit modulus, exponent 65537",
      expected: [400, "invalid_dpop_proof"],
      proof: () => rsaProof(randomInteger(16_384), "AQAB"),
    },
  ];

/** The process's CPU time so far (user + system), ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

test("DPoP proofs with huge RSA keys are refused (row 11); CPU per request beside ES256", async (t) => {
  const service = await startServiceProcess(fixtureEnv({ ISSUER_URL, ACCESS_LOG: "false" }));
  try {
    const rows: string[] = [];
    for (const { kind, expected, proof } of kinds) {
      // Built before the clock starts: the client's signing is not the service's cost.
      const proofs = Array.from({ length: REQUESTS }, proof);
      const answers: Record<string, number> = {};
      const descriptions = new Set<string>();
      const before = cpuMs(service.pid);
      const started = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < proofs.length) {
            const dpop = proofs[next++];
            const response = await fetch(`${service.baseUrl}/oauth/token`, {
              method: "POST",
              headers: {
                "content-type": "application/x-www-form-urlencoded",
                ...(dpop === undefined ? {} : { dpop }),
              },
              body: new URLSearchParams({
                grant_type: "http://auth0.com/oauth/grant-type/mfa-otp",
                client_id: CLIENTS.public.id,
                mfa_token: "not-an-mfa-token",
                otp: "123456",
              }),
            });
            const body = (await response.json()) as { error: string; error_description: string };
            const key = `${response.status} ${body.error}`;
            answers[key] = (answers[key] ?? 0) + 1;
            descriptions.add(body.error_description);
          }
        }),
      );
      const cpu = cpuMs(service.pid) - before;
      const wall = performance.now() - started;
      rows.push(
        `${kind}: ${((cpu * 1000) / REQUESTS).toFixed(0)} µs CPU per request ` +
          `(${REQUESTS} in ${wall.toFixed(0)} ms; ${[...descriptions].join(" / ")})`,
      );
      assert.deepEqual(answers, { [`${expected[0]} ${expected[1]}`]: REQUESTS }, kind);
    }
    t.diagnostic(rows.join("; "));
  } finally {
    await service.stop();
  }
});
