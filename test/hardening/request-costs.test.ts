// What an unauthenticated request can make the service do (SPEC §4 bounded
// cost; SECURITY.md "Bounded work per request"): deep JSON, many form
// parameters, many headers, decompression bombs on Connect / gRPC /
// gRPC-Web, JWT-shaped bearers with a real kid on /mfa/*, forged client
// assertions under a registered 4,096-bit RSA key. Each kind is sent 200
// times (4 at a time) to the service as a child process; the service's CPU
// per request (utime + stime of /proc/<pid>/stat) is reported beside a
// plain refused request and an ES256 DPoP proof. Asserted: every answer.

import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import { test } from "node:test";
import { brotliCompressSync, gzipSync } from "node:zlib";
import {
  JWT_BEARER_ASSERTION_TYPE,
  JWT_CLIENT_ID,
  writeClientsFileWithJwtClient,
} from "../support/dpop.js";
import { fixtureEnv } from "../support/process-flows.js";
import { startServiceProcess } from "../support/service-process.js";
import { CLIENTS } from "../support/test-service.js";

const ISSUER_URL = "http://issuer.test/";
const REQUESTS = 200;
const CONCURRENCY = 4;
const MFA_OTP = "http://auth0.com/oauth/grant-type/mfa-otp";
const b64url = (value: string | Buffer) => Buffer.from(value).toString("base64url");

/** A gRPC / gRPC-Web envelope: the compressed flag, the length, the message. */
function frame(flag: number, message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** 16 MiB of zeros, compressed: a decompression bomb a few KiB long. */
const ZEROS = Buffer.alloc(16 * 1024 * 1024);
const GZIP_BOMB = gzipSync(ZEROS, { level: 9 });
const BROTLI_BOMB = brotliCompressSync(ZEROS);

/** `{"a":{"a":…1…}}` nested as deep as fits in 64 KiB. */
const DEEP_OBJECTS = `${'{"a":'.repeat(10_900)}1${"}".repeat(10_900)}`;
const DEEP_ARRAYS = `{"grant_type":"x","a":${"[".repeat(32_000)}${"]".repeat(32_000)}}`;
const MANY_MEMBERS = JSON.stringify(
  Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`p${i}`, ""])),
);
const MANY_PARAMETERS = Array.from({ length: 9_000 }, (_, i) => `a${i}=`).join("&");
const REPEATED_PARAMETER = "a=&".repeat(21_000);

type Send = () => Promise<string>;

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function outcome(response: Response): Promise<string> {
  const text = await response.text();
  let error = "";
  try {
    const body = JSON.parse(text) as { error?: string; code?: string };
    error = body.error ?? body.code ?? "";
  } catch {
    // Not JSON.
  }
  // gRPC-Web sends its status in a trailer frame at the end of the body.
  const grpc =
    response.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(text)?.[1] ?? null;
  return `${response.status}${error ? ` ${error}` : ""}${grpc !== null ? ` grpc-status ${grpc}` : ""}`;
}

test("unauthenticated requests that could buy expensive work: each refused, CPU per request reported", async (t) => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 4096 });
  const rsaJwk = { ...rsa.publicKey.export({ format: "jwk" }), kid: "rsa-4096", alg: "RS256" };
  const clients = await writeClientsFileWithJwtClient([rsaJwk as never]);
  const service = await startServiceProcess(
    fixtureEnv({ ISSUER_URL, ACCESS_LOG: "false", CLIENTS_FILE: clients.path }),
  );
  const session = http2.connect(service.baseUrl);
  try {
    const jwks = (await (await fetch(`${service.baseUrl}/.well-known/jwks.json`)).json()) as {
      keys: { kid: string; alg: string }[];
    };
    const signing = jwks.keys[0] as { kid: string; alg: string };
    const forgedAccessToken = () =>
      `${b64url(JSON.stringify({ alg: signing.alg, kid: signing.kid, typ: "at+jwt" }))}.${b64url(
        JSON.stringify({
          iss: ISSUER_URL,
          sub: "u",
          aud: `${ISSUER_URL}mfa/`,
          client_id: CLIENTS.public.id,
          scope: "read:authenticators",
          iat: Math.floor(Date.now() / 1000),
          exp: Math.floor(Date.now() / 1000) + 60,
        }),
      )}.${b64url(randomBytes(signing.alg === "ES256" ? 64 : 256))}`;
    const forgedAssertion = () =>
      `${b64url(JSON.stringify({ alg: "RS256", kid: "rsa-4096" }))}.${b64url(
        JSON.stringify({
          iss: JWT_CLIENT_ID,
          sub: JWT_CLIENT_ID,
          aud: ISSUER_URL,
          jti: b64url(randomBytes(12)),
          exp: Math.floor(Date.now() / 1000) + 60,
        }),
      )}.${b64url(Buffer.concat([Buffer.alloc(1), randomBytes(511)]))}`;
    const es256 = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const es256Jwk = es256.publicKey.export({ format: "jwk" });
    const es256Proof = () => {
      const head = b64url(JSON.stringify({ alg: "ES256", typ: "dpop+jwt", jwk: es256Jwk }));
      const body = b64url(
        JSON.stringify({
          htm: "POST",
          htu: `${ISSUER_URL}oauth/token`,
          iat: Math.floor(Date.now() / 1000),
          jti: b64url(randomBytes(12)),
        }),
      );
      const signature = sign("sha256", Buffer.from(`${head}.${body}`), {
        key: es256.privateKey,
        dsaEncoding: "ieee-p1363",
      });
      return `${head}.${body}.${b64url(signature)}`;
    };

    const post = (path: string, contentType: string, body: string | Buffer, headers = {}) =>
      fetch(`${service.baseUrl}${path}`, {
        method: "POST",
        headers: { "content-type": contentType, ...headers },
        body: typeof body === "string" ? body : new Uint8Array(body),
      }).then(outcome);
    const grpc = (path: string, body: Buffer, headers: Record<string, string>) =>
      new Promise<string>((resolve) => {
        const stream = session.request({
          ":method": "POST",
          ":path": path,
          "content-type": "application/grpc",
          te: "trailers",
          ...headers,
        });
        let status = "";
        stream.on("response", (h) => {
          if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
        });
        stream.on("trailers", (h) => {
          status = String(h["grpc-status"]);
        });
        stream.on("error", () => {});
        stream.on("close", () => resolve(`grpc-status ${status}`));
        stream.resume();
        stream.end(body);
      });
    const verify = "/token.v1.TokenService/VerifyMfaOtp";
    const form = "application/x-www-form-urlencoded";

    const kinds: Array<{ kind: string; expected: string; send: Send }> = [
      {
        kind: "unknown grant_type (baseline)",
        expected: "400 unsupported_grant_type",
        send: () => post("/oauth/token", form, "grant_type=x"),
      },
      {
        kind: "ES256 DPoP proof, then a malformed mfa_token",
        expected: "400 invalid_grant",
        send: () =>
          post(
            "/oauth/token",
            form,
            `grant_type=${encodeURIComponent(MFA_OTP)}&client_id=${CLIENTS.public.id}&mfa_token=x&otp=123456`,
            { dpop: es256Proof() },
          ),
      },
      {
        kind: "REST JSON nested 10,900 objects deep (64 KiB)",
        expected: "400 invalid_request",
        send: () => post("/oauth/token", "application/json", DEEP_OBJECTS),
      },
      {
        kind: "REST JSON nested 32,000 arrays deep",
        expected: "400 invalid_request",
        send: () => post("/oauth/token", "application/json", DEEP_ARRAYS),
      },
      {
        kind: "REST JSON with 5,000 members",
        expected: "400 invalid_request",
        send: () => post("/oauth/token", "application/json", MANY_MEMBERS),
      },
      {
        kind: "REST form with 9,000 parameters",
        expected: "400 invalid_request",
        send: () => post("/oauth/token", form, MANY_PARAMETERS),
      },
      {
        kind: "REST form repeating one parameter 21,000 times",
        expected: "400 invalid_request",
        send: () => post("/oauth/token", form, REPEATED_PARAMETER),
      },
      {
        kind: "Connect JSON nested 32,000 arrays deep",
        expected: "400 invalid_argument",
        send: () => post(verify, "application/json", DEEP_ARRAYS),
      },
      {
        kind: "1,000 request headers (HTTP/1.1)",
        expected: "400 unsupported_grant_type",
        send: () =>
          post(
            "/oauth/token",
            form,
            "grant_type=x",
            Object.fromEntries(Array.from({ length: 1_000 }, (_, i) => [`x-h${i}`, "v"])),
          ),
      },
      {
        kind: `gRPC gzip bomb (${GZIP_BOMB.length} bytes → 16 MiB)`,
        expected: "grpc-status 8",
        send: () => grpc(verify, frame(1, GZIP_BOMB), { "grpc-encoding": "gzip" }),
      },
      {
        // Refused unread: brotli is not accepted (src/app.ts).
        kind: `gRPC brotli bomb (${BROTLI_BOMB.length} bytes → 16 MiB)`,
        expected: "grpc-status 12",
        send: () => grpc(verify, frame(1, BROTLI_BOMB), { "grpc-encoding": "br" }),
      },
      {
        kind: "Connect gzip bomb (Content-Encoding)",
        expected: "400 resource_exhausted",
        send: () =>
          post(verify, "application/proto", GZIP_BOMB, { "content-encoding": "gzip" }).then((o) =>
            o.replace(/^429|^413/, "400"),
          ),
      },
      {
        kind: "gRPC-Web gzip bomb",
        expected: "200 grpc-status 8",
        send: () =>
          post(verify, "application/grpc-web+proto", frame(1, GZIP_BOMB), {
            "grpc-encoding": "gzip",
          }),
      },
      {
        kind: `GET /mfa/authenticators, a JWT bearer with the real kid (${signing.alg})`,
        expected: "401 invalid_token",
        send: () =>
          fetch(`${service.baseUrl}/mfa/authenticators`, {
            headers: { authorization: `Bearer ${forgedAccessToken()}` },
          }).then(outcome),
      },
      {
        kind: "private_key_jwt assertion under a registered RSA-4096 kid",
        expected: "401 access_denied",
        send: () =>
          post(
            "/oauth/token",
            form,
            new URLSearchParams({
              grant_type: MFA_OTP,
              client_id: JWT_CLIENT_ID,
              client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
              client_assertion: forgedAssertion(),
              mfa_token: "x",
              otp: "123456",
            }).toString(),
          ),
      },
    ];

    const rows: string[] = [];
    const mismatches: string[] = [];
    for (const { kind, expected, send } of kinds) {
      await send(); // warm up
      const answers: Record<string, number> = {};
      const before = cpuMs(service.pid);
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next++ < REQUESTS) {
            const answer = await send();
            answers[answer] = (answers[answer] ?? 0) + 1;
          }
        }),
      );
      const cpu = cpuMs(service.pid) - before;
      rows.push(`${kind}: ${((cpu * 1000) / REQUESTS).toFixed(0)} µs`);
      if (answers[expected] !== REQUESTS) mismatches.push(`${kind}: ${JSON.stringify(answers)}`);
    }
    t.diagnostic(`service CPU per request: ${rows.join("; ")}`);
    assert.deepEqual(mismatches, []);
  } finally {
    session.destroy();
    await service.stop();
    await clients.remove();
  }
});
