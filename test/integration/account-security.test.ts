/**
 * Account security, round two (SPEC §4), on the real service and every
 * store — memory, Redis (a real redis-server) and PostgreSQL (a real
 * server) — through the wire:
 * - an MFA API access token lives MFA_API_TOKEN_TTL_SECONDS, carries
 *   `auth_time` and never comes with a refresh token (`offline_access` is
 *   dropped from its scope); a refresh keeps the login's `auth_time`;
 * - a DELETE of the authenticator (REST and RPC) ends every session of the
 *   user (`sessions_revoked` with the count);
 * - a pending enrollment expires on the (fake) clock, and replacing a live
 *   one is the `authenticator_replaced` event;
 * - MAX_SESSIONS_PER_USER (3 here): a login beyond it revokes the oldest
 *   session;
 * - `otp_failed` and `otp_replayed`, read from the captured log, carry the
 *   request_id of their request's access line.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { decodeJwt } from "jose";
import { StoreUnavailableError } from "../../src/store/store.js";
import {
  associate,
  breakStore,
  clientsFor,
  codeAt,
  enrolledUser,
  freshCode,
  internalAuth,
  issueMfaToken,
  MFA_API_SCOPE,
  MFA_OTP_GRANT,
  mfaApiAudience,
  nextStep,
  postTokenForm,
  uniqueUserId,
  wrongCode,
} from "../support/flows.js";
import { type PostgresServerHandle, startPostgresServer } from "../support/postgres-server.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import {
  INVALID_REFRESH_TOKEN,
  login,
  loginForRefreshToken,
  postRefresh,
  rotate,
  SESSION_CLIENTS,
  type SessionUser,
} from "../support/session-flows.js";
import {
  CLIENTS,
  startTestService,
  type TestService,
  type TestServiceOptions,
} from "../support/test-service.js";

const { rotating } = SESSION_CLIENTS;
const ENV = { MAX_SESSIONS_PER_USER: "3" };
const INVALID_OTP = { error: "invalid_grant", error_description: "Invalid otp_code." };
const ROW_21 = { error: "invalid_grant", error_description: INVALID_REFRESH_TOKEN };

type LogLine = Record<string, unknown>;

const linesOf = (service: TestService): LogLine[] =>
  service.logs.map((line) => JSON.parse(line) as LogLine);

function eventsOf(service: TestService, event: string, userId: string): LogLine[] {
  return linesOf(service).filter((line) => line.event === event && line.user_id === userId);
}

/** The access line of a request (written within 10 ms of its end: access-log.ts). */
async function accessLineOf(service: TestService, requestId: string): Promise<LogLine> {
  for (let i = 0; i < 400; i++) {
    const line = linesOf(service).find((l) => l.event === "access" && l.request_id === requestId);
    if (line !== undefined) return line;
    await sleep(5);
  }
  throw new Error(`no access line for ${requestId}`);
}

async function rest(
  service: TestService,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
) {
  const response = await fetch(`${service.baseUrl}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === "" ? null : (JSON.parse(text) as unknown),
  };
}

/** An MFA API access token of the rotating client, scope `scope` (offline_access asked for). */
async function mfaApiLogin(service: TestService, user: SessionUser, scope: string) {
  const mfaToken = await issueMfaToken(service, user.userId, {
    clientId: rotating.id,
    audience: mfaApiAudience(service),
    scope,
  });
  return postTokenForm(service, {
    grant_type: MFA_OTP_GRANT,
    client_id: rotating.id,
    client_secret: rotating.secret,
    mfa_token: mfaToken,
    otp: freshCode(service, user.secret),
  });
}

async function otpIdOf(service: TestService, userId: string): Promise<string> {
  const listed = await rest(service, "GET", "/mfa/authenticators", {
    authorization: `Bearer ${await issueMfaToken(service, userId)}`,
  });
  const otp = (listed.body as { id: string; authenticator_type: string }[]).find(
    (a) => a.authenticator_type === "otp",
  );
  assert.ok(otp, JSON.stringify(listed.body));
  return otp.id;
}

function defineAccountSecuritySuite(
  name: string,
  options: () => Promise<TestServiceOptions & { stop?: () => Promise<void> }>,
) {
  describe(`account security: ${name}`, () => {
    let service: TestService;
    let stop: (() => Promise<void>) | undefined;
    before(async () => {
      const { stop: stopBackend, ...serviceOptions } = await options();
      stop = stopBackend;
      service = await startTestService({ ...serviceOptions, env: ENV });
    });
    after(async () => {
      await service.close();
      await stop?.();
    });

    it("an MFA API token lives MFA_API_TOKEN_TTL_SECONDS, carries auth_time, never a refresh token", async () => {
      const user = await enrolledUser(service);
      const answer = await mfaApiLogin(service, user, `${MFA_API_SCOPE} offline_access`);
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get("cache-control"), "no-store");
      const accessToken = String(answer.body.access_token);
      assert.deepEqual(answer.body, {
        access_token: accessToken,
        token_type: "Bearer",
        expires_in: 300,
        scope: MFA_API_SCOPE,
      });
      const claims = decodeJwt(accessToken);
      const now = Math.floor(service.clock.nowMs() / 1000);
      assert.equal(claims.iat, now);
      assert.equal(claims.exp, now + 300);
      assert.equal(claims.auth_time, now);
      assert.equal(claims.scope, MFA_API_SCOPE);
      assert.equal(claims.aud, mfaApiAudience(service));
    });

    it("every access token carries auth_time; a refresh keeps the login's", async () => {
      const user = await enrolledUser(service);
      const body = await login(service, user, rotating);
      const loginTime = Math.floor(service.clock.nowMs() / 1000);
      assert.equal(decodeJwt(String(body.access_token)).auth_time, loginTime);
      assert.equal(body.expires_in, 86_400);
      service.clock.advance(120_000);
      const refreshed = await postRefresh(service, rotating, String(body.refresh_token));
      assert.equal(refreshed.status, 200);
      const claims = decodeJwt(String(refreshed.body.access_token));
      assert.equal(claims.iat, loginTime + 120);
      assert.equal(claims.auth_time, loginTime);
    });

    it("a DELETE of the authenticator (REST) ends every session of the user, and only theirs", async () => {
      const user = await enrolledUser(service);
      const first = await loginForRefreshToken(service, user, rotating);
      const second = await loginForRefreshToken(service, user, rotating);
      const other = await loginForRefreshToken(service, await enrolledUser(service), rotating);
      const id = await otpIdOf(service, user.userId);
      const token = String((await mfaApiLogin(service, user, MFA_API_SCOPE)).body.access_token);

      const deleted = await rest(
        service,
        "DELETE",
        `/mfa/authenticators/${encodeURIComponent(id)}`,
        {
          authorization: `Bearer ${token}`,
          "x-request-id": `delete-${user.userId}`,
        },
      );
      assert.deepEqual([deleted.status, deleted.body], [204, null]);

      for (const refreshToken of [first, second]) {
        const refused = await postRefresh(service, rotating, refreshToken);
        assert.deepEqual([refused.status, refused.body], [400, ROW_21]);
      }
      await rotate(service, rotating, other);
      const [event] = eventsOf(service, "sessions_revoked", user.userId);
      assert.deepEqual(
        {
          count: event?.count,
          reason: event?.reason,
          client_id: event?.client_id,
          request_id: event?.request_id,
          security: event?.security,
        },
        {
          count: 2,
          reason: "authenticator_deleted",
          client_id: rotating.id,
          request_id: `delete-${user.userId}`,
          security: true,
        },
      );
      assert.equal(eventsOf(service, "authenticator_deleted", user.userId).length, 1);
    });

    it("a DELETE of the authenticator (RPC DeleteAuthenticator) ends the user's session", async () => {
      const user = await enrolledUser(service);
      const session = await loginForRefreshToken(service, user, rotating);
      const id = await otpIdOf(service, user.userId);
      const token = String((await mfaApiLogin(service, user, MFA_API_SCOPE)).body.access_token);
      await clientsFor(service, "grpc").mfa.deleteAuthenticator({
        accessToken: token,
        authenticatorId: id,
      });
      const refused = await postRefresh(service, rotating, session);
      assert.deepEqual([refused.status, refused.body], [400, ROW_21]);
      const events = eventsOf(service, "sessions_revoked", user.userId);
      assert.deepEqual(
        events.map((e) => [e.count, e.reason]),
        [[1, "authenticator_deleted"]],
      );
    });

    it("a pending enrollment expires after PENDING_ENROLLMENT_TTL_SECONDS; replacing a live one is an event", async () => {
      const userId = uniqueUserId("pending");
      const firstSecret = await associate(service, await issueMfaToken(service, userId));
      // Replaced while live: the victim's code then fails, and the log says why.
      service.clock.advance(60_000);
      const secondSecret = await associate(service, await issueMfaToken(service, userId));
      assert.deepEqual(
        eventsOf(service, "authenticator_replaced", userId).map((e) => [e.outcome, e.client_id]),
        [["replaced", CLIENTS.post.id]],
      );
      assert.equal(eventsOf(service, "authenticator_enrolled", userId).length, 2);
      const victim = await postTokenForm(service, {
        grant_type: MFA_OTP_GRANT,
        client_id: CLIENTS.post.id,
        client_secret: CLIENTS.post.secret,
        mfa_token: await issueMfaToken(service, userId),
        otp: codeAt(service, firstSecret),
      });
      assert.deepEqual([victim.status, victim.body], [400, INVALID_OTP]);

      // 900 s after the second Associate it is gone: not listed, its code row 9.
      service.clock.advance(900_000);
      const listed = await rest(service, "GET", "/mfa/authenticators", {
        authorization: `Bearer ${await issueMfaToken(service, userId)}`,
      });
      assert.equal(listed.status, 200);
      assert.deepEqual(
        (listed.body as { authenticator_type: string }[]).map((a) => a.authenticator_type),
        ["recovery-code"],
      );
      const expired = await postTokenForm(service, {
        grant_type: MFA_OTP_GRANT,
        client_id: CLIENTS.post.id,
        client_secret: CLIENTS.post.secret,
        mfa_token: await issueMfaToken(service, userId),
        otp: freshCode(service, secondSecret),
      });
      assert.deepEqual([expired.status, expired.body], [400, INVALID_OTP]);
      const challenge = await clientsFor(service).mfaToken.issueMfaToken(
        { userId, clientId: CLIENTS.post.id, audience: "", scope: "openid", userLabel: "" },
        internalAuth,
      );
      assert.deepEqual(
        challenge.mfaRequirements?.enroll.map((r) => r.type),
        ["otp"],
      );

      // Associate may run again; an expired one is not a replacement.
      const thirdSecret = await associate(service, await issueMfaToken(service, userId));
      assert.equal(eventsOf(service, "authenticator_replaced", userId).length, 1);
      const activated = await postTokenForm(service, {
        grant_type: MFA_OTP_GRANT,
        client_id: CLIENTS.post.id,
        client_secret: CLIENTS.post.secret,
        mfa_token: await issueMfaToken(service, userId),
        otp: freshCode(service, thirdSecret),
      });
      assert.equal(activated.status, 200);
      // Active now: durable however long it rests.
      service.clock.advance(2 * 900_000);
      nextStep(service);
      const later = await postTokenForm(service, {
        grant_type: MFA_OTP_GRANT,
        client_id: CLIENTS.post.id,
        client_secret: CLIENTS.post.secret,
        mfa_token: await issueMfaToken(service, userId),
        otp: freshCode(service, thirdSecret),
      });
      assert.equal(later.status, 200);
    });

    it("MAX_SESSIONS_PER_USER=3: the fourth login revokes the oldest session", async () => {
      const user = await enrolledUser(service);
      const sessions: string[] = [];
      for (let i = 0; i < 4; i++)
        sessions.push(await loginForRefreshToken(service, user, rotating));
      const [oldest, ...kept] = sessions;
      const refused = await postRefresh(service, rotating, oldest as string);
      assert.deepEqual([refused.status, refused.body], [400, ROW_21]);
      for (const token of kept) await rotate(service, rotating, token);
      const revoked = await clientsFor(service).mfaToken.revokeUserSessions(
        { userId: user.userId },
        internalAuth,
      );
      assert.equal(revoked.revoked, 3);
    });

    it("otp_failed and otp_replayed carry the request_id of their access line", async () => {
      const user = await enrolledUser(service);
      const mfaToken = () => issueMfaToken(service, user.userId);
      const grant = (token: string, otp: string) => ({
        grant_type: MFA_OTP_GRANT,
        client_id: CLIENTS.post.id,
        client_secret: CLIENTS.post.secret,
        mfa_token: token,
        otp,
      });

      // A wrong code, with the caller's x-request-id.
      const failedId = `wrong-${user.userId}`;
      const wrongOtp = wrongCode(service, user.secret);
      const wrong = await postTokenForm(service, grant(await mfaToken(), wrongOtp), {
        "x-request-id": failedId,
      });
      assert.deepEqual([wrong.status, wrong.body], [400, INVALID_OTP]);
      assert.equal(wrong.headers.get("x-request-id"), failedId);

      // A right code, then the same code again (the step is used): a replay.
      const code = freshCode(service, user.secret);
      const accepted = await postTokenForm(service, grant(await mfaToken(), code));
      assert.equal(accepted.status, 200);
      const replay = await postTokenForm(service, grant(await mfaToken(), code));
      assert.deepEqual([replay.status, replay.body], [400, INVALID_OTP]);
      const replayId = replay.headers.get("x-request-id");
      assert.ok(replayId);

      const [failed] = eventsOf(service, "otp_failed", user.userId);
      const [replayed] = eventsOf(service, "otp_replayed", user.userId);
      assert.ok(failed && replayed);
      for (const [event, requestId] of [
        [failed, failedId],
        [replayed, replayId],
      ] as const) {
        assert.equal(event.request_id, requestId);
        assert.equal(event.security, true);
        assert.equal(event.client_id, CLIENTS.post.id);
        assert.equal(event.outcome, "refused");
        assert.match(String(event.authenticator_id), /^totp\|/);
        const access = await accessLineOf(service, requestId);
        assert.deepEqual(
          [access.route, access.status, access.error, access.client_id],
          ["/oauth/token", 400, "invalid_grant", CLIENTS.post.id],
        );
      }
      // Every security event this suite caused carries a request_id.
      for (const line of linesOf(service)) {
        if (line.security === true)
          assert.equal(typeof line.request_id, "string", JSON.stringify(line));
      }
      // Neither carries the code.
      for (const otp of [wrongOtp, code]) {
        for (const line of [failed, replayed]) assert.ok(!JSON.stringify(line).includes(otp));
      }
    });
  });
}

describe("an error line carries its request's request_id (REST and gRPC)", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService();
  });
  after(() => service.close());

  it("a store outage: its one line names the request that met it, which joins its access line", async () => {
    const user = await enrolledUser(service);
    const token = await issueMfaToken(service, user.userId);
    const repair = breakStore(service, () => new StoreUnavailableError("store down (test)"));
    try {
      const answer = await postTokenForm(
        service,
        {
          grant_type: MFA_OTP_GRANT,
          client_id: CLIENTS.post.id,
          client_secret: CLIENTS.post.secret,
          mfa_token: token,
          otp: freshCode(service, user.secret),
        },
        { "x-request-id": "store-down-rest" },
      );
      assert.equal(answer.status, 503);
      await assert.rejects(
        clientsFor(service, "grpc").token.verifyMfaOtp(
          {
            mfaToken: token,
            otp: "123456",
            clientId: CLIENTS.post.id,
            clientSecret: CLIENTS.post.secret,
          },
          { headers: { "x-request-id": "store-down-grpc" } },
        ),
      );
    } finally {
      repair();
    }
    // An outage is one line, not one per request (SPEC §7, store-outage-log.ts):
    // it names the request that met it first, which joins that request's access line.
    const outage = linesOf(service).filter((line) => line.event === "store_unavailable");
    assert.deepEqual(
      outage.map((line) => [line.level, line.request_id]),
      [[50, "store-down-rest"]],
    );
    assert.equal((await accessLineOf(service, "store-down-rest")).status, 503);
    // The gRPC call that met the same outage: its access line carries its own id.
    assert.equal((await accessLineOf(service, "store-down-grpc")).status, 200);
  });
});

defineAccountSecuritySuite("memory", async () => ({ store: "memory" }));

defineAccountSecuritySuite("redis", async () => {
  const redis: RedisServerHandle = await startRedisServer();
  return { store: "redis", redisUrl: redis.url, stop: () => redis.stop() };
});

defineAccountSecuritySuite("postgres", async () => {
  const postgres: PostgresServerHandle = await startPostgresServer();
  const databaseUrl = await postgres.freshDatabase();
  return { store: "postgres", databaseUrl, stop: () => postgres.stop() };
});
