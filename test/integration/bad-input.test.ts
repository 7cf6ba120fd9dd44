/**
 * Hostile and malformed input on the REST surface (error rows 3, 5, 6, 14):
 * a fast-check property over POST /oauth/token bodies, content types and
 * credential headers, the 64 KiB body cap, 415, 405, and bad bearers on the
 * /mfa/* routes and their RPCs.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import fc, { type Arbitrary } from "fast-check";
import {
  clientsFor,
  enrolledUser,
  freshCode,
  issueMfaToken,
  MFA_OTP_GRANT,
  MFA_RECOVERY_CODE_GRANT,
  otpGrantParams,
  postTokenForm,
  uniqueUserId,
} from "../support/flows.js";
import { h1Request, h2cRequest, jsonOf, type RawResponse } from "../support/http-clients.js";
import { assertOAuthError, assertRpcError } from "../support/oauth-assertions.js";
import { CLIENTS, startTestService, type TestService } from "../support/test-service.js";

const MAX_BODY = 64 * 1024;

let service: TestService;
before(async () => {
  service = await startTestService();
});
after(() => service.close());

/** Asserts an OAuth error response: exact status, `{error, error_description}`, no-store. */
function assertRawError(
  response: RawResponse,
  status: number,
  error: string,
  errorDescription?: string,
): void {
  assert.equal(response.status, status, response.text);
  assert.equal(response.headers["cache-control"], "no-store");
  const body = jsonOf(response) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), ["error", "error_description"]);
  assert.equal(body.error, error);
  if (errorDescription === undefined) {
    assert.equal(typeof body.error_description, "string");
    assert.notEqual(body.error_description, "");
  } else {
    assert.equal(body.error_description, errorDescription);
  }
}

describe("POST /oauth/token: any input is a 4xx OAuth error, never a 5xx", () => {
  const agent = new http.Agent({ keepAlive: true });
  after(() => agent.destroy());

  test("property: random bodies, content types and credentials (200 runs)", async () => {
    // Live mfa_tokens of a user WITHOUT an authenticator: every code for them
    // is row 9 (or row 8 once the bucket is empty), so no input can succeed.
    const userId = uniqueUserId("fuzz");
    const liveTokens = [
      await issueMfaToken(service, userId),
      await issueMfaToken(service, userId, { clientId: CLIENTS.basic.id }),
      await issueMfaToken(service, userId, { clientId: CLIENTS.public.id }),
    ];
    const knownKeys = [
      "grant_type",
      "mfa_token",
      "otp",
      "recovery_code",
      "client_id",
      "client_secret",
      "client_assertion",
      "client_assertion_type",
      "dpop",
      "scope",
      "__proto__",
      "constructor",
      "toString",
      "hasOwnProperty",
    ];
    const key = fc.oneof(fc.constantFrom(...knownKeys), fc.string({ maxLength: 12 }));
    const knownString = fc.constantFrom(
      MFA_OTP_GRANT,
      MFA_RECOVERY_CODE_GRANT,
      CLIENTS.post.id,
      CLIENTS.post.secret,
      CLIENTS.basic.id,
      CLIENTS.public.id,
      CLIENTS.noGrant.id,
      CLIENTS.noGrant.secret,
      "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      "123456",
      "",
      ...liveTokens,
    );
    const text = fc.oneof(
      knownString,
      fc.string({ maxLength: 40 }),
      fc.string({ maxLength: 40, unit: "binary" }),
    );
    const jsonValue = fc.oneof(text, fc.jsonValue({ maxDepth: 2 }));
    // A valid request of each kind, with up to three parameters replaced or
    // added and up to two removed: most runs get past the first checks, so
    // the deeper rows (client, grant, mfa_token, bucket, code) are reached too.
    const validParams = fc.constantFrom<Record<string, string>>(
      {
        grant_type: MFA_OTP_GRANT,
        client_id: CLIENTS.post.id,
        client_secret: CLIENTS.post.secret,
        mfa_token: liveTokens[0] as string,
        otp: "123456",
      },
      {
        grant_type: MFA_RECOVERY_CODE_GRANT,
        client_id: CLIENTS.post.id,
        client_secret: CLIENTS.post.secret,
        mfa_token: liveTokens[0] as string,
        recovery_code: "0123456789ABCDEFGHJKMNPQ",
      },
      {
        grant_type: MFA_OTP_GRANT,
        client_id: CLIENTS.public.id,
        mfa_token: liveTokens[2] as string,
        otp: "000000",
      },
    );
    const mutated = <T>(value: Arbitrary<T>) =>
      fc
        .tuple(
          validParams,
          fc.dictionary(key, value, { maxKeys: 3 }),
          fc.subarray(knownKeys, { maxLength: 2 }),
        )
        .map(([base, replaced, removed]) => {
          const params: Record<string, unknown> = { ...base, ...replaced };
          for (const name of removed) delete params[name];
          return params;
        });
    const jsonRequest = fc.record({
      body: mutated(jsonValue).map((params) => JSON.stringify(params)),
      contentType: fc.constantFrom(
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
      ),
    });
    // Form bodies as parameter lists: keys may repeat (RFC 6749 §3.2 forbids it).
    const formRequest = fc.record({
      body: fc
        .tuple(mutated(text), fc.array(fc.tuple(key, text), { maxLength: 2 }))
        .map(([params, repeated]) =>
          new URLSearchParams([
            ...Object.entries(params).map(([name, value]) => [name, String(value)]),
            ...repeated,
          ]).toString(),
        ),
      contentType: fc.constantFrom(
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded;charset=ISO-8859-1",
      ),
    });
    const headerText = fc.stringMatching(/^[\x21-\x7e][\x20-\x7e]{0,40}$/);
    const randomRequest = fc.record({
      body: fc.oneof(
        fc.string({ maxLength: 200 }),
        fc.string({ maxLength: 200, unit: "binary" }),
        fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
        fc.stringMatching(/^([a-z_%0-9]{0,12}=[a-zA-Z0-9%+&=]{0,20}&?){0,6}$/),
      ),
      contentType: fc.option(
        fc.oneof(
          fc.constantFrom(
            "application/json",
            "application/x-www-form-urlencoded",
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "application/*",
          ),
          headerText,
        ),
        { nil: undefined },
      ),
    });
    const request = fc.oneof(
      { arbitrary: jsonRequest, weight: 2 },
      { arbitrary: formRequest, weight: 2 },
      { arbitrary: randomRequest, weight: 1 },
    );
    const basic = (id: string, secret: string) =>
      `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;
    /** Mostly absent: any credential header changes how the client authenticates. */
    const sometimes = <T>(value: Arbitrary<T>) =>
      fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: value, weight: 1 });
    const authorization = sometimes(
      fc.oneof(
        fc.constantFrom(
          basic(CLIENTS.basic.id, CLIENTS.basic.secret),
          basic(CLIENTS.post.id, CLIENTS.post.secret),
          "Basic",
          "Basic !!!",
          `Bearer ${liveTokens[0]}`,
        ),
        headerText.map((value) => `Basic ${value}`),
        headerText,
      ),
    );
    const dpop = sometimes(
      fc.oneof(headerText, fc.array(headerText, { minLength: 2, maxLength: 2 })),
    );
    const transport = fc.constantFrom("h1", "h1-chunked", "h2c");

    await fc.assert(
      fc.asyncProperty(
        request,
        authorization,
        dpop,
        transport,
        async ({ body: payload, contentType: type }, auth, proof, via) => {
          const headers: Record<string, string | string[]> = {};
          if (type !== undefined) headers["content-type"] = type;
          if (auth !== undefined) headers.authorization = auth;
          if (proof !== undefined) headers.dpop = proof;
          const raw = { method: "POST", path: "/oauth/token", headers, body: payload };
          const response =
            via === "h2c"
              ? await h2cRequest(service.baseUrl, raw)
              : await h1Request(
                  service.baseUrl,
                  via === "h1-chunked" ? { ...raw, chunkSize: 16 } : raw,
                  agent,
                );
          assert.ok(
            response.status >= 400 && response.status < 500,
            `status ${response.status}: ${response.text}`,
          );
          assert.match(response.headers["content-type"] ?? "", /^application\/json/);
          assert.equal(response.headers["cache-control"], "no-store");
          const parsed = jsonOf(response) as Record<string, unknown>;
          assert.deepEqual(Object.keys(parsed).sort(), ["error", "error_description"]);
          assert.equal(typeof parsed.error, "string");
          assert.equal(typeof parsed.error_description, "string");
          if (response.status === 429) assert.match(response.headers["retry-after"] ?? "", /^\d+$/);
        },
      ),
      { numRuns: 200 },
    );

    const health = await fetch(`${service.baseUrl}/healthz`);
    assert.equal(health.status, 200);
  });
});

describe("body size, content type and method", () => {
  /** A form body of exactly `size` bytes with an unknown grant type. */
  const formOfSize = (size: number) => {
    const head = "grant_type=x&pad=";
    return head + "a".repeat(size - head.length);
  };
  const form = { "content-type": "application/x-www-form-urlencoded" };

  test("a body of exactly 64 KiB is read (then refused for its grant)", async () => {
    const response = await h1Request(service.baseUrl, {
      method: "POST",
      path: "/oauth/token",
      headers: form,
      body: formOfSize(MAX_BODY),
    });
    assertRawError(response, 400, "unsupported_grant_type", "Unsupported grant type: x");
  });

  for (const [name, chunkSize] of [
    ["with Content-Length", undefined],
    ["chunked", 4096],
  ] as const) {
    test(`a body over 64 KiB (${name}) is 413 invalid_request`, async () => {
      const response = await h1Request(service.baseUrl, {
        method: "POST",
        path: "/oauth/token",
        headers: form,
        body: formOfSize(MAX_BODY + 1),
        ...(chunkSize !== undefined ? { chunkSize } : {}),
      });
      assertRawError(response, 413, "invalid_request");
    });
  }

  test("a body over 64 KiB over h2c (no Content-Length) is 413 invalid_request", async () => {
    const response = await h2cRequest(service.baseUrl, {
      method: "POST",
      path: "/oauth/token",
      headers: form,
      body: formOfSize(4 * MAX_BODY),
    });
    assertRawError(response, 413, "invalid_request");
  });

  test("the service keeps serving after oversized bodies", async () => {
    const { userId, secret } = await enrolledUser(service);
    const result = await postTokenForm(
      service,
      otpGrantParams(await issueMfaToken(service, userId), freshCode(service, secret)),
    );
    assert.equal(result.status, 200);
  });

  for (const type of ["text/plain", "multipart/form-data; boundary=x", undefined]) {
    test(`content type ${type ?? "(none)"} is 415 invalid_request`, async () => {
      const response = await h1Request(service.baseUrl, {
        method: "POST",
        path: "/oauth/token",
        headers: type === undefined ? {} : { "content-type": type },
        body: `grant_type=${encodeURIComponent(MFA_OTP_GRANT)}`,
      });
      assertRawError(response, 415, "invalid_request");
    });
  }

  for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
    test(`${method} /oauth/token is 405`, async () => {
      const response = await h1Request(service.baseUrl, { method, path: "/oauth/token" });
      assertRawError(response, 405, "invalid_request", "Method not allowed");
    });
  }

  test("POST /mfa/authenticators is 405", async () => {
    const response = await h1Request(service.baseUrl, {
      method: "POST",
      path: "/mfa/authenticators",
    });
    assertRawError(response, 405, "invalid_request", "Method not allowed");
  });

  test("JSON null counts as missing; a number is not a string (rows 3, 4)", async () => {
    const json = { "content-type": "application/json" };
    const base = { grant_type: MFA_OTP_GRANT, client_id: CLIENTS.post.id };
    const send = (extra: Record<string, unknown>) =>
      h1Request(service.baseUrl, {
        method: "POST",
        path: "/oauth/token",
        headers: json,
        body: JSON.stringify({ ...base, client_secret: CLIENTS.post.secret, ...extra }),
      });
    assertRawError(
      await send({ mfa_token: null, otp: "123456" }),
      400,
      "invalid_request",
      "Missing required parameter: mfa_token",
    );
    assertRawError(
      await send({ mfa_token: 12, otp: "123456" }),
      400,
      "invalid_request",
      "mfa_token must be a string",
    );
    assertRawError(
      await send({ mfa_token: "x", otp: 123456 }),
      400,
      "invalid_request",
      "otp must be a string",
    );
    assertRawError(
      await send({ grant_type: null }),
      400,
      "invalid_request",
      "Missing required parameter: grant_type",
    );
  });
});

describe("/mfa/* and MfaService with a bad bearer (rows 3, 5, 6)", () => {
  // DELETE takes no mfa_token at all (rows 23 and 24): test/integration/mfa-api-token.test.ts.
  const routes = [
    { method: "POST", path: "/mfa/associate" },
    { method: "GET", path: "/mfa/authenticators" },
  ];
  const call = (route: (typeof routes)[number], authorization?: string) =>
    h1Request(service.baseUrl, {
      ...route,
      headers: authorization === undefined ? {} : { authorization },
    });

  let mfaToken: string;
  before(async () => {
    mfaToken = await issueMfaToken(service, uniqueUserId("bearer"));
  });

  /** The same token with one character of its sealed part changed. */
  const tampered = () => {
    const i = mfaToken.length - 5;
    return mfaToken.slice(0, i) + (mfaToken[i] === "A" ? "B" : "A") + mfaToken.slice(i + 1);
  };

  for (const route of routes) {
    test(`${route.method} ${route.path}`, async () => {
      for (const authorization of [undefined, "", "Bearer", `Basic ${mfaToken}`]) {
        assertRawError(
          await call(route, authorization),
          400,
          "invalid_request",
          "Missing required parameter: mfa_token",
        );
      }
      for (const bearer of ["garbage", tampered(), `${mfaToken}x`, "mt1.", "x".repeat(5000)]) {
        assertRawError(
          await call(route, `Bearer ${bearer}`),
          400,
          "invalid_grant",
          "Malformed mfa_token",
        );
      }
    });
  }

  test("the same bad tokens over RPC carry the typed detail", async () => {
    const rpc = clientsFor(service, "connect-h2");
    await assertRpcError(
      rpc.mfa.associate({ mfaToken: tampered(), authenticatorTypes: ["otp"] }),
      Code.FailedPrecondition,
      "invalid_grant",
      "Malformed mfa_token",
    );
    await assertRpcError(
      rpc.mfa.listAuthenticators({ mfaToken: "" }),
      Code.InvalidArgument,
      "invalid_request",
      "Missing required parameter: mfa_token",
    );
    await assertRpcError(
      rpc.mfa.deleteAuthenticator({ accessToken: "garbage", authenticatorId: "totp|abc" }),
      Code.Unauthenticated,
      "invalid_token",
      "Invalid access token",
    );
  });

  test("a consumed or expired mfa_token is expired_token", async () => {
    const { userId, secret } = await enrolledUser(service);
    const consumed = await issueMfaToken(service, userId);
    assert.equal(
      (await postTokenForm(service, otpGrantParams(consumed, freshCode(service, secret)))).status,
      200,
    );
    const stale = await issueMfaToken(service, userId);
    service.clock.advance(601_000);
    for (const token of [consumed, stale]) {
      for (const route of routes) {
        assertRawError(
          await call(route, `Bearer ${token}`),
          400,
          "expired_token",
          "mfa_token is expired",
        );
      }
      assertOAuthError(
        await postTokenForm(service, otpGrantParams(token, "123456")),
        400,
        "expired_token",
        "mfa_token is expired",
      );
    }
  });
});
