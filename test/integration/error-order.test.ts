// docs/api.md "Errors" check order: body (14), grant_type (10), client (1), grant allowed (2),
// parameters (3, 4; mfa_token first), mfa_token (5, 6, 7), bucket (8), code (9) —
// and nothing single-use changes before every earlier check has passed.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  codeAt,
  enrolledUser,
  failTimes,
  issueMfaToken,
  MFA_OTP_GRANT,
  otpGrantParams,
  POST_CLIENT_CREDENTIALS,
  postTokenForm,
  postTokenJson,
  rest,
  useService,
  verifyOtp,
} from "../support/flows.js";
import { assertLocked, assertOAuthError } from "../support/oauth-assertions.js";
import { CLIENTS } from "../support/test-service.js";

const service = useService();

const MISSING = (name: string) => `Missing required parameter: ${name}`;

/** An enrolled user whose bucket is empty, with a live mfa_token and the secret. */
async function lockedUser() {
  const { userId, secret } = await enrolledUser(service());
  const mfaToken = await issueMfaToken(service(), userId);
  await failTimes(service(), mfaToken, secret, 10);
  return { userId, secret, mfaToken };
}

test("a bad body answers row 14 before everything", async () => {
  const result = await rest(service(), "POST", "/oauth/token", {
    headers: { "content-type": "application/json" },
    body: '{"client_id":"nobody"',
  });
  assert.equal(result.status, 400);
  assert.equal((result.body as { error: string }).error, "invalid_request");
  assert.notEqual(
    (result.body as { error_description: string }).error_description,
    MISSING("grant_type"),
  );
  const wrongType = await rest(service(), "POST", "/oauth/token", {
    headers: { "content-type": "text/plain" },
    body: "grant_type=password",
  });
  assert.equal(wrongType.status, 415);
});

test("missing grant_type (absent, empty or JSON null) is row 3's wording", async () => {
  for (const body of [{}, { grant_type: "" }, { grant_type: null, client_id: "nobody" }]) {
    assertOAuthError(
      await postTokenJson(service(), body),
      400,
      "invalid_request",
      MISSING("grant_type"),
    );
  }
});

test("an unknown grant_type is answered before client authentication", async () => {
  assertOAuthError(
    await postTokenForm(service(), { grant_type: "password", client_id: "nobody" }),
    400,
    "unsupported_grant_type",
    "Unsupported grant type: password",
  );
});

test("unknown client + missing otp → row 1", async () => {
  assertOAuthError(
    await postTokenForm(service(), {
      grant_type: MFA_OTP_GRANT,
      client_id: "nobody",
      mfa_token: "x",
    }),
    401,
    "access_denied",
    "Unauthorized",
  );
});

test("wrong client secret AND malformed mfa_token → row 1", async () => {
  const params = otpGrantParams("garbage", "123456", { client_secret: "wrong" });
  assertOAuthError(await postTokenForm(service(), params), 401, "access_denied", "Unauthorized");
});

test("grant not allowed is answered before the parameters", async () => {
  const result = await postTokenForm(service(), {
    grant_type: MFA_OTP_GRANT,
    client_id: CLIENTS.noGrant.id,
    client_secret: CLIENTS.noGrant.secret,
  });
  assert.equal(result.status, 403);
  assert.equal(result.body.error, "unauthorized_client");
});

test("missing mfa_token and otp → mfa_token first", async () => {
  assertOAuthError(
    await postTokenForm(service(), { grant_type: MFA_OTP_GRANT, ...POST_CLIENT_CREDENTIALS }),
    400,
    "invalid_request",
    MISSING("mfa_token"),
  );
});

test("mfa_token missing is reported before otp's wrong type", async () => {
  const body = { grant_type: MFA_OTP_GRANT, ...POST_CLIENT_CREDENTIALS, otp: 123456 };
  assertOAuthError(
    await postTokenJson(service(), body),
    400,
    "invalid_request",
    MISSING("mfa_token"),
  );
});

test("JSON null counts as missing", async () => {
  assertOAuthError(
    await postTokenJson(service(), { ...otpGrantParams("x", "123456"), mfa_token: null }),
    400,
    "invalid_request",
    MISSING("mfa_token"),
  );
  assertOAuthError(
    await postTokenJson(service(), { ...otpGrantParams("x", "123456"), otp: null }),
    400,
    "invalid_request",
    MISSING("otp"),
  );
  assertOAuthError(
    await postTokenJson(service(), { ...otpGrantParams("x", "123456"), client_secret: null }),
    401,
    "access_denied",
    "Unauthorized",
  );
});

test("parameters are checked before the mfa_token", async () => {
  assertOAuthError(
    await postTokenJson(service(), { ...otpGrantParams("garbage", "1"), otp: 1 }),
    400,
    "invalid_request",
    "otp must be a string",
  );
});

test("a malformed mfa_token is answered before the bucket", async () => {
  await lockedUser();
  assertOAuthError(
    await verifyOtp(service(), "mt1.tampered", "123456"),
    400,
    "invalid_grant",
    "Malformed mfa_token",
  );
});

test("another client's mfa_token is answered before the bucket", async () => {
  const { mfaToken, secret } = await lockedUser();
  const result = await postTokenForm(service(), {
    grant_type: MFA_OTP_GRANT,
    client_id: CLIENTS.public.id,
    mfa_token: mfaToken,
    otp: codeAt(service(), secret),
  });
  assertOAuthError(result, 400, "invalid_request", "mfa_token not issued to this client");
});

test("a locked bucket answers row 8 even for the right code", async () => {
  const { mfaToken, secret } = await lockedUser();
  assertLocked(await verifyOtp(service(), mfaToken, codeAt(service(), secret)), "360");
});

test("failed earlier checks consume nothing: no attempt, no mfa_token, no code step", async () => {
  const { userId, secret } = await enrolledUser(service());
  const mfaToken = await issueMfaToken(service(), userId);
  const code = codeAt(service(), secret);
  // Ten times row 7 with the right code: neither the bucket nor the token nor the step is used.
  for (let i = 0; i < 10; i++) {
    const result = await postTokenForm(service(), {
      grant_type: MFA_OTP_GRANT,
      client_id: CLIENTS.public.id,
      mfa_token: mfaToken,
      otp: code,
    });
    assert.equal(result.status, 400);
  }
  const wrongSecret = otpGrantParams(mfaToken, code, { client_secret: "wrong" });
  assert.equal((await postTokenForm(service(), wrongSecret)).status, 401);
  assert.equal((await verifyOtp(service(), mfaToken, code)).status, 200);
});
