// docs/api.md mfa_token over REST: lifetime, single use, client binding, tamper evidence.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  associateRest,
  basicAuth,
  clientsFor,
  codeAt,
  internalAuth,
  issueMfaToken,
  MFA_OTP_GRANT,
  postTokenForm,
  readyToVerify,
  rest,
  useService,
  verifyNow,
  verifyOtp,
  wrongCode,
} from "../support/flows.js";
import { assertExpired, assertOAuthError } from "../support/oauth-assertions.js";
import { CLIENTS } from "../support/test-service.js";

const service = useService({ env: { MFA_TOKEN_TTL_SECONDS: "60" } });

test("IssueMfaToken reports the configured lifetime", async () => {
  const response = await clientsFor(service()).mfaToken.issueMfaToken(
    { userId: "u", clientId: CLIENTS.post.id, audience: "", scope: "", userLabel: "" },
    internalAuth,
  );
  assert.equal(response.expiresIn, 60);
});

test("a token is live until its TTL, then expired_token", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  service().clock.advance(59_000);
  // A wrong code within the lifetime is row 9 (the token may be retried).
  assertOAuthError(
    await verifyOtp(service(), mfaToken, wrongCode(service(), secret)),
    400,
    "invalid_grant",
    "Invalid otp_code.",
  );
  service().clock.advance(2_000);
  assertExpired(await verifyOtp(service(), mfaToken, codeAt(service(), secret)));
  assertExpired(await rest(service(), "GET", "/mfa/authenticators", { mfaToken }));
  assertExpired(await associateRest(service(), mfaToken));
});

test("a token issued late in a second still lives its whole TTL", async () => {
  const { userId, secret } = await readyToVerify(service());
  const now = service().clock.nowMs();
  service().clock.set(Math.floor(now / 1000) * 1000 + 1_999);
  const mfaToken = await issueMfaToken(service(), userId);
  // 59.5 s after issuance, with expires_in 60: still live (a wrong code is row 9, not row 6).
  service().clock.advance(59_500);
  assertOAuthError(
    await verifyOtp(service(), mfaToken, wrongCode(service(), secret)),
    400,
    "invalid_grant",
    "Invalid otp_code.",
  );
});

test("a token may be retried after a wrong code, and is consumed by the first success", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  assert.equal((await verifyOtp(service(), mfaToken, wrongCode(service(), secret))).status, 400);
  await verifyNow(service(), mfaToken, secret);
  assertExpired(await verifyOtp(service(), mfaToken, codeAt(service(), secret)));
});

test("a token issued to the post client is refused to the basic client (row 7)", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  const result = await postTokenForm(
    service(),
    { grant_type: MFA_OTP_GRANT, mfa_token: mfaToken, otp: codeAt(service(), secret) },
    { authorization: basicAuth(CLIENTS.basic.id, CLIENTS.basic.secret) },
  );
  assertOAuthError(result, 400, "invalid_request", "mfa_token not issued to this client");
});

test("a tampered token is malformed (row 5)", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  const middle = Math.floor(mfaToken.length / 2);
  const flipped = mfaToken[middle] === "A" ? "B" : "A";
  const tampered = `${mfaToken.slice(0, middle)}${flipped}${mfaToken.slice(middle + 1)}`;
  for (const token of [tampered, mfaToken.slice(0, -4), `${mfaToken}AAAA`, mfaToken.slice(4)]) {
    assertOAuthError(
      await verifyOtp(service(), token, codeAt(service(), secret)),
      400,
      "invalid_grant",
      "Malformed mfa_token",
    );
  }
  // The genuine token is untouched by those attempts.
  await verifyNow(service(), mfaToken, secret);
});
