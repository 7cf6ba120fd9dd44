// docs/api.md enrollment over REST: pending → active, replacement of a pending
// authenticator, recovery codes, barcode_uri, delete; and the mfa_requirements it drives.

import assert from "node:assert/strict";
import { test } from "node:test";
import { barcodeUri } from "../../src/mfa/enrollment.js";
import {
  associateRest,
  clientsFor,
  codeAt,
  internalAuth,
  issueMfaToken,
  mfaApiToken,
  postTokenForm,
  recoveryGrantParams,
  rest,
  uniqueUserId,
  useService,
  verifyNow,
  verifyOtp,
} from "../support/flows.js";
import { assertOAuthError } from "../support/oauth-assertions.js";
import { CLIENTS } from "../support/test-service.js";

const service = useService();

interface Associated {
  authenticator_type: string;
  secret: string;
  barcode_uri: string;
  recovery_codes?: string[];
}

async function associateOk(mfaToken: string): Promise<Associated> {
  const result = await associateRest(service(), mfaToken);
  assert.equal(result.status, 200, JSON.stringify(result.body));
  assert.equal(result.headers.get("cache-control"), "no-store");
  return result.body as Associated;
}

async function list(mfaToken: string) {
  const result = await rest(service(), "GET", "/mfa/authenticators", { mfaToken });
  assert.equal(result.status, 200);
  return result.body as { id: string; authenticator_type: string; active: boolean; type: string }[];
}

async function requirementOf(userId: string): Promise<string> {
  const { mfaRequirements } = await clientsFor(service()).mfaToken.issueMfaToken(
    { userId, clientId: CLIENTS.post.id, audience: "", scope: "", userLabel: "" },
    internalAuth,
  );
  assert.equal((mfaRequirements?.challenge.length ?? 0) + (mfaRequirements?.enroll.length ?? 0), 1);
  return mfaRequirements?.challenge[0]?.type === "otp" ? "challenge" : "enroll";
}

/** A new user with a pending authenticator: their id, a live mfa_token, the association. */
async function pendingUser() {
  const userId = uniqueUserId("enroll");
  const mfaToken = await issueMfaToken(service(), userId, { userLabel: "Jane Doe+1@example.test" });
  return { userId, mfaToken, associated: await associateOk(mfaToken) };
}

test("associate creates a pending OTP authenticator", async () => {
  const { userId, mfaToken, associated } = await pendingUser();
  assert.equal(associated.authenticator_type, "otp");
  assert.match(associated.secret, /^[A-Z2-7]{32}$/);
  assert.equal(
    associated.barcode_uri,
    `otpauth://totp/Token%20Service%20Test:Jane%20Doe%2B1%40example.test?secret=${associated.secret}` +
      "&issuer=Token%20Service%20Test&algorithm=SHA1&digits=6&period=30",
  );
  assert.equal(associated.recovery_codes?.length, 1);
  assert.match(associated.recovery_codes?.[0] ?? "", /^[0-9A-HJKMNP-TV-Z]{24}$/);
  const [authenticator, recoveryCode, ...rest] = await list(mfaToken);
  assert.deepEqual(rest, []);
  assert.match(authenticator?.id ?? "", /^totp\|.+/);
  assert.deepEqual(
    { ...authenticator, id: "" },
    { id: "", authenticator_type: "otp", active: false, type: "otp" },
  );
  // The first association stored a recovery code: Auth0 lists it after the OTP authenticator.
  assert.match(recoveryCode?.id ?? "", /^recovery-code\|.+/);
  assert.deepEqual(
    { ...recoveryCode, id: "" },
    { id: "", authenticator_type: "recovery-code", active: true, type: "recovery-code" },
  );
  assert.equal(await requirementOf(userId), "enroll");
});

test("a second associate replaces the pending one; recovery codes only the first time", async () => {
  const { userId, mfaToken, associated: first } = await pendingUser();
  const [firstEntry] = await list(mfaToken);
  const second = await associateOk(mfaToken);
  assert.notEqual(second.secret, first.secret);
  assert.equal(second.recovery_codes, undefined);
  const entries = await list(mfaToken);
  assert.equal(entries.length, 2);
  assert.notEqual(entries[0]?.id, firstEntry?.id);
  assert.equal(entries[0]?.active, false);

  const verifyToken = await issueMfaToken(service(), userId);
  assertOAuthError(
    await verifyOtp(service(), verifyToken, codeAt(service(), first.secret)),
    400,
    "invalid_grant",
    "Invalid otp_code.",
  );
  await verifyNow(service(), verifyToken, second.secret);
});

test("the first success activates it: list active, challenge, associate refused", async () => {
  const { userId, mfaToken, associated } = await pendingUser();
  // Any live mfa_token of the user activates it.
  const other = await issueMfaToken(service(), userId);
  await verifyNow(service(), other, associated.secret);
  assert.deepEqual(
    (await list(mfaToken)).map((a) => [a.authenticator_type, a.active]),
    [
      ["otp", true],
      ["recovery-code", true],
    ],
  );
  assert.equal(await requirementOf(userId), "challenge");
  assertOAuthError(
    await associateRest(service(), mfaToken),
    403,
    "access_denied",
    "User is already enrolled.",
  );
});

test("recovery code: redeemed once, replaced by a new code that works next time", async () => {
  const { userId, associated } = await pendingUser();
  const [firstCode = ""] = associated.recovery_codes ?? [];
  const redeemed = await postTokenForm(
    service(),
    recoveryGrantParams(await issueMfaToken(service(), userId), firstCode),
  );
  assert.equal(redeemed.status, 200, JSON.stringify(redeemed.body));
  assert.equal(redeemed.headers.get("cache-control"), "no-store");
  const newCode = String(redeemed.body.recovery_code);
  assert.match(newCode, /^[0-9A-HJKMNP-TV-Z]{24}$/);
  assert.notEqual(newCode, firstCode);
  assert.equal(typeof redeemed.body.access_token, "string");

  assertOAuthError(
    await postTokenForm(
      service(),
      recoveryGrantParams(await issueMfaToken(service(), userId), firstCode),
    ),
    400,
    "invalid_grant",
    "Invalid recovery_code.",
  );
  // Typed as users do: lower case, with dashes.
  const typed = newCode.toLowerCase().replace(/(.{4})(?!$)/g, "$1-");
  const again = await postTokenForm(
    service(),
    recoveryGrantParams(await issueMfaToken(service(), userId), typed),
  );
  assert.equal(again.status, 200, JSON.stringify(again.body));
});

test("delete: 204, then the list is empty and the id is 404; associate is allowed again", async () => {
  const { userId, mfaToken, associated } = await pendingUser();
  const verifyToken = await issueMfaToken(service(), userId);
  await verifyNow(service(), verifyToken, associated.secret);
  const [{ id = "" } = {}] = await list(mfaToken);
  const path = `/mfa/authenticators/${encodeURIComponent(id)}`;
  const accessToken = await mfaApiToken(service(), userId, associated.secret);
  const deleted = await rest(service(), "DELETE", path, { mfaToken: accessToken });
  assert.deepEqual([deleted.status, deleted.body], [204, null]);
  assert.deepEqual(
    (await list(mfaToken)).map((a) => a.authenticator_type),
    ["recovery-code"],
  );
  assertOAuthError(
    await rest(service(), "DELETE", path, { mfaToken: accessToken }),
    404,
    "not_found",
    "Authenticator not found",
  );
  assert.equal(await requirementOf(userId), "enroll");
  // No authenticator: a verify is row 9, and a new association is pending without new codes.
  const code = codeAt(service(), associated.secret);
  assertOAuthError(
    await verifyOtp(service(), await issueMfaToken(service(), userId), code),
    400,
    "invalid_grant",
    "Invalid otp_code.",
  );
  assert.equal((await associateOk(mfaToken)).recovery_codes, undefined);
});

test("the RPC takes the mfa_token from the Authorization header too", async () => {
  const { mfaToken } = await pendingUser();
  const response = await clientsFor(service()).mfa.listAuthenticators(
    { mfaToken: "" },
    { headers: { authorization: `Bearer ${mfaToken}` } },
  );
  assert.deepEqual(
    response.authenticators.map((a) => [a.authenticatorType, a.active]),
    [
      ["otp", false],
      ["recovery-code", true],
    ],
  );
});

test("barcodeUri percent-encodes issuer and label (encodeURIComponent)", () => {
  assert.equal(
    barcodeUri("Acme & Co: Prod", "a b/c?d#é", "JBSWY3DPEHPK3PXP"),
    "otpauth://totp/Acme%20%26%20Co%3A%20Prod:a%20b%2Fc%3Fd%23%C3%A9?secret=JBSWY3DPEHPK3PXP" +
      "&issuer=Acme%20%26%20Co%3A%20Prod&algorithm=SHA1&digits=6&period=30",
  );
});

test("without a user_label the barcode names the user id", async () => {
  const userId = uniqueUserId("no label");
  const mfaToken = await issueMfaToken(service(), userId, { userLabel: "" });
  const { barcode_uri } = await associateOk(mfaToken);
  assert.ok(
    barcode_uri.startsWith(`otpauth://totp/Token%20Service%20Test:${encodeURIComponent(userId)}?`),
  );
});
