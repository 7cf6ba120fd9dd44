/**
 * The SessionStore on a real 3-master Redis Cluster, with the service's own
 * cluster client (createRedisClusterClient): the contract suite, a user's
 * session keys on one slot, every script (revoke-all included) for users on
 * every master, 20 parallel exchanges through the use case and through
 * `POST /oauth/token` of a service configured with REDIS_CLUSTER_NODES, and
 * round trips counted over all masters.
 *
 * Starts its own cluster unless REDIS_CLUSTER_NODES is set (then every test
 * uses fresh user ids).
 */
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Cluster } from "ioredis";
import { OAuthError } from "../../src/oauth/oauth-error.js";
import { exchangeRefreshToken } from "../../src/oauth/sessions/exchange-refresh-token.js";
import { DEFAULT_REFRESH_TOKEN_SETTINGS } from "../../src/oauth/sessions/refresh-token-settings.js";
import { revokeUserSessions } from "../../src/oauth/sessions/revoke-refresh-token.js";
import { createSessionDeps } from "../../src/oauth/sessions/session-deps.js";
import { startSession } from "../../src/oauth/sessions/start-session.js";
import { createRedisClusterClient } from "../../src/store/redis-client.js";
import { createRedisSessionStore } from "../../src/store/redis-session-store.js";
import { sessionKeys } from "../../src/store/session-keys.js";
import type { SessionStore } from "../../src/store/session-store.js";
import { dpopProofFor, generateTestKey } from "../support/dpop.js";
import { clientsFor, internalAuth } from "../support/flows.js";
import { assertOAuthError } from "../support/oauth-assertions.js";
import {
  countClusterCommands,
  type RedisClusterHandle,
  startRedisCluster,
} from "../support/redis-cluster.js";
import {
  assertRevoked,
  INVALID_REFRESH_TOKEN,
  loginForRefreshToken,
  postRefresh,
  postRevoke,
  rotate,
  SESSION_CLIENTS,
  sessionUser,
} from "../support/session-flows.js";
import {
  defineSessionStoreContract,
  newFamilyRef,
  newHash,
  ROTATING,
  SECOND,
  tally,
} from "../support/session-store-contract.js";
import { startTestService, type TestService } from "../support/test-service.js";

const CLIENT = {
  clientId: "spa",
  authMethod: "none" as const,
  grantTypes: ["refresh_token"],
  refreshToken: { ...DEFAULT_REFRESH_TOKEN_SETTINGS },
};

describe("redis cluster sessions", () => {
  let cluster: RedisClusterHandle;
  before(async () => {
    cluster = await startRedisCluster();
  });
  after(() => cluster.stop());

  defineSessionStoreContract("redis cluster", async () => {
    const sessions = createRedisSessionStore(createRedisClusterClient(cluster.nodes), {
      ownsClient: true,
    });
    return { sessions, advance: (ms) => sleep(ms), close: () => sessions.close() };
  });

  describe("redis cluster session store", () => {
    let sessions: SessionStore;
    let raw: Cluster;
    before(async () => {
      sessions = createRedisSessionStore(createRedisClusterClient(cluster.nodes), {
        ownsClient: true,
      });
      raw = new Cluster(cluster.nodes);
      await raw.ping();
    });
    after(async () => {
      await sessions.close();
      await raw.quit();
    });

    it("runs every script for users on every master; each user's keys share one slot", async () => {
      const t0 = Date.now();
      const users = Array.from({ length: 60 }, () => `auth0|${randomUUID()}`);
      const revoked = await Promise.all(
        users.map(async (userId) => {
          const families = [newFamilyRef(userId), newFamilyRef(userId), newFamilyRef(userId)];
          const hashes = families.map(() => newHash());
          for (const [i, family] of families.entries()) {
            await sessions.createFamily({
              family,
              tokenHash: hashes[i] ?? "",
              nowMs: t0,
              policy: ROTATING,
            });
          }
          const [a, b] = families;
          assert.ok(a && b);
          assert.deepEqual(
            await sessions.exchange({
              family: a,
              presentedHash: hashes[0] ?? "",
              successorHash: newHash(),
              nowMs: t0 + SECOND,
              policy: ROTATING,
            }),
            { kind: "rotated" },
          );
          assert.equal(await sessions.revokeFamilyByToken(b, t0 + SECOND), true);
          const keys = sessionKeys(userId);
          const slots = new Set(
            await Promise.all(
              [keys.index, ...families.map((f) => keys.family(f.familyId))].map(
                (key) => raw.cluster("KEYSLOT", key) as Promise<number>,
              ),
            ),
          );
          assert.equal(slots.size, 1);
          return sessions.revokeUserFamilies(userId, t0 + SECOND);
        }),
      );
      assert.deepEqual(
        revoked,
        users.map(() => 2),
      );

      // The users' slots cover every master.
      const masters = raw.nodes("master");
      const owners = new Set<string>();
      const slotRanges = await raw.cluster("SLOTS");
      for (const userId of users) {
        const slot = (await raw.cluster("KEYSLOT", sessionKeys(userId).index)) as number;
        const range = slotRanges.find(([from, to]) => slot >= from && slot <= to);
        owners.add(String(range?.[2]?.[1]));
      }
      assert.equal(owners.size, masters.length);
    });

    it("20 parallel exchanges of one token through the use case, leeway 0: one success, the family revoked", async () => {
      const deps = createSessionDeps(randomBytes(32), sessions);
      const userId = `auth0|${randomUUID()}`;
      const token = await startSession(deps, {
        client: CLIENT,
        userId,
        audience: "",
        scope: "offline_access",
        amr: ["mfa"],
        nowMs: Date.now(),
      });
      assert.ok(token);
      const now = Date.now();
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, () =>
          exchangeRefreshToken(deps, { client: CLIENT, refreshToken: token, nowMs: now }),
        ),
      );
      const outcomes = results.map((r) => ({
        kind:
          r.status === "fulfilled"
            ? "200"
            : r.reason instanceof OAuthError
              ? r.reason.error
              : String(r.reason),
      }));
      assert.deepEqual(tally(outcomes), { "200": 1, invalid_grant: 19 });
      const winner = results.find((r) => r.status === "fulfilled");
      assert.ok(winner?.status === "fulfilled" && winner.value.refreshToken);
      await assert.rejects(
        exchangeRefreshToken(deps, {
          client: CLIENT,
          refreshToken: winner.value.refreshToken,
          nowMs: now + 1,
        }),
        { error: "invalid_grant", description: "Unknown or invalid refresh token." },
      );
      assert.equal(await revokeUserSessions(deps, { userId, nowMs: now + 1 }), 0);
      assert.equal(await raw.exists(sessionKeys(userId).index), 0);
    });

    it("costs one round trip per step over all masters; a DPoP exchange adds one SET NX", async () => {
      const client = createRedisClusterClient(cluster.nodes);
      const store = createRedisSessionStore(client);
      await client.ping();
      await Promise.all(client.nodes("master").map((node) => node.ping()));
      const counter = await countClusterCommands(client);
      try {
        const names = async () => (await counter.take()).map((c) => c[0]);
        const family = newFamilyRef();
        const t0 = Date.now();
        const first = newHash();
        const second = newHash();
        await store.createFamily({ family, tokenHash: first, nowMs: t0, policy: ROTATING });
        assert.equal((await names()).length, 1);
        await store.exchange({
          family,
          presentedHash: first,
          successorHash: second,
          nowMs: t0,
          policy: ROTATING,
        });
        assert.equal((await names()).length, 1);
        await store.exchange({
          family,
          presentedHash: second,
          successorHash: newHash(),
          nowMs: t0,
          policy: ROTATING,
          proof: { id: randomUUID(), ttlMs: 1000 },
        });
        const withProof = await names();
        assert.equal(withProof.length, 2);
        assert.equal(withProof[0], "set");
        await store.revokeFamilyByToken(family, t0);
        assert.equal((await names()).length, 1);
        await store.revokeUserFamilies(family.userId, t0);
        assert.equal((await names()).length, 1);

        // A whole exchange through the use case: one script call (a plain EVAL
        // the first time the script runs on that master's connection).
        const deps = createSessionDeps(randomBytes(32), store);
        const token = await startSession(deps, {
          client: CLIENT,
          userId: `auth0|${randomUUID()}`,
          audience: "",
          scope: "offline_access",
          amr: ["mfa"],
          nowMs: Date.now(),
        });
        assert.ok(token);
        await counter.take();
        await exchangeRefreshToken(deps, {
          client: CLIENT,
          refreshToken: token,
          nowMs: Date.now(),
        });
        const exchange = await names();
        assert.equal(exchange.length, 1);
        assert.ok(["eval", "evalsha"].includes(exchange[0] ?? ""), String(exchange));
      } finally {
        await counter.stop();
        await store.close();
        await client.quit();
      }
    });
  });

  describe("through POST /oauth/token, on the service's own cluster client (REDIS_CLUSTER_NODES)", () => {
    let service: TestService;
    before(async () => {
      service = await startTestService({
        store: "config",
        env: { REDIS_CLUSTER_NODES: cluster.nodesEnv },
      });
    });
    after(() => service.close());

    it("20 parallel exchanges of one token (leeway 0): one success, the successor fails too", async () => {
      const user = await sessionUser(service);
      const token = await loginForRefreshToken(service, user, SESSION_CLIENTS.rotating);
      const results = await Promise.all(
        Array.from({ length: 20 }, () => postRefresh(service, SESSION_CLIENTS.rotating, token)),
      );
      const successes = results.filter((r) => r.status === 200);
      assert.equal(successes.length, 1);
      for (const failure of results.filter((r) => r.status !== 200)) {
        assertOAuthError(failure, 400, "invalid_grant", INVALID_REFRESH_TOKEN);
      }
      assertOAuthError(
        await postRefresh(
          service,
          SESSION_CLIENTS.rotating,
          String(successes[0]?.body.refresh_token),
        ),
        400,
        "invalid_grant",
        INVALID_REFRESH_TOKEN,
      );
      const raw = new Cluster(cluster.nodes);
      try {
        const keys = sessionKeys(user.userId);
        assert.equal(await raw.exists(keys.index), 0);
      } finally {
        await raw.quit();
      }
    });

    it("a DPoP-bound session rotates, revokes and is revoked per user", async () => {
      const user = await sessionUser(service);
      const key = await generateTestKey();
      const client = SESSION_CLIENTS.public;
      const token = await loginForRefreshToken(service, user, client, {
        dpop: await dpopProofFor(service, key),
      });
      const next = await rotate(service, client, token, { dpop: await dpopProofFor(service, key) });
      assertRevoked(await postRevoke(service, client, { token: next }));
      assertOAuthError(
        await postRefresh(service, client, next, { dpop: await dpopProofFor(service, key) }),
        400,
        "invalid_grant",
        INVALID_REFRESH_TOKEN,
      );
      await loginForRefreshToken(service, user, SESSION_CLIENTS.rotating);
      const { revoked } = await clientsFor(service).mfaToken.revokeUserSessions(
        { userId: user.userId },
        internalAuth,
      );
      assert.equal(revoked, 1);
    });
  });
});
