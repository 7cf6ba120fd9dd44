// docs/api.md replay guard on the memory store: a code is accepted once per authenticator,
// and concurrent requests with one valid code yield exactly one token.

import assert from "node:assert/strict";
import { test } from "node:test";
import { codeAt, issueMfaToken, readyToVerify, useService, verifyOtp } from "../support/flows.js";

const service = useService();

async function statuses(requests: Promise<{ status: number }>[]): Promise<number[]> {
  return (await Promise.all(requests)).map((r) => r.status).sort();
}

test("one mfa_token, one code, 20 concurrent verifies: exactly one 200", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  const code = codeAt(service(), secret);
  const results = await statuses(
    Array.from({ length: 20 }, () => verifyOtp(service(), mfaToken, code)),
  );
  assert.deepEqual(results, [200, ...Array<number>(19).fill(400)]);
});

test("one code across 8 concurrent mfa_tokens: exactly one 200", async () => {
  // 8, not more: every refused replay takes an attempt from the user's bucket (10).
  const { userId, secret } = await readyToVerify(service());
  const tokens = await Promise.all(
    Array.from({ length: 8 }, () => issueMfaToken(service(), userId)),
  );
  const code = codeAt(service(), secret);
  const results = await statuses(tokens.map((t) => verifyOtp(service(), t, code)));
  assert.deepEqual(results, [200, ...Array<number>(7).fill(400)]);
});

test("an accepted step closes the previous step's code too", async () => {
  const { userId, secret } = await readyToVerify(service());
  // Accept the current step, then the previous step's (still in the window) is older: refused.
  const first = await verifyOtp(
    service(),
    await issueMfaToken(service(), userId),
    codeAt(service(), secret),
  );
  assert.equal(first.status, 200);
  const stale = await verifyOtp(
    service(),
    await issueMfaToken(service(), userId),
    codeAt(service(), secret, -1),
  );
  assert.deepEqual(stale.body, { error: "invalid_grant", error_description: "Invalid otp_code." });
});
