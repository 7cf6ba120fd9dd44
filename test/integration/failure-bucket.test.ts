// docs/api.md failure bucket with the fake clock: capacity 10 per user across mfa_tokens,
// one attempt back every 360 s, a success does not refill, empty refuses every code.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  codeAt,
  enrolledUser,
  failTimes,
  issueMfaToken,
  postTokenForm,
  recoveryGrantParams,
  useService,
  verifyNow,
  verifyOtp,
  wrongCode,
} from "../support/flows.js";
import { assertLocked, assertOAuthError } from "../support/oauth-assertions.js";

const service = useService();

/** An enrolled user and a way to get fresh mfa_tokens for them. */
async function freshUser() {
  const { userId, secret } = await enrolledUser(service());
  return { userId, secret, token: () => issueMfaToken(service(), userId) };
}

test("10 wrong codes across several mfa_tokens, then the 11th is 429 with Retry-After 360", async () => {
  const user = await freshUser();
  await failTimes(service(), await user.token(), user.secret, 4);
  await failTimes(service(), await user.token(), user.secret, 6);
  const third = await user.token();
  assertLocked(await verifyOtp(service(), third, wrongCode(service(), user.secret)), "360");
  // The right code is refused too, while the bucket is empty.
  assertLocked(await verifyOtp(service(), third, codeAt(service(), user.secret)), "360");
});

test("Retry-After counts down to the refill", async () => {
  const user = await freshUser();
  const mfaToken = await user.token();
  await failTimes(service(), mfaToken, user.secret, 10);
  service().clock.advance(100_500);
  assertLocked(await verifyOtp(service(), mfaToken, codeAt(service(), user.secret)), "260");
});

test("after 360 s exactly one attempt refills", async () => {
  const user = await freshUser();
  const mfaToken = await user.token();
  await failTimes(service(), mfaToken, user.secret, 10);
  service().clock.advance(360_000);
  await failTimes(service(), mfaToken, user.secret, 1);
  assertLocked(await verifyOtp(service(), mfaToken, wrongCode(service(), user.secret)), "360");
  service().clock.advance(360_000);
  // 720 s outlive the first mfa_token (600 s).
  await verifyNow(service(), await user.token(), user.secret);
});

test("a success does not refill the bucket", async () => {
  const user = await freshUser();
  await failTimes(service(), await user.token(), user.secret, 9);
  await verifyNow(service(), await user.token(), user.secret);
  // One attempt was left before the success and one is left after it.
  const mfaToken = await user.token();
  await failTimes(service(), mfaToken, user.secret, 1);
  assert.equal(
    (await verifyOtp(service(), mfaToken, wrongCode(service(), user.secret))).status,
    429,
  );
});

test("the bucket is per user", async () => {
  const locked = await freshUser();
  await failTimes(service(), await locked.token(), locked.secret, 10);
  const other = await freshUser();
  await verifyNow(service(), await other.token(), other.secret);
});

test("wrong recovery codes drain the same bucket", async () => {
  const user = await freshUser();
  const mfaToken = await user.token();
  for (let i = 0; i < 10; i++) {
    const result = await postTokenForm(service(), recoveryGrantParams(mfaToken, `WRONG${i}`));
    assertOAuthError(result, 400, "invalid_grant", "Invalid recovery_code.");
  }
  assertLocked(await verifyOtp(service(), mfaToken, codeAt(service(), user.secret)), "360");
  assertLocked(await postTokenForm(service(), recoveryGrantParams(mfaToken, "WRONG")), "360");
});
