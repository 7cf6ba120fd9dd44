// docs/api.md "Errors" over REST against a real service: one test per row (11, DPoP, has its own suite),
// exact status, exact `{error, error_description}` body and `Cache-Control: no-store`.

import assert from "node:assert/strict";
import { test } from "node:test";
import { StoreUnavailableError } from "../../src/store/store.js";
import {
  associateRest,
  breakStore,
  codeAt,
  failTimes,
  issueMfaToken,
  MFA_OTP_GRANT,
  MFA_RECOVERY_CODE_GRANT,
  mfaApiToken,
  otpGrantParams,
  postTokenForm,
  postTokenJson,
  readyToVerify,
  recoveryGrantParams,
  rest,
  uniqueUserId,
  useService,
  verifyNow,
  verifyOtp,
  wrongCode,
} from "../support/flows.js";
import { assertExpired, assertLocked, assertOAuthError } from "../support/oauth-assertions.js";
import { CLIENTS } from "../support/test-service.js";

const service = useService();

test("row 1: unknown client → 401 access_denied", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  const result = await postTokenForm(
    service(),
    otpGrantParams(mfaToken, codeAt(service(), secret), { client_id: "nobody" }),
  );
  assertOAuthError(result, 401, "access_denied", "Unauthorized");
});

test("row 2: client not allowed the grant → 403 unauthorized_client (names the grant)", async () => {
  const params = {
    client_id: CLIENTS.noGrant.id,
    client_secret: CLIENTS.noGrant.secret,
    mfa_token: "x",
  };
  assertOAuthError(
    await postTokenForm(service(), { grant_type: MFA_OTP_GRANT, ...params, otp: "123456" }),
    403,
    "unauthorized_client",
    `Grant type '${MFA_OTP_GRANT}' not allowed for the client.`,
  );
  assertOAuthError(
    await postTokenForm(service(), {
      grant_type: MFA_RECOVERY_CODE_GRANT,
      ...params,
      recovery_code: "X",
    }),
    403,
    "unauthorized_client",
    `Grant type '${MFA_RECOVERY_CODE_GRANT}' not allowed for the client.`,
  );
});

test("row 3: missing mfa_token, otp, recovery_code → 400 invalid_request", async () => {
  const { mfa_token: _token, ...withoutToken } = otpGrantParams("t", "123456");
  assertOAuthError(
    await postTokenForm(service(), withoutToken),
    400,
    "invalid_request",
    "Missing required parameter: mfa_token",
  );
  const { otp: _otp, ...withoutOtp } = otpGrantParams("t", "123456");
  assertOAuthError(
    await postTokenForm(service(), withoutOtp),
    400,
    "invalid_request",
    "Missing required parameter: otp",
  );
  const { recovery_code: _code, ...withoutCode } = recoveryGrantParams("t", "X");
  assertOAuthError(
    await postTokenForm(service(), withoutCode),
    400,
    "invalid_request",
    "Missing required parameter: recovery_code",
  );
});

test("row 4: mfa_token / otp not a string (JSON) → 400 invalid_request", async () => {
  assertOAuthError(
    await postTokenJson(service(), { ...otpGrantParams("t", "123456"), mfa_token: 42 }),
    400,
    "invalid_request",
    "mfa_token must be a string",
  );
  assertOAuthError(
    await postTokenJson(service(), { ...otpGrantParams("t", "123456"), otp: 123456 }),
    400,
    "invalid_request",
    "otp must be a string",
  );
  assertOAuthError(
    await postTokenJson(service(), { ...otpGrantParams("t", "123456"), otp: ["123456"] }),
    400,
    "invalid_request",
    "otp must be a string",
  );
  assertOAuthError(
    await postTokenJson(service(), { ...recoveryGrantParams("t", "X"), recovery_code: {} }),
    400,
    "invalid_request",
    "recovery_code must be a string",
  );
});

test("row 5: unparsable mfa_token → 400 invalid_grant (also on /mfa/*)", async () => {
  assertOAuthError(
    await verifyOtp(service(), "not-an-mfa-token", "123456"),
    400,
    "invalid_grant",
    "Malformed mfa_token",
  );
  assertOAuthError(
    await rest(service(), "GET", "/mfa/authenticators", { mfaToken: "mt1.AAAA" }),
    400,
    "invalid_grant",
    "Malformed mfa_token",
  );
});

test("row 6: used mfa_token → 400 expired_token (also on /mfa/*)", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  await verifyNow(service(), mfaToken, secret);
  assertExpired(await verifyOtp(service(), mfaToken, codeAt(service(), secret)));
  assertExpired(await rest(service(), "GET", "/mfa/authenticators", { mfaToken }));
});

test("row 7: mfa_token issued to another client → 400 invalid_request", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  const result = await postTokenForm(service(), {
    grant_type: MFA_OTP_GRANT,
    client_id: CLIENTS.public.id,
    mfa_token: mfaToken,
    otp: codeAt(service(), secret),
  });
  assertOAuthError(result, 400, "invalid_request", "mfa_token not issued to this client");
});

test("row 8: failure bucket empty → 429 too_many_attempts with Retry-After", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  await failTimes(service(), mfaToken, secret, 10);
  assertLocked(await verifyOtp(service(), mfaToken, wrongCode(service(), secret)), "360");
});

test("row 9: wrong, stale or replayed code, or no authenticator → 400 invalid_grant", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  for (const code of [
    wrongCode(service(), secret),
    codeAt(service(), secret, -2),
    codeAt(service(), secret, 1),
  ]) {
    assertOAuthError(
      await verifyOtp(service(), mfaToken, code),
      400,
      "invalid_grant",
      "Invalid otp_code.",
    );
  }
  // The code enrolledUser accepted one step ago is still in the window, but replayed.
  assertOAuthError(
    await verifyOtp(service(), mfaToken, codeAt(service(), secret, -1)),
    400,
    "invalid_grant",
    "Invalid otp_code.",
  );
  const stranger = await issueMfaToken(service(), uniqueUserId("no-authenticator"));
  assertOAuthError(
    await verifyOtp(service(), stranger, "123456"),
    400,
    "invalid_grant",
    "Invalid otp_code.",
  );
});

test("row 10: unknown grant_type → 400 unsupported_grant_type", async () => {
  assertOAuthError(
    await postTokenForm(service(), { grant_type: "password", username: "u", password: "p" }),
    400,
    "unsupported_grant_type",
    "Unsupported grant type: password",
  );
});

test("row 12: store unreachable → 503 temporarily_unavailable", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  const restore = breakStore(service(), () => new StoreUnavailableError("connect ECONNREFUSED"));
  try {
    const result = await verifyOtp(service(), mfaToken, codeAt(service(), secret));
    assertOAuthError(result, 503, "temporarily_unavailable", "Service temporarily unavailable");
    assert.equal(result.headers.get("retry-after"), "1");
    assertOAuthError(
      await associateRest(service(), mfaToken),
      503,
      "temporarily_unavailable",
      "Service temporarily unavailable",
    );
  } finally {
    restore();
  }
});

test("row 13: anything unexpected → 500 server_error, no detail leaked", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  const restore = breakStore(service(), () => new TypeError("secret internals at line 42"));
  try {
    const result = await verifyOtp(service(), mfaToken, codeAt(service(), secret));
    assertOAuthError(result, 500, "server_error", "Internal error");
    assert.ok(!JSON.stringify(result.body).includes("internals"));
  } finally {
    restore();
  }
  // The cause is logged for the operator.
  assert.ok(service().logs.some((line) => line.includes("secret internals at line 42")));
});

test("row 14: malformed body 400, wrong content type 415, over 64 KiB 413", async () => {
  const post = (contentType: string, body: string) =>
    rest(service(), "POST", "/oauth/token", { headers: { "content-type": contentType }, body });
  const cases: [Awaited<ReturnType<typeof post>>, number][] = [
    [await post("application/json", '{"grant_type":'), 400],
    [await post("application/json", '["grant_type"]'), 400],
    [await post("application/x-www-form-urlencoded", "otp=1&otp=2"), 400],
    [await post("text/plain", `grant_type=${MFA_OTP_GRANT}`), 415],
    [await post("application/x-www-form-urlencoded", `a=${"x".repeat(64 * 1024)}`), 413],
  ];
  for (const [result, status] of cases) {
    assert.equal(result.status, status);
    const body = result.body as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ["error", "error_description"]);
    assert.equal(body.error, "invalid_request");
    assert.ok(typeof body.error_description === "string" && body.error_description.length > 0);
    assert.equal(result.headers.get("cache-control"), "no-store");
  }
});

test("row 15: Associate while enrolled → 403 access_denied", async () => {
  const { mfaToken } = await readyToVerify(service());
  assertOAuthError(
    await associateRest(service(), mfaToken),
    403,
    "access_denied",
    "User is already enrolled.",
  );
});

test("row 16: wrong recovery code → 400 invalid_grant", async () => {
  const { mfaToken } = await readyToVerify(service());
  assertOAuthError(
    await postTokenForm(service(), recoveryGrantParams(mfaToken, "0000-0000-0000-0000-0000-0000")),
    400,
    "invalid_grant",
    "Invalid recovery_code.",
  );
});

test("row 17: unknown authenticator id, or another user's → 404 not_found", async () => {
  const { userId, secret } = await readyToVerify(service());
  const other = await readyToVerify(service());
  const [otherAuthenticator] = (
    await rest(service(), "GET", "/mfa/authenticators", { mfaToken: other.mfaToken })
  ).body as { id: string }[];
  const accessToken = await mfaApiToken(service(), userId, secret);
  for (const id of ["totp|unknown", "unknown", otherAuthenticator?.id ?? "?"]) {
    assertOAuthError(
      await rest(service(), "DELETE", `/mfa/authenticators/${encodeURIComponent(id)}`, {
        mfaToken: accessToken,
      }),
      404,
      "not_found",
      "Authenticator not found",
    );
  }
});

test("/mfa/*: a missing bearer is row 3", async () => {
  assertOAuthError(
    await rest(service(), "GET", "/mfa/authenticators"),
    400,
    "invalid_request",
    "Missing required parameter: mfa_token",
  );
});
