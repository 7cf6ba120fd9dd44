/**
 * docs/architecture.md "Nothing secret is logged": run every kind of flow with the
 * service logging at debug level and the access log on, then scan everything
 * it wrote for the codes, TOTP secrets, mfa_tokens, issued tokens (refresh
 * tokens included), client secrets, recovery codes, DPoP proofs and the
 * internal API key those flows used.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { createMfaTokenCodec } from "../../src/mfa/mfa-token-codec.js";
import { decodeBase32Secret } from "../../src/mfa/totp.js";
import { createRefreshTokenCodec } from "../../src/oauth/sessions/refresh-token-codec.js";
import { dpopProof } from "../support/dpop.js";
import {
  clientsFor,
  freshCode,
  issueMfaToken,
  MFA_OTP_GRANT,
  otpGrantParams,
  otpRpcRequest,
  postTokenForm,
  postTokenJson,
  recoveryGrantParams,
  uniqueUserId,
  wrongCode,
} from "../support/flows.js";
import { assertOAuthError, assertRpcError } from "../support/oauth-assertions.js";
import { freePort } from "../support/redis-server.js";
import {
  assertRevoked,
  INVALID_REFRESH_TOKEN,
  postRefresh,
  postRevoke,
  refresh,
  rpcCredentials,
  SESSION_CLIENTS,
  login as sessionLogin,
  sessionUser,
} from "../support/session-flows.js";
import {
  CLIENTS,
  startTestService,
  TEST_INTERNAL_API_KEY,
  type TestService,
} from "../support/test-service.js";

/** Everything logged: debug lines and one access line per request. */
const DEBUG = { LOG_LEVEL: "debug", ACCESS_LOG: "true" };

/** Every secret the flows handled; six-digit codes are matched as whole numbers only. */
const secrets = new Set<string>([
  TEST_INTERNAL_API_KEY,
  CLIENTS.post.secret,
  CLIENTS.basic.secret,
  CLIENTS.noGrant.secret,
]);
const codes = new Set<string>();

function keepSecret(...values: unknown[]): void {
  for (const value of values) {
    assert.equal(typeof value, "string");
    assert.ok((value as string).length >= 8, "a secret long enough to search for");
    secrets.add(value as string);
  }
}

function keepTotpSecret(secret: string): void {
  const raw = Buffer.from(decodeBase32Secret(secret));
  keepSecret(secret, raw.toString("hex"), raw.toString("base64"), raw.toString("base64url"));
}

/** The mfa_token of a fresh login, remembered as a secret. */
async function login(
  service: TestService,
  userId: string,
  clientId: string = CLIENTS.post.id,
): Promise<string> {
  const mfaToken = await issueMfaToken(service, userId, { clientId });
  keepSecret(mfaToken);
  return mfaToken;
}

/** Associates over REST and keeps the secret and recovery code. */
async function associateRest(
  service: TestService,
  mfaToken: string,
): Promise<{ secret: string; recoveryCode: string }> {
  const response = await fetch(`${service.baseUrl}/mfa/associate`, {
    method: "POST",
    headers: { authorization: `Bearer ${mfaToken}`, "content-type": "application/json" },
    body: JSON.stringify({ authenticator_types: ["otp"] }),
  });
  assert.equal(response.status, 200);
  const body = (await response.json()) as { secret: string; recovery_codes: string[] };
  const [recoveryCode = ""] = body.recovery_codes;
  keepTotpSecret(body.secret);
  keepSecret(recoveryCode);
  return { secret: body.secret, recoveryCode };
}

function keepTokens(body: Record<string, unknown>): void {
  keepSecret(body.access_token);
  if (body.id_token !== undefined) keepSecret(body.id_token);
  if (body.recovery_code !== undefined) keepSecret(body.recovery_code);
  if (body.refresh_token !== undefined) keepSecret(body.refresh_token);
}

const services: TestService[] = [];
after(() => Promise.all(services.map((s) => s.close())));

let service: TestService;
before(async () => {
  service = await startTestService({ env: DEBUG });
  services.push(service);
});

test("enroll, verify, wrong codes, recovery, lockout (client_secret_post)", async () => {
  const userId = uniqueUserId("logs");
  const { secret, recoveryCode } = await associateRest(service, await login(service, userId));

  const code = freshCode(service, secret);
  codes.add(code);
  const mfaToken = await login(service, userId);
  const ok = await postTokenForm(service, otpGrantParams(mfaToken, code));
  assert.equal(ok.status, 200);
  keepTokens(ok.body);
  assertOAuthError(
    await postTokenForm(service, otpGrantParams(mfaToken, code)),
    400,
    "expired_token",
    "mfa_token is expired",
  );

  const recovered = await postTokenJson(
    service,
    recoveryGrantParams(await login(service, userId), recoveryCode),
  );
  assert.equal(recovered.status, 200);
  keepTokens(recovered.body);

  // Wrong codes until the bucket is empty: row 9 ten times, then row 8.
  const retryToken = await login(service, userId);
  for (let attempt = 0; attempt < 10; attempt++) {
    const wrong = wrongCode(service, secret);
    codes.add(wrong);
    assertOAuthError(
      await postTokenJson(service, otpGrantParams(retryToken, wrong)),
      400,
      "invalid_grant",
      "Invalid otp_code.",
    );
  }
  const rightButLocked = freshCode(service, secret);
  codes.add(rightButLocked);
  const locked = await postTokenForm(service, otpGrantParams(retryToken, rightButLocked));
  assert.equal(locked.status, 429);
  assertOAuthError(
    await postTokenForm(
      service,
      recoveryGrantParams(retryToken, String(recovered.body.recovery_code)),
    ),
    429,
    "too_many_attempts",
    "Too many failed attempts. Try again later.",
  );
});

test("client_secret_basic, bad credentials, bad grants, bad tokens, DPoP, RPC", async () => {
  const userId = uniqueUserId("logs-basic");
  const { secret } = await associateRest(service, await login(service, userId, CLIENTS.basic.id));
  const basic = (id: string, clientSecret: string) => {
    const encoded = Buffer.from(`${id}:${clientSecret}`).toString("base64");
    keepSecret(encoded);
    return { authorization: `Basic ${encoded}` };
  };

  const code = freshCode(service, secret);
  codes.add(code);
  const params = (mfaToken: string, otp: string) => ({
    grant_type: MFA_OTP_GRANT,
    mfa_token: mfaToken,
    otp,
  });
  const ok = await postTokenForm(
    service,
    params(await login(service, userId, CLIENTS.basic.id), code),
    basic(CLIENTS.basic.id, CLIENTS.basic.secret),
  );
  assert.equal(ok.status, 200);
  keepTokens(ok.body);

  const wrongSecret = "not-the-basic-client-secret-42";
  keepSecret(wrongSecret);
  assertOAuthError(
    await postTokenForm(
      service,
      params(await login(service, userId, CLIENTS.basic.id), code),
      basic(CLIENTS.basic.id, wrongSecret),
    ),
    401,
    "access_denied",
    "Unauthorized",
  );
  assertOAuthError(
    await postTokenForm(service, {
      ...otpGrantParams(await login(service, userId), code),
      client_secret: wrongSecret,
    }),
    401,
    "access_denied",
    "Unauthorized",
  );
  assertOAuthError(
    await postTokenForm(service, {
      ...otpGrantParams(await login(service, userId), code),
      grant_type: "password",
    }),
    400,
    "unsupported_grant_type",
    "Unsupported grant type: password",
  );
  const tampered = `${await login(service, userId)}x`;
  keepSecret(tampered);
  assertOAuthError(
    await postTokenJson(service, otpGrantParams(tampered, code)),
    400,
    "invalid_grant",
    "Malformed mfa_token",
  );

  // A DPoP proof for another URL is rejected (logged at debug without the proof).
  const proof = await dpopProof(service, "https://elsewhere.example/oauth/token");
  keepSecret(proof);
  const rejected = await postTokenForm(
    service,
    otpGrantParams(await login(service, userId), code),
    { dpop: proof },
  );
  assert.equal(rejected.status, 400);
  assert.equal(rejected.body.error, "invalid_dpop_proof");

  // The RPC surface: a wrong internal key, a wrong code, an associate refused.
  const wrongKey = "not-the-internal-api-key-0123";
  keepSecret(wrongKey);
  const rpc = clientsFor(service, "grpc");
  await assertRpcError(
    rpc.mfaToken.issueMfaToken(
      { userId, clientId: CLIENTS.post.id },
      { headers: { authorization: `Bearer ${wrongKey}` } },
    ),
    Code.Unauthenticated,
    "access_denied",
    "Unauthorized",
  );
  const rpcWrong = wrongCode(service, secret);
  codes.add(rpcWrong);
  await assertRpcError(
    rpc.token.verifyMfaOtp(otpRpcRequest(await login(service, userId), rpcWrong)),
    Code.FailedPrecondition,
    "invalid_grant",
    "Invalid otp_code.",
  );
  await assertRpcError(
    rpc.mfa.associate({ mfaToken: await login(service, userId) }),
    Code.PermissionDenied,
    "access_denied",
    "User is already enrolled.",
  );
});

test("sessions: refresh, rotation, reuse, revoke, revoke-all (REST and RPC)", async () => {
  const user = await sessionUser(service);
  const loginBody = await sessionLogin(service, user, SESSION_CLIENTS.rotating);
  keepTokens(loginBody);
  const first = String(loginBody.refresh_token);
  const refreshed = await refresh(service, SESSION_CLIENTS.rotating, first, { encoding: "json" });
  keepTokens(refreshed);
  // A reuse (logged as a security event, without the token), then the revoked family.
  assertOAuthError(
    await postRefresh(service, SESSION_CLIENTS.rotating, first),
    400,
    "invalid_grant",
    INVALID_REFRESH_TOKEN,
  );
  const second = await sessionLogin(service, user, SESSION_CLIENTS.rotating);
  keepTokens(second);
  const rpc = clientsFor(service, "grpc");
  const { fields } = rpcCredentials(SESSION_CLIENTS.rotating);
  const rpcRefreshed = await rpc.token.refreshToken({
    refreshToken: String(second.refresh_token),
    ...fields,
  });
  keepSecret(rpcRefreshed.refreshToken, rpcRefreshed.accessToken, rpcRefreshed.idToken);
  // Another client's token, refused; then revoked by its owner, and revoke-all.
  assertOAuthError(
    await postRefresh(service, SESSION_CLIENTS.leeway, rpcRefreshed.refreshToken),
    400,
    "invalid_grant",
    INVALID_REFRESH_TOKEN,
  );
  assertRevoked(
    await postRevoke(service, SESSION_CLIENTS.rotating, { token: rpcRefreshed.refreshToken }),
  );
  await rpc.token.revokeToken({ token: String(refreshed.refresh_token), ...fields });
  keepTokens(await sessionLogin(service, user, SESSION_CLIENTS.nonRotating));
  await rpc.mfaToken.revokeUserSessions(
    { userId: user.userId },
    { headers: { authorization: `Bearer ${TEST_INTERNAL_API_KEY}` } },
  );
  assert.ok(service.logs.some((line) => line.includes('"event":"refresh_token_reuse_detected"')));
  assert.ok(service.logs.some((line) => line.includes('"event":"sessions_revoked"')));
});

test("store outage: causes are logged, secrets are not", async () => {
  // Nothing listens on this port: every store call fails and is logged as an error.
  const down = await startTestService({
    store: "redis",
    redisUrl: `redis://127.0.0.1:${await freePort()}`,
    env: DEBUG,
  });
  services.push(down);
  // Sealed as the service seals them (IssueMfaToken needs the store, which is down).
  const mfaToken = createMfaTokenCodec(down.app.ctx.config.secretsKey).issue({
    userId: uniqueUserId("logs-down"),
    clientId: CLIENTS.post.id,
    audience: "",
    scope: "openid",
    userLabel: "",
    expiresAt: Math.floor(down.clock.nowMs() / 1000) + 600,
  }).token;
  keepSecret(mfaToken);
  codes.add("246813");
  assertOAuthError(
    await postTokenForm(down, otpGrantParams(mfaToken, "246813")),
    503,
    "temporarily_unavailable",
    "Service temporarily unavailable",
  );
  // An outage is logged once, with its cause (store-outage-log.ts).
  assert.ok(down.logs.some((line) => line.includes('"event":"store_unavailable"')));

  // A refresh token sealed as the service seals it, exchanged while the store is down.
  const refreshToken = createRefreshTokenCodec(down.app.ctx.config.secretsKey).seal({
    userId: uniqueUserId("logs-down"),
    familyId: "family-of-the-outage",
    clientId: SESSION_CLIENTS.rotating.id,
    audience: "",
    scope: "offline_access",
    amr: ["mfa", "otp"],
    authTime: Math.floor(down.clock.nowMs() / 1000),
  });
  keepSecret(refreshToken);
  assertOAuthError(
    await postRefresh(down, SESSION_CLIENTS.rotating, refreshToken),
    503,
    "temporarily_unavailable",
    "Service temporarily unavailable",
  );
});

test("no secret appears in any captured log line", () => {
  const lines = services.flatMap((s) => s.logs);
  // The capture works and saw debug and error lines.
  assert.ok(lines.some((line) => line.includes('"event":"dpop_rejected"')));
  assert.ok(lines.some((line) => line.includes('"event":"store_unavailable"')));
  // The access log was on: a line per request, REST and RPC, errors and successes.
  const access = lines.filter((line) => line.includes('"event":"access"'));
  for (const surface of ["rest", "connect", "grpc"]) {
    assert.ok(
      access.some((line) => line.includes(`"surface":"${surface}"`)),
      surface,
    );
  }
  assert.ok(access.some((line) => line.includes('"route":"/oauth/token","status":200')));
  assert.ok(access.some((line) => line.includes('"error":"too_many_attempts"')));
  const text = lines.join("");
  for (const secret of secrets) {
    assert.equal(text.includes(secret), false, `a secret of ${secret.length} chars is logged`);
  }
  assert.ok(codes.size >= 4);
  for (const code of codes) {
    assert.doesNotMatch(text, new RegExp(`(?<!\\d)${code}(?!\\d)`), "a code is logged");
  }
});
