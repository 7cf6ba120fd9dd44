/**
 * DPoP at the token endpoint (RFC 9449; docs/api.md, error row 11): proof
 * validation point by point on REST and RPC, sender-constrained tokens
 * (`token_type: DPoP`, `cnf.jkt`), single-use `jti` (also under concurrency,
 * on memory, on a real redis-server and on PostgreSQL), server nonces (§8) shared by two
 * instances, and the rule that a bad proof consumes nothing.
 */
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { connect as http2Connect } from "node:http2";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { exportJWK, generateKeyPair } from "jose";
import {
  ALLOWED_ALGS,
  dpopProofFor,
  generateTestKey,
  jwkThumbprint,
  jwtPayloadOf,
  nowSeconds,
  proofClaims,
  type ReadyUser,
  rawJws,
  readyUsers,
  rpcHtu,
  signJws,
  type TestKey,
  tokenEndpointUrl,
} from "../support/dpop.js";
import {
  clientsFor,
  codeAt,
  otpGrantParams,
  otpRpcRequest,
  postTokenForm,
  wrongCode,
} from "../support/flows.js";
import { type RestResult, rpcFailure } from "../support/oauth-assertions.js";
import { type PostgresServerHandle, startPostgresServer } from "../support/postgres-server.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import {
  startTestService,
  TEST_SECRETS_KEY,
  type TestService,
  type TestServiceOptions,
} from "../support/test-service.js";

const ISSUER_URL = "http://issuer.test/";
const TOKEN_ENDPOINT = "http://issuer.test/oauth/token";
const NONCE_DESCRIPTION = "Authorization server requires nonce in DPoP proof";

function start(options: TestServiceOptions = {}): Promise<TestService> {
  return startTestService({ ...options, env: { ISSUER_URL, ...options.env } });
}

/** The mfa-otp grant of `user` with its current right code. */
function grantOf(service: TestService, user: ReadyUser, otp = codeAt(service, user.secret)) {
  return otpGrantParams(user.mfaToken, otp);
}

/**
 * POST /oauth/token over node:http, so a header may be sent as several
 * header lines (an array value), which fetch cannot do.
 */
function postTokenRaw(
  service: TestService,
  params: Record<string, string>,
  headers: Record<string, string | string[]>,
): Promise<RestResult> {
  const body = new URLSearchParams(params).toString();
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${service.baseUrl}/oauth/token`,
      { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (typeof value === "string") responseHeaders.set(name, value);
          }
          resolve({
            status: res.statusCode ?? 0,
            headers: responseHeaders,
            body: JSON.parse(Buffer.concat(chunks).toString("utf8")),
          });
        });
      },
    );
    req.on("error", reject);
    for (const [name, value] of Object.entries(headers)) req.setHeader(name, value);
    req.end(body);
  });
}

/** A row-11 answer: 400, exactly `{error, error_description}`, a short reason matching `reason`. */
function assertInvalidProof(result: RestResult, reason: RegExp): void {
  assert.equal(result.status, 400, JSON.stringify(result.body));
  assert.deepEqual(Object.keys(result.body).sort(), ["error", "error_description"]);
  assert.equal(result.body.error, "invalid_dpop_proof");
  const description = String(result.body.error_description);
  assert.match(description, reason);
  assert.ok(description.length <= 80, `short reason: ${description}`);
  // Non-leaking: no URL, no key material, nothing from the proof echoed back.
  assert.doesNotMatch(description, /issuer\.test|https?:|[A-Za-z0-9_-]{24,}/);
  assert.equal(result.headers.get("cache-control"), "no-store");
}

/** A bound token: status 200, token_type DPoP and cnf.jkt = the hand-computed thumbprint. */
function assertBoundTo(result: RestResult, key: TestKey): void {
  assert.equal(result.status, 200, JSON.stringify(result.body));
  assert.equal(result.body.token_type, "DPoP");
  const claims = jwtPayloadOf(String(result.body.access_token));
  assert.deepEqual(claims.cnf, { jkt: jwkThumbprint(key.publicJwk) });
}

test("the hand-made RFC 7638 thumbprint matches the RFC's own example (§3.1)", () => {
  assert.equal(
    jwkThumbprint({
      kty: "RSA",
      n:
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP" +
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY" +
        "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM" +
        "4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
      e: "AQAB",
      alg: "RS256",
      kid: "2011-04-29",
    }),
    "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
  );
});

describe("DPoP on the memory store", () => {
  let service: TestService;
  let key: TestKey;
  /** Every proof sent in this suite, to check none of them reaches the log. */
  const sentProofs: string[] = [];
  const proof = async (
    htu?: string,
    overrides?: Parameters<typeof dpopProofFor>[3],
    signer: TestKey = key,
  ) => {
    const value = await dpopProofFor(service, signer, htu, overrides);
    sentProofs.push(value);
    return value;
  };

  before(async () => {
    service = await start();
    key = await generateTestKey("ES256");
  });
  after(() => service.close());

  test("the token endpoint URL is derived from ISSUER_URL", () => {
    assert.equal(tokenEndpointUrl(service), TOKEN_ENDPOINT);
    assert.equal(rpcHtu(service), "http://issuer.test/token.v1.TokenService/VerifyMfaOtp");
  });

  test("discovery advertises exactly the asymmetric allow-list for DPoP", async () => {
    const response = await fetch(`${service.baseUrl}/.well-known/openid-configuration`);
    const document = (await response.json()) as Record<string, unknown>;
    assert.deepEqual(
      [...(document.dpop_signing_alg_values_supported as string[])].sort(),
      [...ALLOWED_ALGS].sort(),
    );
  });

  test("without a proof nothing changes: Bearer, no cnf", async () => {
    const [user] = await readyUsers(service, 1);
    assert.ok(user);
    const result = await postTokenForm(service, grantOf(service, user));
    assert.equal(result.status, 200);
    assert.equal(result.body.token_type, "Bearer");
    assert.equal(jwtPayloadOf(String(result.body.access_token)).cnf, undefined);
  });

  for (const alg of ALLOWED_ALGS) {
    test(`REST: a valid ${alg} proof yields a DPoP token bound to its key`, async () => {
      const signer = await generateTestKey(alg);
      const [user] = await readyUsers(service, 1);
      assert.ok(user);
      const result = await postTokenForm(service, grantOf(service, user), {
        DPoP: await proof(undefined, undefined, signer),
      });
      assertBoundTo(result, signer);
      assert.equal(result.headers.get("cache-control"), "no-store");
      assert.equal(result.headers.get("dpop-nonce"), null, "no nonce unless nonce mode is on");
    });
  }

  test("REST: htu with a query and a fragment still names the token endpoint", async () => {
    const [user] = await readyUsers(service, 1);
    assert.ok(user);
    const result = await postTokenForm(service, grantOf(service, user), {
      DPoP: await proof(`${TOKEN_ENDPOINT}?foo=bar#frag`),
    });
    assertBoundTo(result, key);
  });

  test("REST: htu is compared after RFC 3986 syntax- and scheme-based normalisation", async () => {
    const [user] = (await readyUsers(service, 1)) as [ReadyUser];
    const result = await postTokenForm(service, grantOf(service, user), {
      DPoP: await proof("HTTP://Issuer.TEST:80/oauth/token"),
    });
    assertBoundTo(result, key);
  });

  test("gRPC: a valid proof in the `dpop` field yields a bound token", async () => {
    const [user] = await readyUsers(service, 1);
    assert.ok(user);
    const response = await clientsFor(service, "grpc").token.verifyMfaOtp({
      ...otpRpcRequest(user.mfaToken, codeAt(service, user.secret)),
      dpop: await proof(rpcHtu(service)),
    });
    assert.equal(response.tokenType, "DPoP");
    assert.deepEqual(jwtPayloadOf(response.accessToken).cnf, { jkt: jwkThumbprint(key.publicJwk) });
  });

  test("Connect: a valid proof in the DPoP request header yields a bound token", async () => {
    const [user] = await readyUsers(service, 1);
    assert.ok(user);
    const response = await clientsFor(service, "connect-h1").token.verifyMfaOtp(
      otpRpcRequest(user.mfaToken, codeAt(service, user.secret)),
      { headers: { DPoP: await proof(rpcHtu(service)) } },
    );
    assert.equal(response.tokenType, "DPoP");
    assert.deepEqual(jwtPayloadOf(response.accessToken).cnf, { jkt: jwkThumbprint(key.publicJwk) });
  });

  test("gRPC: a proof for the REST endpoint is InvalidArgument with an OAuthError detail", async () => {
    const [user] = await readyUsers(service, 1);
    assert.ok(user);
    const request = otpRpcRequest(user.mfaToken, codeAt(service, user.secret));
    const failure = await rpcFailure(
      clientsFor(service, "grpc").token.verifyMfaOtp({ ...request, dpop: await proof() }),
    );
    assert.equal(failure.code, Code.InvalidArgument);
    assert.equal(failure.detail?.error, "invalid_dpop_proof");
    assert.match(failure.detail?.errorDescription ?? "", /htu/);
    // Nothing was consumed: the same code and mfa_token work with a right proof.
    const response = await clientsFor(service, "grpc").token.verifyMfaOtp({
      ...request,
      dpop: await proof(rpcHtu(service)),
    });
    assert.equal(response.tokenType, "DPoP");
  });

  test("gRPC: a proof in the field AND in the DPoP header is two proofs (RFC 9449 §4.3 check 1)", async () => {
    const [user] = await readyUsers(service, 1);
    assert.ok(user);
    const request = otpRpcRequest(user.mfaToken, codeAt(service, user.secret));
    const failure = await rpcFailure(
      clientsFor(service, "grpc").token.verifyMfaOtp(
        { ...request, dpop: await proof(rpcHtu(service)) },
        { headers: { DPoP: await proof(rpcHtu(service)) } },
      ),
    );
    assert.equal(failure.code, Code.InvalidArgument);
    assert.deepEqual(
      [failure.detail?.error, failure.detail?.errorDescription],
      ["invalid_dpop_proof", "Exactly one DPoP proof is allowed"],
    );
  });

  test("Connect: a stale proof in the DPoP header is InvalidArgument with an OAuthError detail", async () => {
    const [user] = await readyUsers(service, 1);
    assert.ok(user);
    const failure = await rpcFailure(
      clientsFor(service, "connect-h1").token.verifyMfaOtp(
        otpRpcRequest(user.mfaToken, codeAt(service, user.secret)),
        {
          headers: {
            DPoP: await proof(rpcHtu(service), { claims: { iat: nowSeconds(service) - 3600 } }),
          },
        },
      ),
    );
    assert.equal(failure.code, Code.InvalidArgument);
    assert.equal(failure.detail?.error, "invalid_dpop_proof");
    assert.match(failure.detail?.errorDescription ?? "", /iat/);
  });

  describe("each RFC 9449 §4.3 rule broken once → 400 invalid_dpop_proof, nothing consumed", () => {
    /** One user whose right code is sent with every broken proof, and used at the end. */
    let user: ReadyUser;
    let otp: string;
    before(async () => {
      [user] = (await readyUsers(service, 1)) as [ReadyUser];
      otp = codeAt(service, user.secret);
    });

    interface Case {
      rule: string;
      reason: RegExp;
      /** The DPoP header value(s) to send; an array is sent as several header lines. */
      dpop: () => Promise<string | string[]>;
    }
    const now = () => nowSeconds(service);
    const cases: Case[] = [
      {
        rule: "one proof only: two DPoP header lines",
        reason: /one/i,
        dpop: async () => [await proof(), await proof()],
      },
      {
        rule: "one proof only: two proofs in one header line",
        reason: /one/i,
        dpop: async () => `${await proof()}, ${await proof()}`,
      },
      {
        rule: "a compact JWS: an empty DPoP header is not a missing one",
        reason: /compact/i,
        dpop: async () => "",
      },
      {
        rule: "a compact JWS: not a JWT at all",
        reason: /compact/i,
        dpop: async () => "not-a-jwt",
      },
      {
        rule: "a compact JWS: only two segments",
        reason: /compact/i,
        dpop: async () => (await proof()).split(".").slice(0, 2).join("."),
      },
      {
        rule: "a compact JWS: an unsigned JWT (alg none, empty signature)",
        reason: /compact|alg/i,
        dpop: async () =>
          rawJws(
            { alg: "none", typ: "dpop+jwt", jwk: key.publicJwk },
            proofClaims(service, TOKEN_ENDPOINT),
          ),
      },
      {
        rule: "size bound: a proof over 8 KiB",
        reason: /too large/i,
        dpop: () => proof(undefined, { claims: { pad: "x".repeat(9000) } }),
      },
      {
        rule: "typ: missing",
        reason: /typ/,
        dpop: () => proof(undefined, { header: { typ: undefined } }),
      },
      {
        rule: "typ: JWT instead of dpop+jwt",
        reason: /typ/,
        dpop: () => proof(undefined, { header: { typ: "JWT" } }),
      },
      {
        rule: "alg: none (with a signature segment)",
        reason: /alg/,
        dpop: async () =>
          rawJws(
            { alg: "none", typ: "dpop+jwt", jwk: key.publicJwk },
            proofClaims(service, TOKEN_ENDPOINT),
            "AAAA",
          ),
      },
      {
        rule: "alg: HS256 (symmetric)",
        reason: /alg/,
        dpop: () =>
          signJws(
            new Uint8Array(32).fill(1),
            { alg: "HS256", typ: "dpop+jwt", jwk: key.publicJwk },
            proofClaims(service, TOKEN_ENDPOINT),
          ),
      },
      {
        rule: "alg: ES512 (asymmetric, not in the allow-list)",
        reason: /alg/,
        dpop: async () => proof(undefined, undefined, await generateTestKey("ES512")),
      },
      {
        rule: "jwk: missing",
        reason: /jwk/,
        dpop: () => proof(undefined, { header: { jwk: undefined } }),
      },
      {
        rule: "jwk: a private key",
        reason: /public/,
        dpop: () => proof(undefined, { header: { jwk: key.privateJwk } }),
      },
      {
        rule: "signature: made by another key than the embedded jwk",
        reason: /signature/,
        dpop: async () => {
          const other = await generateTestKey("ES256");
          return proof(undefined, { header: { jwk: other.publicJwk } });
        },
      },
      {
        rule: "signature: payload changed after signing",
        reason: /signature/,
        dpop: async () => {
          const [header, , signature] = (await proof()).split(".");
          const forged = Buffer.from(
            JSON.stringify({ ...proofClaims(service, TOKEN_ENDPOINT), htm: "POST" }),
          ).toString("base64url");
          return `${header}.${forged}.${signature}`;
        },
      },
      {
        rule: "key policy: the jwk's key type does not fit alg (ES256 header, RSA jwk)",
        reason: /not an accepted key for its alg/,
        dpop: async () => {
          const rsa = await generateKeyPair("RS256", { extractable: true });
          return proof(undefined, { header: { jwk: await exportJWK(rsa.publicKey) } });
        },
      },
      {
        // SPEC §4: refused before any signature work (a 3,064-bit exponent cost ~10 ms).
        rule: "key policy: an RSA jwk with a huge public exponent",
        reason: /not an accepted key for its alg/,
        dpop: async () => {
          const rsa = await generateKeyPair("RS256", { extractable: true });
          const jwk = {
            ...(await exportJWK(rsa.publicKey)),
            e: Buffer.alloc(383, 0xff).toString("base64url"),
          };
          const header = { alg: "RS256", typ: "dpop+jwt", jwk };
          return rawJws(header, proofClaims(service, TOKEN_ENDPOINT), "A".repeat(342));
        },
      },
      {
        rule: "key policy: an RSA jwk with a 8192-bit modulus",
        reason: /not an accepted key for its alg/,
        dpop: async () => {
          const jwk = { kty: "RSA", n: Buffer.alloc(1024, 0xff).toString("base64url"), e: "AQAB" };
          const header = { alg: "RS256", typ: "dpop+jwt", jwk };
          return rawJws(header, proofClaims(service, TOKEN_ENDPOINT), "A".repeat(1366));
        },
      },
      {
        rule: "htm: GET",
        reason: /htm/,
        dpop: () => proof(undefined, { claims: { htm: "GET" } }),
      },
      {
        rule: "htm: lower-case post",
        reason: /htm/,
        dpop: () => proof(undefined, { claims: { htm: "post" } }),
      },
      {
        rule: "htm: missing",
        reason: /htm/,
        dpop: () => proof(undefined, { claims: { htm: undefined } }),
      },
      {
        rule: "htu: another host",
        reason: /htu/,
        dpop: () => proof("http://evil.test/oauth/token"),
      },
      {
        rule: "htu: another scheme",
        reason: /htu/,
        dpop: () => proof("https://issuer.test/oauth/token"),
      },
      {
        rule: "htu: another path",
        reason: /htu/,
        dpop: () => proof("http://issuer.test/oauth/token/extra"),
      },
      {
        rule: "htu: the RPC URL sent to REST",
        reason: /htu/,
        dpop: () => proof(rpcHtu(service)),
      },
      {
        rule: "htu: the request's own loopback URL instead of ISSUER_URL's",
        reason: /htu/,
        dpop: () => proof(`${service.baseUrl}/oauth/token`),
      },
      {
        rule: "htu: missing",
        reason: /htu/,
        dpop: () => proof(undefined, { claims: { htu: undefined } }),
      },
      {
        rule: "htu: not a URL",
        reason: /htu/,
        dpop: () => proof(undefined, { claims: { htu: "oauth/token" } }),
      },
      {
        rule: "iat: 61 s in the past",
        reason: /iat/,
        dpop: () => proof(undefined, { claims: { iat: now() - 61 } }),
      },
      {
        rule: "iat: 61 s in the future",
        reason: /iat/,
        dpop: () => proof(undefined, { claims: { iat: now() + 61 } }),
      },
      {
        rule: "iat: missing",
        reason: /iat/,
        dpop: () => proof(undefined, { claims: { iat: undefined } }),
      },
      {
        rule: "jti: missing",
        reason: /jti/,
        dpop: () => proof(undefined, { claims: { jti: undefined } }),
      },
      {
        rule: "jti: empty",
        reason: /jti/,
        dpop: () => proof(undefined, { claims: { jti: "" } }),
      },
    ];

    for (const { rule, reason, dpop } of cases) {
      test(rule, async () => {
        const value = await dpop();
        const result = await postTokenRaw(service, grantOf(service, user, otp), { DPoP: value });
        assertInvalidProof(result, reason);
      });
    }

    test("one proof only: two DPoP header fields over h2c", async () => {
      const proofs = [await proof(), await proof()];
      const session = http2Connect(service.baseUrl);
      try {
        const result = await new Promise<RestResult>((resolve, reject) => {
          session.once("error", reject);
          const stream = session.request({
            ":method": "POST",
            ":path": "/oauth/token",
            "content-type": "application/x-www-form-urlencoded",
            dpop: proofs,
          });
          let headers = new Headers();
          let status = 0;
          const chunks: Buffer[] = [];
          stream.once("response", (h) => {
            status = Number(h[":status"]);
            headers = new Headers(
              Object.entries(h).filter(
                (e): e is [string, string] => typeof e[1] === "string" && !e[0].startsWith(":"),
              ),
            );
          });
          stream.on("data", (chunk: Buffer) => chunks.push(chunk));
          stream.once("error", reject);
          stream.once("end", () =>
            resolve({
              status,
              headers,
              body: JSON.parse(Buffer.concat(chunks).toString("utf8")),
            }),
          );
          stream.end(new URLSearchParams(grantOf(service, user, otp)).toString());
        });
        assertInvalidProof(result, /one/i);
      } finally {
        session.close();
      }
    });

    test("… and afterwards the same mfa_token and code still work with a good proof", async () => {
      const result = await postTokenForm(service, grantOf(service, user, otp), {
        DPoP: await proof(),
      });
      assertBoundTo(result, key);
    });
  });

  describe("iat window on the fake clock", () => {
    test("±60 s is accepted at the edges; a proof minted 61 s ago is not", async () => {
      const users = await readyUsers(service, 3);
      const [early, late, stale] = users as [ReadyUser, ReadyUser, ReadyUser];
      assert.equal(
        service.clock.nowMs() % 1000,
        0,
        "readyUsers leaves the clock on a whole second",
      );

      assertBoundTo(
        await postTokenForm(service, grantOf(service, early), {
          DPoP: await proof(undefined, { claims: { iat: nowSeconds(service) - 60 } }),
        }),
        key,
      );
      assertBoundTo(
        await postTokenForm(service, grantOf(service, late), {
          DPoP: await proof(undefined, { claims: { iat: nowSeconds(service) + 60 } }),
        }),
        key,
      );

      const minted = await proof();
      service.clock.advance(61_000);
      assertInvalidProof(
        await postTokenForm(service, grantOf(service, stale), { DPoP: minted }),
        /iat/,
      );
      assertBoundTo(
        await postTokenForm(service, grantOf(service, stale), { DPoP: await proof() }),
        key,
      );
    });

    test("DPOP_IAT_SKEW_SECONDS narrows the window", async () => {
      const narrow = await start({ env: { DPOP_IAT_SKEW_SECONDS: "5" } });
      try {
        const [user] = (await readyUsers(narrow, 1)) as [ReadyUser];
        const tooOld = await dpopProofFor(narrow, key, undefined, {
          claims: { iat: nowSeconds(narrow) - 6 },
        });
        assertInvalidProof(
          await postTokenForm(narrow, grantOf(narrow, user), { DPoP: tooOld }),
          /iat/,
        );
        const edge = await dpopProofFor(narrow, key, undefined, {
          claims: { iat: nowSeconds(narrow) - 5 },
        });
        assertBoundTo(await postTokenForm(narrow, grantOf(narrow, user), { DPoP: edge }), key);
      } finally {
        await narrow.close();
      }
    });
  });

  describe("the error order and the failure bucket", () => {
    test("client authentication (row 1) and parameters (row 3) are checked before the proof", async () => {
      const [user] = (await readyUsers(service, 1)) as [ReadyUser];
      const bad = await proof(undefined, { claims: { htm: "GET" } });
      const wrongSecret = await postTokenForm(
        service,
        { ...grantOf(service, user), client_secret: "wrong" },
        { DPoP: bad },
      );
      assert.equal(wrongSecret.status, 401);
      assert.equal(wrongSecret.body.error, "access_denied");
      const { otp: _otp, ...withoutOtp } = grantOf(service, user);
      const missing = await postTokenForm(service, withoutOtp, { DPoP: bad });
      assert.deepEqual(missing.body, {
        error: "invalid_request",
        error_description: "Missing required parameter: otp",
      });
    });

    test("the proof (row 11) is checked before the mfa_token (rows 5-7)", async () => {
      const params = { ...otpGrantParams("not-an-mfa-token", "123456") };
      assertInvalidProof(
        await postTokenForm(service, params, {
          DPoP: await proof(undefined, { header: { typ: "JWT" } }),
        }),
        /typ/,
      );
      const malformed = await postTokenForm(service, params, { DPoP: await proof() });
      assert.deepEqual(malformed.body, {
        error: "invalid_grant",
        error_description: "Malformed mfa_token",
      });
    });

    test("20 bad proofs with wrong codes neither lock the user nor drain the bucket", async () => {
      const [user] = (await readyUsers(service, 1)) as [ReadyUser];
      const wrong = wrongCode(service, user.secret);
      for (let i = 0; i < 20; i++) {
        const bad = await proof(undefined, { claims: { iat: nowSeconds(service) - 3600 } });
        assertInvalidProof(
          await postTokenForm(service, grantOf(service, user, wrong), { DPoP: bad }),
          /iat/,
        );
      }
      // A wrong code with a good proof reaches the bucket (one attempt, not 429) …
      const wrongWithGoodProof = await postTokenForm(service, grantOf(service, user, wrong), {
        DPoP: await proof(),
      });
      assert.deepEqual(wrongWithGoodProof.body, {
        error: "invalid_grant",
        error_description: "Invalid otp_code.",
      });
      // … and the right code still succeeds.
      assertBoundTo(
        await postTokenForm(service, grantOf(service, user), { DPoP: await proof() }),
        key,
      );
    });
  });

  defineReplayTests(() => service);

  test("no proof ever reaches the log", () => {
    const log = service.logs.join("");
    assert.ok(sentProofs.length > 40);
    for (const sent of sentProofs) {
      assert.equal(log.includes(sent), false, "a proof was logged");
      const signature = sent.split(".")[2] ?? "";
      if (signature.length > 20)
        assert.equal(log.includes(signature), false, "a signature was logged");
    }
    assert.match(log, /dpop_rejected/, "rejections are logged at debug, by reason");
  });
});

/** Replays: sequential, concurrent (20 requests, one proof), and nothing consumed by the losers. */
function defineReplayTests(getService: () => TestService): void {
  describe("jti replay", () => {
    test("the same proof twice: the second is rejected", async () => {
      const service = getService();
      const key = await generateTestKey("ES256");
      const [first, second] = (await readyUsers(service, 2)) as [ReadyUser, ReadyUser];
      const once = await dpopProofFor(service, key);
      assertBoundTo(await postTokenForm(service, grantOf(service, first), { DPoP: once }), key);
      const replay = await postTokenForm(service, grantOf(service, second), { DPoP: once });
      assertInvalidProof(replay, /already been used/);
      // The replay consumed nothing of the second user's.
      assertBoundTo(
        await postTokenForm(service, grantOf(service, second), {
          DPoP: await dpopProofFor(service, key),
        }),
        key,
      );
    });

    test("20 concurrent requests carrying one proof: exactly one is accepted", async () => {
      const service = getService();
      const key = await generateTestKey("ES256");
      // Twenty users, each request otherwise valid on its own: only the jti can decide.
      const users = await readyUsers(service, 20);
      const shared = await dpopProofFor(service, key);
      const results = await Promise.all(
        users.map((user) => postTokenForm(service, grantOf(service, user), { DPoP: shared })),
      );
      const accepted = results.filter((r) => r.status === 200);
      assert.equal(accepted.length, 1, JSON.stringify(results.map((r) => r.body)));
      for (const result of results) {
        if (result.status !== 200) assertInvalidProof(result, /already been used/);
      }
      // The nineteen losers lost nothing: each succeeds with a proof of its own.
      const retries = await Promise.all(
        users
          .filter((_, i) => results[i]?.status !== 200)
          .map(async (user) =>
            postTokenForm(service, grantOf(service, user), {
              DPoP: await dpopProofFor(service, key),
            }),
          ),
      );
      for (const retry of retries) assertBoundTo(retry, key);
    });
  });
}

describe("DPoP on Redis", () => {
  let redis: RedisServerHandle;
  let first: TestService;
  let second: TestService;
  before(async () => {
    redis = await startRedisServer();
    first = await start({ store: "redis", redisUrl: redis.url });
    second = await start({ store: "redis", redisUrl: redis.url });
  });
  after(async () => {
    await first?.close();
    await second?.close();
    await redis?.stop();
  });

  defineReplayTests(() => first);

  test("a proof used at one instance is a replay at another sharing the Redis", async () => {
    const key = await generateTestKey("EdDSA");
    const [a, b] = (await readyUsers(first, 2)) as [ReadyUser, ReadyUser];
    second.clock.set(first.clock.nowMs());
    const once = await dpopProofFor(first, key);
    assertBoundTo(await postTokenForm(first, grantOf(first, a), { DPoP: once }), key);
    assertInvalidProof(
      await postTokenForm(second, grantOf(second, b), { DPoP: once }),
      /already been used/,
    );
  });
});

describe("DPoP on PostgreSQL", () => {
  let postgres: PostgresServerHandle;
  let first: TestService;
  let second: TestService;
  before(async () => {
    postgres = await startPostgresServer();
    const databaseUrl = await postgres.freshDatabase();
    first = await start({ store: "postgres", databaseUrl });
    second = await start({ store: "postgres", databaseUrl });
  });
  after(async () => {
    await first?.close();
    await second?.close();
    await postgres?.stop();
  });

  defineReplayTests(() => first);

  test("a proof used at one instance is a replay at another sharing the database", async () => {
    const key = await generateTestKey("EdDSA");
    const [a, b] = (await readyUsers(first, 2)) as [ReadyUser, ReadyUser];
    second.clock.set(first.clock.nowMs());
    const once = await dpopProofFor(first, key);
    assertBoundTo(await postTokenForm(first, grantOf(first, a), { DPoP: once }), key);
    assertInvalidProof(
      await postTokenForm(second, grantOf(second, b), { DPoP: once }),
      /already been used/,
    );
  });
});

describe("server nonces (DPOP_REQUIRE_NONCE=true)", () => {
  let service: TestService;
  let key: TestKey;
  before(async () => {
    service = await start({
      env: { DPOP_REQUIRE_NONCE: "true", DPOP_NONCE_WINDOW_SECONDS: "60" },
    });
    key = await generateTestKey("ES256");
  });
  after(() => service.close());

  /** Asserts the RFC 9449 §8 challenge and returns the nonce it carries. */
  function assertNonceChallenge(result: RestResult): string {
    assert.equal(result.status, 400);
    assert.deepEqual(result.body, {
      error: "use_dpop_nonce",
      error_description: NONCE_DESCRIPTION,
    });
    assert.equal(result.headers.get("cache-control"), "no-store");
    const nonce = result.headers.get("dpop-nonce");
    assert.ok(nonce, "DPoP-Nonce header");
    assert.doesNotMatch(nonce, /,/, "exactly one nonce");
    return nonce;
  }

  test("challenge, retry with the nonce, success (REST)", async () => {
    const [user] = (await readyUsers(service, 1)) as [ReadyUser];
    const params = grantOf(service, user);
    const nonce = assertNonceChallenge(
      await postTokenForm(service, params, { DPoP: await dpopProofFor(service, key) }),
    );
    // The challenge consumed nothing: the same mfa_token and code succeed.
    const result = await postTokenForm(service, params, {
      DPoP: await dpopProofFor(service, key, undefined, { claims: { nonce } }),
    });
    assertBoundTo(result, key);
    assert.ok(result.headers.get("dpop-nonce"), "a success carries the current nonce too");
  });

  test("a nonce the server never issued is challenged again", async () => {
    const [user] = (await readyUsers(service, 1)) as [ReadyUser];
    assertNonceChallenge(
      await postTokenForm(service, grantOf(service, user), {
        DPoP: await dpopProofFor(service, key, undefined, { claims: { nonce: "made-up-nonce" } }),
      }),
    );
  });

  test("a broken proof is still invalid_dpop_proof, not a nonce challenge", async () => {
    const [user] = (await readyUsers(service, 1)) as [ReadyUser];
    assertInvalidProof(
      await postTokenForm(service, grantOf(service, user), {
        DPoP: await dpopProofFor(service, key, undefined, { claims: { htm: "GET" } }),
      }),
      /htm/,
    );
  });

  test("without a proof the grant is unchanged (Bearer)", async () => {
    const [user] = (await readyUsers(service, 1)) as [ReadyUser];
    const result = await postTokenForm(service, grantOf(service, user));
    assert.equal(result.status, 200);
    assert.equal(result.body.token_type, "Bearer");
  });

  test("nonces rotate: a new one each window, the previous one accepted one window longer", async () => {
    const users = (await readyUsers(service, 3)) as [ReadyUser, ReadyUser, ReadyUser];
    const challenge = async (user: ReadyUser) =>
      assertNonceChallenge(
        await postTokenForm(service, grantOf(service, user), {
          DPoP: await dpopProofFor(service, key),
        }),
      );
    const withNonce = async (user: ReadyUser, nonce: string) =>
      postTokenForm(service, grantOf(service, user), {
        DPoP: await dpopProofFor(service, key, undefined, { claims: { nonce } }),
      });

    const n1 = await challenge(users[0]);
    assertBoundTo(await withNonce(users[0], n1), key);

    service.clock.advance(60_000);
    const n2 = await challenge(users[1]);
    assert.notEqual(n2, n1, "a new window, a new nonce");
    assertBoundTo(await withNonce(users[1], n1), key);

    service.clock.advance(60_000);
    const n3 = assertNonceChallenge(await withNonce(users[2], n1));
    assert.notEqual(n3, n1);
    assertBoundTo(await withNonce(users[2], n3), key);
  });

  test("gRPC: challenge in the error metadata, retry with the nonce, success", async () => {
    const [user] = (await readyUsers(service, 1)) as [ReadyUser];
    const request = otpRpcRequest(user.mfaToken, codeAt(service, user.secret));
    const token = clientsFor(service, "grpc").token;
    const failure = await rpcFailure(
      token.verifyMfaOtp({ ...request, dpop: await dpopProofFor(service, key, rpcHtu(service)) }),
    );
    assert.equal(failure.code, Code.InvalidArgument);
    assert.deepEqual(failure.detail, {
      error: "use_dpop_nonce",
      errorDescription: NONCE_DESCRIPTION,
      retryAfterSeconds: 0,
    });
    const nonce = failure.metadata.get("dpop-nonce");
    assert.ok(nonce);
    let responseNonce: string | null = null;
    const response = await token.verifyMfaOtp(
      {
        ...request,
        dpop: await dpopProofFor(service, key, rpcHtu(service), { claims: { nonce } }),
      },
      { onHeader: (headers) => (responseNonce = headers.get("dpop-nonce")) },
    );
    assert.equal(response.tokenType, "DPoP");
    assert.ok(responseNonce, "the success carries DPoP-Nonce");
  });
});

describe("server nonces shared by two instances on one Redis", () => {
  let redis: RedisServerHandle;
  let first: TestService;
  let second: TestService;
  let otherKey: TestService;
  const env = { DPOP_REQUIRE_NONCE: "true" };
  before(async () => {
    redis = await startRedisServer();
    first = await start({ store: "redis", redisUrl: redis.url, env });
    second = await start({ store: "redis", redisUrl: redis.url, env });
    otherKey = await start({
      env: { ...env, SECRETS_KEY: Buffer.alloc(32, 9).toString("base64") },
    });
    assert.notEqual(Buffer.alloc(32, 9).toString("base64"), TEST_SECRETS_KEY);
  });
  after(async () => {
    await first?.close();
    await second?.close();
    await otherKey?.close();
    await redis?.stop();
  });

  test("a nonce issued by one instance is accepted by the other (same SECRETS_KEY)", async () => {
    const key = await generateTestKey("ES256");
    const [user] = (await readyUsers(first, 1)) as [ReadyUser];
    second.clock.set(first.clock.nowMs());
    const challenge = await postTokenForm(first, grantOf(first, user), {
      DPoP: await dpopProofFor(first, key),
    });
    assert.equal(challenge.body.error, "use_dpop_nonce");
    const nonce = challenge.headers.get("dpop-nonce");
    assert.ok(nonce);
    const result = await postTokenForm(second, grantOf(second, user), {
      DPoP: await dpopProofFor(second, key, undefined, { claims: { nonce } }),
    });
    assertBoundTo(result, key);
  });

  test("an instance with another SECRETS_KEY does not accept it", async () => {
    const key = await generateTestKey("ES256");
    const [user] = (await readyUsers(first, 1)) as [ReadyUser];
    otherKey.clock.set(first.clock.nowMs());
    const challenge = await postTokenForm(first, grantOf(first, user), {
      DPoP: await dpopProofFor(first, key),
    });
    const nonce = challenge.headers.get("dpop-nonce");
    assert.ok(nonce);
    const elsewhere = await postTokenForm(otherKey, grantOf(first, user), {
      DPoP: await dpopProofFor(otherKey, key, undefined, { claims: { nonce } }),
    });
    assert.equal(elsewhere.body.error, "use_dpop_nonce");
    assert.notEqual(elsewhere.headers.get("dpop-nonce"), nonce);
  });
});
