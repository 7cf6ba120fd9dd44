/**
 * Refresh-token sessions on a real redis-server, through the wire: 20
 * parallel exchanges of one token through `POST /oauth/token` (exactly one
 * success with leeway 0, the family revoked by the others, nothing left of it
 * in Redis), Redis commands counted per step (one round trip per exchange),
 * no refresh token in clear anywhere in the database, and the RefreshToken,
 * RevokeToken and RevokeUserSessions RPCs over gRPC.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { sessionKeys } from "../../src/store/session-keys.js";
import { dpopProofFor, generateTestKey } from "../support/dpop.js";
import {
  clientsFor,
  freshCode,
  internalAuth,
  issueMfaToken,
  MFA_OTP_GRANT,
  postTokenForm,
} from "../support/flows.js";
import { assertOAuthError, assertRpcError } from "../support/oauth-assertions.js";
import {
  countCommands,
  type RedisServerHandle,
  startRedisServer,
} from "../support/redis-server.js";
import {
  INVALID_REFRESH_TOKEN,
  loginForRefreshToken,
  postRefresh,
  postRevoke,
  restCredentials,
  rotate,
  rpcCredentials,
  SESSION_CLIENTS,
  SESSION_SCOPE,
  sessionUser,
} from "../support/session-flows.js";
import { startTestService, type TestService } from "../support/test-service.js";

const { rotating, leeway, nonRotating } = SESSION_CLIENTS;
const publicClient = SESSION_CLIENTS.public;

describe("sessions on Redis", () => {
  let redis: RedisServerHandle;
  let service: TestService;
  let inspector: Redis;
  /** Every refresh token this file saw. */
  const seenTokens: string[] = [];
  before(async () => {
    redis = await startRedisServer({ dedicated: true });
    service = await startTestService({ store: "redis", redisUrl: redis.url });
    inspector = new Redis(redis.url);
  });
  after(async () => {
    await service.close();
    await inspector.quit();
    await redis.stop();
  });

  /** The user's family keys and index still in Redis. */
  async function sessionKeysOf(userId: string): Promise<{ families: string[]; index: number }> {
    const keys = sessionKeys(userId);
    const families = await inspector.keys(`${keys.familyPrefix.replace(/[*?[\]\\]/g, "\\$&")}*`);
    return { families, index: await inspector.exists(keys.index) };
  }

  it("20 parallel exchanges of one token (leeway 0): one success, the family revoked by the others", async () => {
    const user = await sessionUser(service);
    const token = await loginForRefreshToken(service, user, rotating);
    seenTokens.push(token);
    assert.deepEqual((await sessionKeysOf(user.userId)).families.length, 1);

    const results = await Promise.all(
      Array.from({ length: 20 }, () => postRefresh(service, rotating, token)),
    );
    const successes = results.filter((r) => r.status === 200);
    assert.equal(successes.length, 1);
    for (const failure of results.filter((r) => r.status !== 200)) {
      assertOAuthError(failure, 400, "invalid_grant", INVALID_REFRESH_TOKEN);
    }
    // Auth0's reuse detection: the winner's successor fails too.
    const successor = String(successes[0]?.body.refresh_token);
    seenTokens.push(successor);
    assertOAuthError(
      await postRefresh(service, rotating, successor),
      400,
      "invalid_grant",
      INVALID_REFRESH_TOKEN,
    );
    // Consistent afterwards: nothing of the family is left, index included.
    assert.deepEqual(await sessionKeysOf(user.userId), { families: [], index: 0 });
  });

  it("20 parallel exchanges with a leeway: every one succeeds, the family lives on", async () => {
    const user = await sessionUser(service);
    const token = await loginForRefreshToken(service, user, leeway);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => postRefresh(service, leeway, token)),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      Array(20).fill(200),
    );
    const successors = results.map((r) => String(r.body.refresh_token));
    seenTokens.push(token, ...successors);
    assert.equal(new Set(successors).size, 20);
    // One family, still live: the last successor (kept among the live ones) rotates.
    assert.equal((await sessionKeysOf(user.userId)).families.length, 1);
    seenTokens.push(await rotate(service, leeway, successors.at(-1) ?? ""));
  });

  it("round trips: an exchange is one Redis command; a session start adds one to the login", async (t) => {
    const counter = await countCommands(redis.url);
    t.after(() => counter.stop());
    const scripts = (commands: string[][]) =>
      commands.map((c) => c[0]).every((name) => name === "evalsha" || name === "eval");
    const user = await sessionUser(service);

    // A login without offline_access: 2 (beginVerify, commitOtp); with it: 3 (+ createFamily).
    const mfaToken = await issueMfaToken(service, user.userId, {
      clientId: rotating.id,
      scope: "openid",
    });
    const code = freshCode(service, user.secret);
    await counter.take();
    const plain = await postTokenForm(service, {
      grant_type: MFA_OTP_GRANT,
      ...restCredentials(rotating).params,
      mfa_token: mfaToken,
      otp: code,
    });
    assert.equal(plain.status, 200);
    const plainCommands = await counter.take();
    assert.equal(plainCommands.length, 2);
    assert.ok(scripts(plainCommands));

    const sessionToken = await issueMfaToken(service, user.userId, {
      clientId: rotating.id,
      scope: SESSION_SCOPE,
    });
    const sessionCode = freshCode(service, user.secret);
    await counter.take();
    const body = (
      await postTokenForm(service, {
        grant_type: MFA_OTP_GRANT,
        ...restCredentials(rotating).params,
        mfa_token: sessionToken,
        otp: sessionCode,
      })
    ).body;
    seenTokens.push(String(body.refresh_token));
    const sessionCommands = await counter.take();
    assert.equal(sessionCommands.length, 3, JSON.stringify(sessionCommands.map((c) => c[0])));
    assert.ok(scripts(sessionCommands));

    const next = await rotate(service, rotating, String(body.refresh_token));
    seenTokens.push(next);
    const exchange = await counter.take();
    assert.equal(exchange.length, 1);
    assert.ok(scripts(exchange));

    // With a DPoP proof on standalone Redis the proof is recorded inside the same script.
    const key = await generateTestKey();
    const bound = await loginForRefreshToken(service, user, publicClient, {
      dpop: await dpopProofFor(service, key),
    });
    seenTokens.push(bound);
    await counter.take();
    seenTokens.push(
      await rotate(service, publicClient, bound, { dpop: await dpopProofFor(service, key) }),
    );
    const dpopExchange = await counter.take();
    assert.equal(dpopExchange.length, 1);

    // Revocation and revoke-all: one each.
    await postRevoke(service, rotating, { token: next });
    assert.equal((await counter.take()).length, 1);
    await clientsFor(service).mfaToken.revokeUserSessions({ userId: user.userId }, internalAuth);
    assert.equal((await counter.take()).length, 1);
  });

  it("RefreshToken, RevokeToken, RevokeUserSessions over gRPC", async () => {
    const rpc = clientsFor(service, "grpc");
    const user = await sessionUser(service);
    const token = await loginForRefreshToken(service, user, rotating);
    const { fields } = rpcCredentials(rotating);
    const refreshed = await rpc.token.refreshToken({ refreshToken: token, ...fields });
    assert.match(refreshed.refreshToken, /^rt1\./);
    assert.equal(refreshed.scope, SESSION_SCOPE);
    seenTokens.push(token, refreshed.refreshToken);
    await assertRpcError(
      rpc.token.refreshToken({ refreshToken: token, ...fields }),
      Code.FailedPrecondition,
      "invalid_grant",
      INVALID_REFRESH_TOKEN,
    );

    const second = await loginForRefreshToken(service, user, rotating);
    seenTokens.push(second);
    await rpc.token.revokeToken({ token: second, ...fields });
    await assertRpcError(
      rpc.token.refreshToken({ refreshToken: second, ...fields }),
      Code.FailedPrecondition,
      "invalid_grant",
      INVALID_REFRESH_TOKEN,
    );

    const third = await loginForRefreshToken(service, user, nonRotating);
    const fourth = await loginForRefreshToken(service, user, leeway);
    seenTokens.push(third, fourth);
    const { revoked } = await rpc.mfaToken.revokeUserSessions(
      { userId: user.userId },
      internalAuth,
    );
    assert.equal(revoked, 2);
    assert.deepEqual(await sessionKeysOf(user.userId), { families: [], index: 0 });
  });

  it("no refresh token, nor any 16 characters of one, anywhere in Redis", async () => {
    // A few live sessions of each kind, so there is something to look at.
    const user = await sessionUser(service);
    for (const client of [rotating, leeway, nonRotating]) {
      const token = await loginForRefreshToken(service, user, client);
      seenTokens.push(token);
      if (client !== nonRotating) seenTokens.push(await rotate(service, client, token));
    }
    assert.ok(seenTokens.length > 30, `${seenTokens.length} tokens seen`);

    const dump: string[] = [];
    for (const key of await inspector.keys("*")) {
      dump.push(key);
      const type = await inspector.type(key);
      if (type === "string") dump.push(String(await inspector.get(key)));
      else if (type === "hash") dump.push(...Object.entries(await inspector.hgetall(key)).flat());
      else if (type === "zset") {
        dump.push(...(await inspector.zrange(key, "0", "-1", "WITHSCORES")));
      } else if (type === "set") dump.push(...(await inspector.smembers(key)));
      else if (type === "list") dump.push(...(await inspector.lrange(key, 0, -1)));
      else assert.fail(`unexpected key type ${type} at ${key}`);
    }
    const text = dump.join("\n");
    assert.ok(text.includes("rf:"), "the dump holds session keys");
    for (const token of seenTokens) {
      for (let start = 0; start + 16 <= token.length; start += 8) {
        const window = token.slice(start, start + 16);
        assert.ok(!text.includes(window), `a piece of a refresh token is in Redis: ${window}`);
      }
    }
  });
});
