// docs/api.md tokens, checked with jose against the published JWKS: RFC 9068 access token,
// OIDC id_token only for "openid", amr per grant, Bearer token type, no-store.

import assert from "node:assert/strict";
import { test } from "node:test";
import { createLocalJWKSet, decodeProtectedHeader, type JWTPayload, jwtVerify } from "jose";
import {
  associateRest,
  codeAt,
  enrolledUser,
  issueMfaToken,
  postTokenForm,
  recoveryGrantParams,
  uniqueUserId,
  useService,
  verifyOtp,
} from "../support/flows.js";
import { CLIENTS } from "../support/test-service.js";

const service = useService();
const AUDIENCE = "https://api.example.test";

async function verifier() {
  const response = await fetch(`${service().baseUrl}/.well-known/jwks.json`);
  assert.equal(response.status, 200);
  const jwks = (await response.json()) as { keys: { kid: string; d?: string }[] };
  assert.ok(jwks.keys.length > 0 && jwks.keys.every((k) => k.d === undefined && k.kid));
  const keySet = createLocalJWKSet(jwks);
  const issuer = service().app.ctx.config.issuerUrl;
  return {
    kids: jwks.keys.map((k) => k.kid),
    accessToken: (token: string) =>
      jwtVerify(token, keySet, { issuer, typ: "at+jwt", currentDate: now() }),
    idToken: (token: string, audience: string) =>
      jwtVerify(token, keySet, { issuer, audience, currentDate: now() }),
  };
}

const now = () => new Date(service().clock.nowMs());

/** A successful mfa-otp grant for a new enrolled user with this scope. */
async function otpGrant(scope: string) {
  const { userId, secret } = await enrolledUser(service());
  const mfaToken = await issueMfaToken(service(), userId, { scope, audience: AUDIENCE });
  const result = await verifyOtp(service(), mfaToken, codeAt(service(), secret));
  assert.equal(result.status, 200, JSON.stringify(result.body));
  assert.equal(result.headers.get("cache-control"), "no-store");
  return { userId, body: result.body };
}

test("the access token: at+jwt, kid, and every RFC 9068 claim", async () => {
  const { userId, body } = await otpGrant("openid profile");
  const iat = Math.floor(service().clock.nowMs() / 1000);
  assert.deepEqual(
    [body.token_type, body.expires_in, body.scope],
    ["Bearer", 86_400, "openid profile"],
  );
  const verify = await verifier();
  const { payload, protectedHeader } = await verify.accessToken(String(body.access_token));
  assert.equal(protectedHeader.typ, "at+jwt");
  assert.ok(verify.kids.includes(protectedHeader.kid ?? ""));
  const { jti, ...claims } = payload as JWTPayload & { jti: string };
  assert.match(jti, /^[A-Za-z0-9_-]{16,}$/);
  assert.deepEqual(claims, {
    iss: service().app.ctx.config.issuerUrl,
    sub: userId,
    aud: AUDIENCE,
    client_id: CLIENTS.post.id,
    iat,
    exp: iat + 86_400,
    scope: "openid profile",
    amr: ["mfa", "otp"],
    // When the second factor was proven (SPEC §4).
    auth_time: iat,
  });
});

test("every access token has its own jti", async () => {
  const verify = await verifier();
  const first = await verify.accessToken(String((await otpGrant("a")).body.access_token));
  const second = await verify.accessToken(String((await otpGrant("a")).body.access_token));
  assert.notEqual(first.payload.jti, second.payload.jti);
});

test("with openid: an id_token for the client (aud = client_id), signed with a kid", async () => {
  const { userId, body } = await otpGrant("openid email");
  const token = String(body.id_token);
  assert.ok(decodeProtectedHeader(token).kid);
  const { payload } = await (await verifier()).idToken(token, CLIENTS.post.id);
  assert.deepEqual(
    [payload.sub, payload.aud, payload.amr],
    [userId, CLIENTS.post.id, ["mfa", "otp"]],
  );
});

test("without openid: no id_token at all", async () => {
  for (const scope of ["profile email", "openidx", ""]) {
    const { body } = await otpGrant(scope);
    assert.equal("id_token" in body, false, scope);
    assert.equal(body.scope, scope);
  }
});

test("without an audience the client is the audience", async () => {
  const { userId, secret } = await enrolledUser(service());
  const mfaToken = await issueMfaToken(service(), userId, { audience: "" });
  const result = await verifyOtp(service(), mfaToken, codeAt(service(), secret));
  const { payload } = await (await verifier()).accessToken(String(result.body.access_token));
  assert.equal(payload.aud, CLIENTS.post.id);
});

test("the recovery grant: amr ['mfa'], the new recovery code alongside", async () => {
  const userId = uniqueUserId("recovery");
  const associated = await associateRest(service(), await issueMfaToken(service(), userId));
  const [code = ""] = (associated.body as { recovery_codes: string[] }).recovery_codes;
  const mfaToken = await issueMfaToken(service(), userId, { scope: "openid", audience: AUDIENCE });
  const result = await postTokenForm(service(), recoveryGrantParams(mfaToken, code));
  assert.equal(result.status, 200, JSON.stringify(result.body));
  assert.deepEqual(Object.keys(result.body).sort(), [
    "access_token",
    "expires_in",
    "id_token",
    "recovery_code",
    "scope",
    "token_type",
  ]);
  const verify = await verifier();
  const { payload } = await verify.accessToken(String(result.body.access_token));
  assert.deepEqual([payload.sub, payload.amr], [userId, ["mfa"]]);
  const idToken = await verify.idToken(String(result.body.id_token), CLIENTS.post.id);
  assert.deepEqual(idToken.payload.amr, ["mfa"]);
});
