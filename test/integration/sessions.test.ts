/**
 * Refresh-token sessions at the wire, on the default (memory) store: issuing
 * with the login, the refresh_token grant (rotation, reuse inside and outside
 * the leeway, absolute and idle expiry on the fake clock, down-scoping,
 * another client's token, a client without the grant), revocation
 * (RFC 7009) and RevokeUserSessions, DPoP-bound sessions (RFC 9449 §5), and
 * every error string of rows 21 and 22 plus the refresh and revoke wording of
 * rows 2 and 3 — on REST (form and JSON) and Connect.
 * Redis, gRPC and concurrency: sessions-redis.test.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import {
  dpopProofFor,
  generateTestKey,
  jwkThumbprint,
  jwtPayloadOf,
  rpcHtu,
} from "../support/dpop.js";
import {
  clientsFor,
  freshCode,
  internalAuth,
  MFA_OTP_GRANT,
  MFA_RECOVERY_CODE_GRANT,
  postTokenForm,
  uniqueUserId,
} from "../support/flows.js";
import { assertOAuthError, assertRpcError, rpcFailure } from "../support/oauth-assertions.js";
import {
  assertRevoked,
  INVALID_REFRESH_TOKEN,
  login,
  loginForRefreshToken,
  postRefresh,
  postRevoke,
  REFRESH_TOKEN_GRANT,
  refresh,
  rotate,
  rpcCredentials,
  SCOPE_EXCEEDS_GRANT,
  SESSION_CLIENTS,
  SESSION_SCOPE,
  type SessionClient,
  sessionUser,
} from "../support/session-flows.js";
import { startTestService, type TestService } from "../support/test-service.js";

const { rotating, leeway, nonRotating, short, withoutGrant } = SESSION_CLIENTS;
const publicClient = SESSION_CLIENTS.public;
const SECOND = 1000;
const DAY = 86_400 * SECOND;

let service: TestService;
before(async () => {
  service = await startTestService();
});
after(() => service.close());

/** A new user and a refresh token of theirs (a fresh session of `client`). */
async function session(client: SessionClient = rotating) {
  const user = await sessionUser(service);
  return { user, token: await loginForRefreshToken(service, user, client) };
}

function assertRow21(result: Parameters<typeof assertOAuthError>[0]): void {
  assertOAuthError(result, 400, "invalid_grant", INVALID_REFRESH_TOKEN);
}

/** The security events of one kind the service logged so far. */
function securityEvents(event: string): Record<string, unknown>[] {
  return service.logs
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => entry.event === event);
}

/** The RefreshToken RPC of `client` (Connect unless another protocol is given). */
function rpcRefresh(
  client: SessionClient,
  refreshToken: string,
  extra: { scope?: string; dpop?: string } = {},
) {
  const { fields, headers } = rpcCredentials(client);
  return clientsFor(service).token.refreshToken({ refreshToken, ...fields, ...extra }, { headers });
}

describe("issuing: a login with offline_access starts a session", () => {
  it("mfa-otp (REST): refresh_token beside the tokens; scope lists offline_access", async () => {
    const user = await sessionUser(service);
    const body = await login(service, user);
    assert.deepEqual(Object.keys(body).sort(), [
      "access_token",
      "expires_in",
      "id_token",
      "refresh_token",
      "scope",
      "token_type",
    ]);
    assert.match(String(body.refresh_token), /^rt1\.[A-Za-z0-9_-]+$/);
    assert.equal(body.scope, SESSION_SCOPE);
    assert.equal(body.token_type, "Bearer");
    assert.equal(jwtPayloadOf(String(body.access_token)).scope, SESSION_SCOPE);
  });

  it("no offline_access, or a client without the refresh_token grant: no refresh token", async () => {
    const user = await sessionUser(service);
    const plain = await login(service, user, rotating, { scope: "openid profile" });
    assert.equal(plain.refresh_token, undefined);
    const noGrant = await login(service, user, withoutGrant);
    assert.equal(noGrant.refresh_token, undefined);
    assert.equal(noGrant.scope, SESSION_SCOPE);
  });

  it("mfa-recovery-code (REST) starts one too, and its token is exchangeable", async () => {
    const userId = uniqueUserId("recovery");
    const { mfaToken: enrolToken, recoveryCodes } = await (async () => {
      const mfaToken = await clientsFor(service).mfaToken.issueMfaToken(
        { userId, clientId: rotating.id, scope: SESSION_SCOPE },
        internalAuth,
      );
      const associated = await clientsFor(service).mfa.associate({
        mfaToken: mfaToken.mfaToken,
        authenticatorTypes: ["otp"],
      });
      return { mfaToken: mfaToken.mfaToken, recoveryCodes: associated.recoveryCodes };
    })();
    const result = await postTokenForm(service, {
      grant_type: MFA_RECOVERY_CODE_GRANT,
      client_id: rotating.id,
      client_secret: rotating.secret,
      mfa_token: enrolToken,
      recovery_code: recoveryCodes[0] ?? "",
    });
    assert.equal(result.status, 200, JSON.stringify(result.body));
    assert.equal(typeof result.body.recovery_code, "string");
    const exchanged = await refresh(service, rotating, String(result.body.refresh_token));
    assert.deepEqual(jwtPayloadOf(String(exchanged.access_token)).amr, ["mfa"]);
  });

  it("VerifyMfaOtp (Connect) carries refresh_token; empty without offline_access", async () => {
    const user = await sessionUser(service);
    const { fields } = rpcCredentials(rotating);
    const withSession = await clientsFor(service).token.verifyMfaOtp({
      ...fields,
      mfaToken: (
        await clientsFor(service).mfaToken.issueMfaToken(
          { userId: user.userId, clientId: rotating.id, scope: SESSION_SCOPE },
          internalAuth,
        )
      ).mfaToken,
      otp: freshCode(service, user.secret),
    });
    assert.match(withSession.refreshToken, /^rt1\./);
    assert.equal(withSession.scope, SESSION_SCOPE);
    const without = await clientsFor(service).token.verifyMfaOtp({
      ...fields,
      mfaToken: (
        await clientsFor(service).mfaToken.issueMfaToken(
          { userId: user.userId, clientId: rotating.id, scope: "openid" },
          internalAuth,
        )
      ).mfaToken,
      otp: freshCode(service, user.secret),
    });
    assert.equal(without.refreshToken, "");
  });
});

describe("the refresh_token grant", () => {
  it("rotation: new tokens for the login's sub, aud, client_id, amr; the successor works", async () => {
    const user = await sessionUser(service);
    const loginBody = await login(service, user);
    const loginClaims = jwtPayloadOf(String(loginBody.access_token));
    const loginId = jwtPayloadOf(String(loginBody.id_token));
    service.clock.advance(60 * SECOND);

    const result = await postRefresh(service, rotating, String(loginBody.refresh_token));
    assert.equal(result.status, 200);
    assert.equal(result.headers.get("cache-control"), "no-store");
    const body = result.body;
    assert.deepEqual(Object.keys(body).sort(), [
      "access_token",
      "expires_in",
      "id_token",
      "refresh_token",
      "scope",
      "token_type",
    ]);
    assert.notEqual(body.refresh_token, loginBody.refresh_token);
    assert.equal(body.scope, SESSION_SCOPE);
    assert.equal(body.token_type, "Bearer");
    const claims = jwtPayloadOf(String(body.access_token));
    for (const name of ["iss", "sub", "aud", "client_id", "scope"]) {
      assert.deepEqual(claims[name], loginClaims[name], name);
    }
    assert.deepEqual(claims.amr, ["mfa", "otp"]);
    assert.notEqual(claims.jti, loginClaims.jti);
    assert.equal(claims.iat, Number(loginClaims.iat) + 60);
    const idToken = jwtPayloadOf(String(body.id_token));
    assert.equal(idToken.sub, user.userId);
    assert.equal(idToken.aud, rotating.id);
    // OpenID Connect Core §12.2: the original authentication time.
    assert.equal(idToken.auth_time, loginId.auth_time);
    assert.equal(idToken.iat, Number(loginId.iat) + 60);

    const third = await rotate(service, rotating, String(body.refresh_token), { encoding: "json" });
    await rotate(service, rotating, third);
  });

  it("reuse outside the leeway revokes the family: the newest token fails too; one security event", async () => {
    const { user, token: first } = await session();
    const second = await rotate(service, rotating, first);
    const third = await rotate(service, rotating, second);
    const before = securityEvents("refresh_token_reuse_detected").length;
    assertRow21(await postRefresh(service, rotating, first));
    assertRow21(await postRefresh(service, rotating, third));
    assertRow21(await postRefresh(service, rotating, second));
    const events = securityEvents("refresh_token_reuse_detected").slice(before);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.user_id, user.userId);
    assert.equal(events[0]?.client_id, rotating.id);
    assert.equal(events[0]?.outcome, "family_revoked");
  });

  it("reuse inside the leeway: a new successor, the family lives on; after it, the family is revoked", async () => {
    const { token: first } = await session(leeway);
    const second = await rotate(service, leeway, first);
    service.clock.advance(10 * SECOND);
    // The response to the first exchange was lost: the client retries with `first`.
    const again = await rotate(service, leeway, first);
    assert.notEqual(again, second);
    const next = await rotate(service, leeway, again);
    service.clock.advance(30 * SECOND);
    // 40 s after its first exchange: outside the 30 s leeway, a reuse.
    assertRow21(await postRefresh(service, leeway, first));
    assertRow21(await postRefresh(service, leeway, next));
  });

  it("a non-rotating client keeps its one token: no successor, exchangeable again", async () => {
    const { token } = await session(nonRotating);
    for (let i = 0; i < 3; i++) {
      const body = await refresh(service, nonRotating, token);
      assert.equal(body.refresh_token, undefined);
      assert.equal(body.scope, SESSION_SCOPE);
    }
  });

  it("idle expiry: idle_token_lifetime after the last exchange (client_secret_basic)", async () => {
    const { token } = await session(short);
    service.clock.advance(599 * SECOND);
    const next = await rotate(service, short, token);
    service.clock.advance(600 * SECOND);
    assertRow21(await postRefresh(service, short, next));
  });

  it("absolute expiry: token_lifetime from the login, however often it is exchanged", async () => {
    let { token } = await session(short);
    for (let i = 0; i < 7; i++) {
      service.clock.advance(500 * SECOND);
      token = await rotate(service, short, token);
    }
    // 3500 s after the login; 100 s later the family has lived its 3600 s.
    service.clock.advance(100 * SECOND);
    assertRow21(await postRefresh(service, short, token));
  });

  it("Auth0's defaults: a rotating client's family dies 15 days after its last exchange", async () => {
    const { token } = await session();
    service.clock.advance(14 * DAY);
    const next = await rotate(service, rotating, token);
    service.clock.advance(15 * DAY);
    assertRow21(await postRefresh(service, rotating, next));
  });

  it("down-scoping narrows one answer; the family keeps the login's scope", async () => {
    const { token } = await session();
    const narrow = await refresh(service, rotating, token, { scope: "offline_access openid" });
    assert.equal(narrow.scope, "openid offline_access");
    assert.equal(jwtPayloadOf(String(narrow.access_token)).scope, "openid offline_access");
    assert.equal(typeof narrow.id_token, "string");
    const noOpenid = await refresh(service, rotating, String(narrow.refresh_token), {
      scope: "profile",
      encoding: "json",
    });
    assert.equal(noOpenid.scope, "profile");
    assert.equal(noOpenid.id_token, undefined);
    const whole = await refresh(service, rotating, String(noOpenid.refresh_token));
    assert.equal(whole.scope, SESSION_SCOPE);
  });

  it("a scope wider than the login's is invalid_scope and changes nothing", async () => {
    const { token } = await session();
    assertOAuthError(
      await postRefresh(service, rotating, token, { scope: "openid admin" }),
      400,
      "invalid_scope",
      SCOPE_EXCEEDS_GRANT,
    );
    await assertRpcError(
      rpcRefresh(rotating, token, { scope: "email" }),
      Code.InvalidArgument,
      "invalid_scope",
      SCOPE_EXCEEDS_GRANT,
    );
    await rotate(service, rotating, token);
  });

  it("another client's token is row 21 and stays usable by its owner", async () => {
    const { token } = await session();
    assertRow21(await postRefresh(service, leeway, token));
    await assertRpcError(
      rpcRefresh(nonRotating, token),
      Code.FailedPrecondition,
      "invalid_grant",
      INVALID_REFRESH_TOKEN,
    );
    await rotate(service, rotating, token);
  });

  it("a client without the grant: row 2 names refresh_token (REST form, JSON and Connect)", async () => {
    const { token } = await session();
    const description = "Grant type 'refresh_token' not allowed for the client.";
    assertOAuthError(
      await postRefresh(service, withoutGrant, token),
      403,
      "unauthorized_client",
      description,
    );
    assertOAuthError(
      await postRefresh(service, withoutGrant, token, { encoding: "json" }),
      403,
      "unauthorized_client",
      description,
    );
    await assertRpcError(
      rpcRefresh(withoutGrant, token),
      Code.PermissionDenied,
      "unauthorized_client",
      description,
    );
  });

  it("rows 1, 3 and 4: client authentication first, then refresh_token and scope", async () => {
    assertOAuthError(
      await postTokenForm(service, { grant_type: REFRESH_TOKEN_GRANT, client_id: "nobody" }),
      401,
      "access_denied",
      "Unauthorized",
    );
    assertOAuthError(
      await postTokenForm(service, {
        grant_type: REFRESH_TOKEN_GRANT,
        client_id: rotating.id,
        client_secret: rotating.secret,
      }),
      400,
      "invalid_request",
      "Missing required parameter: refresh_token",
    );
    const json = async (extra: Record<string, unknown>) => {
      const response = await fetch(`${service.baseUrl}/oauth/token`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          grant_type: REFRESH_TOKEN_GRANT,
          client_id: rotating.id,
          client_secret: rotating.secret,
          ...extra,
        }),
      });
      return {
        status: response.status,
        headers: response.headers,
        body: (await response.json()) as Record<string, unknown>,
      };
    };
    assertOAuthError(
      await json({ refresh_token: null }),
      400,
      "invalid_request",
      "Missing required parameter: refresh_token",
    );
    assertOAuthError(
      await json({ refresh_token: 42 }),
      400,
      "invalid_request",
      "refresh_token must be a string",
    );
    assertOAuthError(
      await json({ refresh_token: "rt1.x", scope: ["openid"] }),
      400,
      "invalid_request",
      "scope must be a string",
    );
    await assertRpcError(
      rpcRefresh(rotating, ""),
      Code.InvalidArgument,
      "invalid_request",
      "Missing required parameter: refresh_token",
    );
  });

  it("row 21 for every kind of bad token, on REST and Connect", async () => {
    const { token: revoked } = await session();
    assertRevoked(await postRevoke(service, rotating, { token: revoked }));
    const { token: expired } = await session(short);
    const { token: reused } = await session();
    await rotate(service, rotating, reused);
    await postRefresh(service, rotating, reused); // the reuse itself
    const { token: other } = await session(leeway);
    const middle = Math.floor(revoked.length / 2);
    const tampered = `${revoked.slice(0, middle)}${revoked[middle] === "A" ? "B" : "A"}${revoked.slice(middle + 1)}`;
    const cases: Record<string, string> = {
      malformed: "not-a-refresh-token",
      tampered,
      "the prefix, nothing sealed": "rt1.AAAA",
      revoked,
      reused,
      "another client's": other,
      expired,
    };
    service.clock.advance(601 * SECOND); // `expired` idles out; the others are already dead
    for (const [name, value] of Object.entries(cases)) {
      const client = name === "expired" ? short : rotating;
      assertRow21(await postRefresh(service, client, value));
      assertRow21(await postRefresh(service, client, value, { encoding: "json" }));
      const failure = await rpcFailure(rpcRefresh(client, value));
      assert.deepEqual(
        { code: failure.code, detail: failure.detail },
        {
          code: Code.FailedPrecondition,
          detail: {
            error: "invalid_grant",
            errorDescription: INVALID_REFRESH_TOKEN,
            retryAfterSeconds: 0,
          },
        },
        name,
      );
    }
  });

  it("RefreshToken (Connect): rotation and a second exchange", async () => {
    const { token } = await session();
    const first = await rpcRefresh(rotating, token);
    assert.match(first.refreshToken, /^rt1\./);
    assert.equal(first.scope, SESSION_SCOPE);
    assert.equal(first.tokenType, "Bearer");
    assert.notEqual(first.idToken, "");
    const second = await rpcRefresh(rotating, first.refreshToken, { scope: "openid" });
    assert.equal(second.scope, "openid");
    const nonRotatingSession = await session(nonRotating);
    assert.equal((await rpcRefresh(nonRotating, nonRotatingSession.token)).refreshToken, "");
    // client_secret_basic on RPC: the Authorization header.
    const basic = await session(short);
    assert.match((await rpcRefresh(short, basic.token)).refreshToken, /^rt1\./);
  });
});

describe("revocation", () => {
  it("own token (form and JSON): 200, empty, no-store; the whole family is gone", async () => {
    const { token: first } = await session();
    const second = await rotate(service, rotating, first);
    // A retired token names its family too.
    assertRevoked(await postRevoke(service, rotating, { token: first }));
    assertRow21(await postRefresh(service, rotating, second));

    const { token } = await session();
    assertRevoked(
      await postRevoke(service, rotating, { token, token_type_hint: "refresh_token" }, "json"),
    );
    assertRow21(await postRefresh(service, rotating, token));
  });

  it("unknown, malformed, an access token: the same 200", async () => {
    const user = await sessionUser(service);
    const body = await login(service, user);
    for (const token of ["nothing-like-a-token", "rt1.AAAA", String(body.access_token)]) {
      assertRevoked(await postRevoke(service, rotating, { token }));
    }
    assertRevoked(
      await postRevoke(service, rotating, {
        token: String(body.access_token),
        token_type_hint: "access_token",
      }),
    );
    await rotate(service, rotating, String(body.refresh_token));
  });

  it("another client's token: 200 and left alone", async () => {
    const { token } = await session();
    assertRevoked(await postRevoke(service, leeway, { token }));
    assertRevoked(await postRevoke(service, short, { token }));
    await rotate(service, rotating, token);
  });

  it("client authentication first (row 1), then token (row 3, row 4)", async () => {
    const response = await fetch(`${service.baseUrl}/oauth/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: rotating.id, client_secret: "wrong" }).toString(),
    });
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), {
      error: "access_denied",
      error_description: "Unauthorized",
    });
    const missing = await postRevoke(service, rotating, {});
    assert.equal(missing.status, 400);
    assert.equal(missing.headers.get("cache-control"), "no-store");
    assert.deepEqual(JSON.parse(missing.text), {
      error: "invalid_request",
      error_description: "Missing required parameter: token",
    });
    const notString = await postRevoke(service, rotating, { token: 7 }, "json");
    assert.deepEqual(JSON.parse(notString.text), {
      error: "invalid_request",
      error_description: "token must be a string",
    });
    const get = await fetch(`${service.baseUrl}/oauth/revoke`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "POST");
  });

  it("RevokeToken (Connect): own token revoked, another client's left alone, errors as REST", async () => {
    const { token } = await session();
    const { token: kept } = await session();
    const { fields } = rpcCredentials(rotating);
    const client = clientsFor(service).token;
    const answer = await client.revokeToken({ token, ...fields });
    assert.equal(answer.$typeName, "token.v1.RevokeTokenResponse");
    assertRow21(await postRefresh(service, rotating, token));
    await client.revokeToken({ token: kept, ...rpcCredentials(leeway).fields });
    await rotate(service, rotating, kept);
    await client.revokeToken({ token: "garbage", ...fields });
    await assertRpcError(
      client.revokeToken({ token: "", ...fields }),
      Code.InvalidArgument,
      "invalid_request",
      "Missing required parameter: token",
    );
    await assertRpcError(
      client.revokeToken({ token, clientId: rotating.id, clientSecret: "wrong" }),
      Code.Unauthenticated,
      "access_denied",
      "Unauthorized",
    );
  });

  it("RevokeUserSessions: every family of the user, counted; the internal key only", async () => {
    const user = await sessionUser(service);
    const a = await loginForRefreshToken(service, user, rotating);
    const b = await loginForRefreshToken(service, user, leeway);
    const c = await loginForRefreshToken(service, user, nonRotating);
    const { token: otherUsers } = await session();
    const mfaTokenService = clientsFor(service).mfaToken;
    const before = securityEvents("sessions_revoked").length;
    const response = await mfaTokenService.revokeUserSessions(
      { userId: user.userId },
      internalAuth,
    );
    assert.equal(response.revoked, 3);
    assertRow21(await postRefresh(service, rotating, a));
    assertRow21(await postRefresh(service, leeway, b));
    assertRow21(await postRefresh(service, nonRotating, c));
    await rotate(service, rotating, otherUsers);
    const events = securityEvents("sessions_revoked").slice(before);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.user_id, user.userId);
    assert.equal(events[0]?.count, 3);
    assert.equal(events[0]?.reason, "revoke_user_sessions");
    assert.equal(
      (await mfaTokenService.revokeUserSessions({ userId: user.userId }, internalAuth)).revoked,
      0,
    );

    await assertRpcError(
      mfaTokenService.revokeUserSessions({ userId: user.userId }),
      Code.Unauthenticated,
      "access_denied",
      "Unauthorized",
    );
    await assertRpcError(
      mfaTokenService.revokeUserSessions(
        { userId: user.userId },
        { headers: { authorization: "Bearer wrong-key" } },
      ),
      Code.Unauthenticated,
      "access_denied",
      "Unauthorized",
    );
    await assertRpcError(
      mfaTokenService.revokeUserSessions({ userId: "" }, internalAuth),
      Code.InvalidArgument,
      "invalid_request",
      "Missing required parameter: user_id",
    );
  });
});

describe("DPoP-bound sessions (RFC 9449 §5)", () => {
  it("a public client's session follows the login's key: right key, another key, no proof", async () => {
    const user = await sessionUser(service);
    const key = await generateTestKey();
    const body = await login(service, user, publicClient, {
      dpop: await dpopProofFor(service, key),
    });
    assert.equal(body.token_type, "DPoP");
    const token = String(body.refresh_token);

    const another = await generateTestKey();
    assertOAuthError(
      await postRefresh(service, publicClient, token, {
        dpop: await dpopProofFor(service, another),
      }),
      400,
      "invalid_dpop_proof",
      "DPoP proof key does not match the refresh token",
    );
    assertOAuthError(
      await postRefresh(service, publicClient, token),
      400,
      "invalid_dpop_proof",
      "DPoP proof is required for this refresh token",
    );
    await assertRpcError(
      rpcRefresh(publicClient, token),
      Code.InvalidArgument,
      "invalid_dpop_proof",
      "DPoP proof is required for this refresh token",
    );

    // Nothing changed: the right key exchanges it, and the successor is bound too.
    const refreshed = await refresh(service, publicClient, token, {
      dpop: await dpopProofFor(service, key),
    });
    assert.equal(refreshed.token_type, "DPoP");
    assert.deepEqual(jwtPayloadOf(String(refreshed.access_token)).cnf, {
      jkt: jwkThumbprint(key.publicJwk),
    });
    const successor = String(refreshed.refresh_token);
    assertOAuthError(
      await postRefresh(service, publicClient, successor),
      400,
      "invalid_dpop_proof",
      "DPoP proof is required for this refresh token",
    );
    // On RPC the proof names the RPC's URL.
    const rpc = await rpcRefresh(publicClient, successor, {
      dpop: await dpopProofFor(service, key, rpcHtu(service, "RefreshToken")),
    });
    assert.equal(rpc.tokenType, "DPoP");
  });

  it("a replayed proof is refused and consumes nothing", async () => {
    const user = await sessionUser(service);
    const key = await generateTestKey();
    const token = await loginForRefreshToken(service, user, publicClient, {
      dpop: await dpopProofFor(service, key),
    });
    const proof = await dpopProofFor(service, key);
    const successor = await rotate(service, publicClient, token, { dpop: proof });
    assertOAuthError(
      await postRefresh(service, publicClient, successor, { dpop: proof }),
      400,
      "invalid_dpop_proof",
      "DPoP proof has already been used",
    );
    await rotate(service, publicClient, successor, { dpop: await dpopProofFor(service, key) });
  });

  it("a confidential client's session is not bound: a proof binds that access token only", async () => {
    const { token } = await session();
    const key = await generateTestKey();
    const bound = await refresh(service, rotating, token, {
      dpop: await dpopProofFor(service, key),
    });
    assert.equal(bound.token_type, "DPoP");
    assert.deepEqual(jwtPayloadOf(String(bound.access_token)).cnf, {
      jkt: jwkThumbprint(key.publicJwk),
    });
    const plain = await refresh(service, rotating, String(bound.refresh_token));
    assert.equal(plain.token_type, "Bearer");
    assert.equal(jwtPayloadOf(String(plain.access_token)).cnf, undefined);
  });

  it("a public client's session started without a proof stays unbound", async () => {
    const { token } = await session(publicClient);
    const next = await rotate(service, publicClient, token);
    await rotate(service, publicClient, next);
  });
});

describe("discovery", () => {
  it("advertises the revocation endpoint and the refresh_token grant", async () => {
    const document = (await (
      await fetch(`${service.baseUrl}/.well-known/openid-configuration`)
    ).json()) as Record<string, unknown>;
    const issuer = service.app.ctx.config.issuerUrl;
    assert.equal(document.revocation_endpoint, new URL("oauth/revoke", issuer).href);
    assert.deepEqual(document.grant_types_supported, [
      MFA_OTP_GRANT,
      MFA_RECOVERY_CODE_GRANT,
      REFRESH_TOKEN_GRANT,
    ]);
    assert.ok((document.scopes_supported as string[]).includes("offline_access"));
  });
});
