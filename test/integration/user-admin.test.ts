/**
 * The administrator's RPCs (SPEC §3) on the wire, over Connect and gRPC, on
 * every store (memory, a real redis-server, a real PostgreSQL server):
 * ResetUserMfa removes the user's authenticator and recovery code and
 * revokes every session; UnlockUser refills a drained failure bucket;
 * DeleteUserData leaves no Redis key and no PostgreSQL row naming the user
 * (every key scanned, the whole database dumped). Each call is a security
 * event in the log; a wrong key is Unauthenticated and `internal_key_refused`.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { userTag } from "../../src/store/redis-keys.js";
import {
  clientsFor,
  codeAt,
  failTimes,
  internalAuth,
  issueMfaToken,
  type Protocol,
  verifyOtp,
} from "../support/flows.js";
import { assertLocked, assertRpcError } from "../support/oauth-assertions.js";
import {
  type PostgresServerHandle,
  startPostgresServer,
  withClient,
} from "../support/postgres-server.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import {
  INVALID_REFRESH_TOKEN,
  loginForRefreshToken,
  postRefresh,
  SESSION_CLIENTS,
  sessionUser,
} from "../support/session-flows.js";
import { startTestService, type TestService } from "../support/test-service.js";

const PROTOCOLS: Protocol[] = ["connect-h1", "grpc"];
const MAX_FAILURES = 3;

/** The security events the service logged for `userId`, in order. */
function eventsOf(service: TestService, event: string, userId?: string) {
  return service.logs
    .filter((line) => line.includes(`"event":"${event}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => userId === undefined || line.user_id === userId);
}

interface StoreUnderTest {
  name: "memory" | "redis" | "postgres";
  start(): Promise<TestService>;
  /** Whatever the backend still holds that names the user (key names, dumped rows). */
  namingUser(userId: string): Promise<string[]>;
  /**
   * PostgreSQL: rows of the user in tables a later migration might add (one
   * row per user, and many), which DeleteUserData must find by itself.
   */
  addLaterTables?(userId: string): Promise<void>;
  stop(): Promise<void>;
}

function memory(): StoreUnderTest {
  let service: TestService;
  return {
    name: "memory",
    async start() {
      service = await startTestService({ env: { OTP_MAX_FAILURES: String(MAX_FAILURES) } });
      return service;
    },
    // In-process: the contract suite checks eraseUser; here what the service can see.
    async namingUser(userId) {
      const factors = await service.app.ctx.store.getFactors(userId);
      return factors.otp !== null || factors.hasRecoveryCode ? ["factors"] : [];
    },
    stop: async () => {},
  };
}

function redis(): StoreUnderTest {
  let server: RedisServerHandle;
  let inspector: Redis;
  return {
    name: "redis",
    async start() {
      server = await startRedisServer({ dedicated: true });
      inspector = new Redis(server.url);
      return startTestService({
        store: "redis",
        redisUrl: server.url,
        env: { OTP_MAX_FAILURES: String(MAX_FAILURES) },
      });
    },
    async namingUser(userId) {
      const keys = await inspector.keys("*");
      return keys.filter((key) => key.includes(userTag(userId)) || key.includes(userId));
    },
    async stop() {
      inspector.disconnect();
      await server.stop();
    },
  };
}

function postgres(): StoreUnderTest {
  let server: PostgresServerHandle;
  let databaseUrl: string;
  return {
    name: "postgres",
    async start() {
      server = await startPostgresServer();
      databaseUrl = await server.freshDatabase();
      return startTestService({
        store: "postgres",
        databaseUrl,
        env: { OTP_MAX_FAILURES: String(MAX_FAILURES) },
      });
    },
    async addLaterTables(userId) {
      await withClient(databaseUrl, async (client) => {
        await client.query(`CREATE TABLE IF NOT EXISTS later_one (user_id text PRIMARY KEY, v int);
          CREATE TABLE IF NOT EXISTS later_many (user_id text, n int, PRIMARY KEY (user_id, n))`);
        await client.query("INSERT INTO later_one VALUES ($1, 1)", [userId]);
        await client.query(
          "INSERT INTO later_many SELECT $1, n FROM generate_series(1, 1200) AS n",
          [userId],
        );
      });
    },
    async namingUser(userId) {
      // Every row of every table, as pg_dump writes them.
      const dump = await server.dump(databaseUrl);
      return dump.split("\n").filter((line) => line.includes(userId));
    },
    stop: () => server.stop(),
  };
}

for (const backend of [memory(), redis(), postgres()]) {
  describe(`administrator's RPCs on ${backend.name}`, () => {
    let service: TestService;
    before(async () => {
      service = await backend.start();
    });
    after(async () => {
      await service.close();
      await backend.stop();
    });

    /** An enrolled user with two live sessions and a consumed mfa_token. */
    async function userWithSessions() {
      const user = await sessionUser(service);
      const sessions = [
        await loginForRefreshToken(service, user),
        await loginForRefreshToken(service, user),
      ];
      return { ...user, sessions };
    }

    for (const protocol of PROTOCOLS) {
      it(`ResetUserMfa over ${protocol}: authenticator and recovery code gone, both sessions revoked`, async () => {
        const user = await userWithSessions();
        const { mfaToken } = clientsFor(service, protocol);
        const reset = await mfaToken.resetUserMfa({ userId: user.userId }, internalAuth);
        assert.equal(reset.authenticatorsRemoved, 1);
        assert.equal(reset.sessionsRevoked, 2);

        assert.deepEqual(await service.store.getFactors(user.userId), {
          otp: null,
          hasRecoveryCode: false,
        });
        for (const token of user.sessions) {
          const refreshed = await postRefresh(service, SESSION_CLIENTS.rotating, token);
          assert.equal(refreshed.status, 400);
          assert.deepEqual(refreshed.body, {
            error: "invalid_grant",
            error_description: INVALID_REFRESH_TOKEN,
          });
        }
        // The next login enrolls afresh.
        const issued = await mfaToken.issueMfaToken(
          { userId: user.userId, clientId: "post-client", scope: "openid" },
          internalAuth,
        );
        assert.equal(issued.mfaRequirements?.enroll.length, 1);

        const [event] = eventsOf(service, "user_mfa_reset", user.userId);
        assert.equal(event?.security, true);
        assert.equal(event?.authenticators_removed, 1);
        assert.equal(event?.sessions_revoked, 2);
        assert.equal(eventsOf(service, "sessions_revoked", user.userId).at(-1)?.count, 2);

        // Again: nothing left to remove; an unknown user is not an error either.
        assert.deepEqual(
          { ...(await mfaToken.resetUserMfa({ userId: user.userId }, internalAuth)) },
          { ...reset, authenticatorsRemoved: 0, sessionsRevoked: 0 },
        );
      });

      it(`UnlockUser over ${protocol}: a locked-out user's right code is accepted again`, async () => {
        const user = await sessionUser(service);
        const token = await issueMfaToken(service, user.userId);
        await failTimes(service, token, user.secret, MAX_FAILURES);
        assertLocked(await verifyOtp(service, token, codeAt(service, user.secret)), "360");

        await clientsFor(service, protocol).mfaToken.unlockUser(
          { userId: user.userId },
          internalAuth,
        );
        const accepted = await verifyOtp(service, token, codeAt(service, user.secret));
        assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
        assert.equal(eventsOf(service, "user_unlocked", user.userId).length, 1);
      });

      it(`DeleteUserData over ${protocol}: nothing stored names the user afterwards`, async () => {
        const user = await userWithSessions();
        // A drained attempt and a consumed mfa_token besides the factors and sessions.
        const token = await issueMfaToken(service, user.userId);
        await failTimes(service, token, user.secret, 1);
        // PostgreSQL: tables this release does not know, 1,201 more rows (several batches).
        await backend.addLaterTables?.(user.userId);
        assert.notDeepEqual(await backend.namingUser(user.userId), []);

        const answer = await clientsFor(service, protocol).mfaToken.deleteUserData(
          { userId: user.userId },
          internalAuth,
        );
        // An empty message: no field but its type.
        assert.deepEqual(Object.keys(answer), ["$typeName"]);
        assert.deepEqual(await backend.namingUser(user.userId), []);
        for (const session of user.sessions) {
          assert.equal((await postRefresh(service, SESSION_CLIENTS.rotating, session)).status, 400);
        }
        const [event] = eventsOf(service, "user_data_deleted", user.userId);
        assert.equal(event?.sessions_revoked, 2);
        assert.equal(event?.outcome, "deleted");
      });

      it(`a wrong internal key over ${protocol}: Unauthenticated, internal_key_refused, nothing changed`, async () => {
        const user = await sessionUser(service);
        const before = eventsOf(service, "internal_key_refused").length;
        const wrong = { headers: { authorization: "Bearer not-the-internal-api-key-0123456789" } };
        const { mfaToken } = clientsFor(service, protocol);
        for (const call of [
          mfaToken.resetUserMfa({ userId: user.userId }, wrong),
          mfaToken.unlockUser({ userId: user.userId }, wrong),
          mfaToken.deleteUserData({ userId: user.userId }, wrong),
        ]) {
          await assertRpcError(call, Code.Unauthenticated, "access_denied", "Unauthorized");
        }
        assert.equal((await service.store.getFactors(user.userId)).otp?.active, true);
        const refused = eventsOf(service, "internal_key_refused").slice(before);
        assert.deepEqual(
          refused.map((e) => [e.rpc, e.outcome]),
          [
            ["ResetUserMfa", "refused"],
            ["UnlockUser", "refused"],
            ["DeleteUserData", "refused"],
          ],
        );
        assert.ok(!service.logs.some((line) => line.includes("not-the-internal-api-key")));
        // A missing user_id is row 3, after the key.
        await assertRpcError(
          mfaToken.deleteUserData({ userId: "" }, internalAuth),
          Code.InvalidArgument,
          "invalid_request",
          "Missing required parameter: user_id",
        );
      });
    }
  });
}
