/**
 * The SessionStore contract suite (test/support/session-store-contract.ts)
 * on memory and on a real redis-server, plus Redis-only checks: key layout
 * under the user's hash tag, TTLs never beyond a family's remaining lifetime,
 * one round trip per step, no token in clear after a whole flow, 20 parallel
 * exchanges through the use cases, and outages.
 */
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import type { RegisteredClient } from "../../src/oauth/client-registry.js";
import { OAuthError } from "../../src/oauth/oauth-error.js";
import { exchangeRefreshToken } from "../../src/oauth/sessions/exchange-refresh-token.js";
import { DEFAULT_REFRESH_TOKEN_SETTINGS } from "../../src/oauth/sessions/refresh-token-settings.js";
import {
  revokeRefreshToken,
  revokeUserSessions,
} from "../../src/oauth/sessions/revoke-refresh-token.js";
import { createSessionDeps, type SessionDeps } from "../../src/oauth/sessions/session-deps.js";
import { startSession } from "../../src/oauth/sessions/start-session.js";
import { createMemorySessionStore } from "../../src/store/memory-session-store.js";
import { createRedisClient } from "../../src/store/redis-client.js";
import { userTag } from "../../src/store/redis-keys.js";
import { createRedisSessionStore } from "../../src/store/redis-session-store.js";
import { sessionKeys } from "../../src/store/session-keys.js";
import type { SessionStore } from "../../src/store/session-store.js";
import { StoreUnavailableError } from "../../src/store/store.js";
import {
  countCommands,
  freePort,
  type RedisServerHandle,
  startRedisServer,
} from "../support/redis-server.js";
import {
  DAY,
  defineSessionStoreContract,
  newFamilyRef,
  newHash,
  ROTATING,
  SECOND,
  tally,
} from "../support/session-store-contract.js";

// ---------------------------------------------------------------- memory

defineSessionStoreContract("memory", async () => {
  const sessions = createMemorySessionStore();
  return { sessions, advance: async () => {}, close: () => sessions.close() };
});

describe("memory session store", () => {
  it("sweeps expired families, so memory stays bounded by the live ones", async () => {
    const sessions = createMemorySessionStore();
    const policy = { ...ROTATING, absoluteLifetimeMs: 100, idleLifetimeMs: null };
    let now = 1_000_000;
    for (let i = 0; i < 10_000; i++) {
      now += 10;
      await sessions.createFamily({
        family: newFamilyRef(),
        tokenHash: newHash(),
        nowMs: now,
        policy,
      });
    }
    // About 10 live families; the sweep keeps at most ~2× live + 64.
    assert.ok(sessions.familyCount() < 200, `${sessions.familyCount()} families`);
  });

  it("shares proof marks with the function it is given", async () => {
    const seen = new Set<string>();
    const sessions = createMemorySessionStore({
      rememberOnce: async (scope, value) => {
        const key = `${scope}:${value}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      },
    });
    seen.add("dpop:used-elsewhere");
    const family = newFamilyRef();
    const t0 = Date.now();
    const first = newHash();
    await sessions.createFamily({ family, tokenHash: first, nowMs: t0, policy: ROTATING });
    const exchange = (id: string) =>
      sessions.exchange({
        family,
        presentedHash: first,
        successorHash: newHash(),
        nowMs: t0,
        policy: ROTATING,
        proof: { id, ttlMs: 1000 },
      });
    assert.deepEqual(await exchange("used-elsewhere"), { kind: "proof_replayed" });
    assert.deepEqual(await exchange("fresh"), { kind: "rotated" });
  });
});

// ---------------------------------------------------------------- redis

const PUBLIC_CLIENT: Pick<
  RegisteredClient,
  "clientId" | "authMethod" | "grantTypes" | "refreshToken"
> = {
  clientId: "spa",
  authMethod: "none",
  grantTypes: ["http://auth0.com/oauth/grant-type/mfa-otp", "refresh_token"],
  refreshToken: { ...DEFAULT_REFRESH_TOKEN_SETTINGS },
};

function login(deps: SessionDeps, userId: string, client = PUBLIC_CLIENT, dpopJkt?: string) {
  return startSession(deps, {
    client,
    userId,
    audience: "https://api.example.com/",
    scope: "openid profile offline_access",
    amr: ["mfa", "otp"],
    dpopJkt,
    nowMs: Date.now(),
  });
}

describe("redis", () => {
  let server: RedisServerHandle;
  before(async () => {
    server = await startRedisServer();
  });
  after(() => server.stop());

  defineSessionStoreContract("redis", async () => {
    const sessions = createRedisSessionStore(createRedisClient(server.url), { ownsClient: true });
    return { sessions, advance: (ms) => sleep(ms), close: () => sessions.close() };
  });

  describe("redis session store", () => {
    let client: Redis;
    let sessions: SessionStore;
    let raw: Redis;
    before(() => {
      client = createRedisClient(server.url);
      sessions = createRedisSessionStore(client);
      raw = new Redis(server.url);
    });
    after(async () => {
      await sessions.close(); // owns nothing: the client stays open
      assert.equal(await client.ping(), "PONG");
      await client.quit();
      await raw.quit();
    });

    const pttl = (key: string) => raw.pttl(key);
    const near = (actual: number, expected: number) =>
      assert.ok(actual <= expected && actual > expected - 5000, `${actual} vs ${expected}`);

    it("keeps a family and its index under the user's hash tag, with hashes and times only", async () => {
      const family = newFamilyRef();
      const t0 = Date.now();
      const first = newHash();
      const second = newHash();
      await sessions.createFamily({ family, tokenHash: first, nowMs: t0, policy: ROTATING });
      const keys = sessionKeys(family.userId);
      const familyKey = keys.family(family.familyId);
      assert.ok(familyKey.startsWith(`ts:${userTag(family.userId)}:rf:`));
      assert.ok(keys.index.startsWith(`ts:${userTag(family.userId)}:`));
      assert.deepEqual(await raw.hgetall(familyKey), {
        l: first,
        s: String(t0),
        u: String(t0),
      });
      await sessions.exchange({
        family,
        presentedHash: first,
        successorHash: second,
        nowMs: t0 + SECOND,
        policy: ROTATING,
      });
      assert.deepEqual(await raw.hgetall(familyKey), {
        l: second,
        p: first,
        pf: String(t0 + SECOND),
        s: String(t0),
        u: String(t0 + SECOND),
      });
      assert.deepEqual(await raw.zrange(keys.index, "0", "-1", "WITHSCORES"), [
        family.familyId,
        String(t0 + SECOND + 15 * DAY),
      ]);
      const userKeys = (await raw.keys(`ts:${userTag(family.userId)}:*`)).sort();
      assert.deepEqual(userKeys, [familyKey, keys.index].sort());
    });

    it("sets TTLs to the family's remaining lifetime: the earlier of absolute and idle", async () => {
      const family = newFamilyRef();
      const keys = sessionKeys(family.userId);
      const familyKey = keys.family(family.familyId);
      const policy = { ...ROTATING, absoluteLifetimeMs: 100_000, idleLifetimeMs: 60_000 };
      const t0 = Date.now();
      const first = newHash();
      await sessions.createFamily({ family, tokenHash: first, nowMs: t0, policy });
      near(await pttl(familyKey), 60_000);
      near(await pttl(keys.index), 60_000);
      // 50 s later: 50 s of absolute lifetime left, less than a fresh idle period.
      await sessions.exchange({
        family,
        presentedHash: first,
        successorHash: newHash(),
        nowMs: t0 + 50_000,
        policy,
      });
      near(await pttl(familyKey), 50_000);
      near(await pttl(keys.index), 50_000);
    });

    it("no TTL without limits; the index lives as long as its longest family", async () => {
      const userId = `auth0|${randomUUID()}`;
      const keys = sessionKeys(userId);
      const t0 = Date.now();
      const endless = newFamilyRef(userId);
      const short = newFamilyRef(userId);
      const long = newFamilyRef(userId);
      const infinite = { ...ROTATING, absoluteLifetimeMs: null, idleLifetimeMs: null };
      const create = (family: typeof endless, policy = ROTATING) =>
        sessions.createFamily({ family, tokenHash: newHash(), nowMs: t0, policy });
      await create(short, { ...ROTATING, absoluteLifetimeMs: 60_000 });
      near(await pttl(keys.index), 60_000);
      await create(long, { ...ROTATING, absoluteLifetimeMs: 120_000 });
      near(await pttl(keys.index), 120_000);
      await create(endless, infinite);
      assert.equal(await pttl(keys.family(endless.familyId)), -1);
      assert.equal(await pttl(keys.index), -1);
      assert.equal(await sessions.revokeFamilyByToken(endless, t0), true);
      near(await pttl(keys.index), 120_000);
      assert.equal(await sessions.revokeFamilyByToken(long, t0), true);
      near(await pttl(keys.index), 60_000);
      assert.equal(await sessions.revokeFamilyByToken(short, t0), true);
      assert.equal(await raw.exists(keys.index), 0);
    });

    it("creating a family drops index entries whose families have expired", async () => {
      const userId = `auth0|${randomUUID()}`;
      const keys = sessionKeys(userId);
      const t0 = Date.now();
      const old = newFamilyRef(userId);
      await sessions.createFamily({
        family: old,
        tokenHash: newHash(),
        nowMs: t0,
        policy: { ...ROTATING, absoluteLifetimeMs: 50 },
      });
      await sleep(100);
      await sessions.createFamily({
        family: newFamilyRef(userId),
        tokenHash: newHash(),
        nowMs: t0 + 100,
        policy: ROTATING,
      });
      assert.equal(await raw.zcard(keys.index), 1);
      assert.equal(await raw.zscore(keys.index, old.familyId), null);
    });

    it("costs one round trip per step, a DPoP exchange included", async () => {
      const counted = createRedisClient(server.url);
      const store = createRedisSessionStore(counted);
      await counted.ping();
      const counter = await countCommands(server.url);
      try {
        const expectOne = async (label: string, op: () => Promise<unknown>) => {
          await op();
          const commands = await counter.take();
          assert.equal(
            commands.length,
            1,
            `${label}: ${JSON.stringify(commands.map((c) => c[0]))}`,
          );
        };
        const family = newFamilyRef();
        const t0 = Date.now();
        const first = newHash();
        const second = newHash();
        await expectOne("createFamily", () =>
          store.createFamily({ family, tokenHash: first, nowMs: t0, policy: ROTATING }),
        );
        await expectOne("exchange", () =>
          store.exchange({
            family,
            presentedHash: first,
            successorHash: second,
            nowMs: t0,
            policy: ROTATING,
          }),
        );
        await expectOne("exchange with a DPoP proof", () =>
          store.exchange({
            family,
            presentedHash: second,
            successorHash: newHash(),
            nowMs: t0,
            policy: ROTATING,
            proof: { id: randomUUID(), ttlMs: 1000 },
          }),
        );
        await expectOne("exchange (reuse)", () =>
          store.exchange({
            family,
            presentedHash: first,
            successorHash: newHash(),
            nowMs: t0,
            policy: ROTATING,
          }),
        );
        await expectOne("revokeFamilyByToken", () => store.revokeFamilyByToken(family, t0));
        await expectOne("revokeUserFamilies", () => store.revokeUserFamilies(family.userId, t0));

        // A whole exchange through the use case, scripts loaded: one EVALSHA.
        const deps = createSessionDeps(randomBytes(32), store);
        const token = await login(deps, `auth0|${randomUUID()}`);
        assert.ok(token);
        await counter.take();
        await exchangeRefreshToken(deps, {
          client: PUBLIC_CLIENT,
          refreshToken: token,
          nowMs: Date.now(),
        });
        assert.deepEqual(
          (await counter.take()).map((c) => c[0]),
          ["evalsha"],
        );
      } finally {
        await counter.stop();
        await store.close();
        await counted.quit();
      }
    });

    it("holds no refresh token in clear after a whole flow (every key and value scanned)", async () => {
      const deps = createSessionDeps(randomBytes(32), sessions);
      const userId = `auth0|${randomUUID()}`;
      const issued: string[] = [];
      const first = await login(deps, userId, PUBLIC_CLIENT, "thumbprint");
      assert.ok(first);
      issued.push(first);
      let current = first;
      for (let i = 0; i < 3; i++) {
        const next = await exchangeRefreshToken(deps, {
          client: PUBLIC_CLIENT,
          refreshToken: current,
          dpop: { jkt: "thumbprint", proof: { id: `thumbprint.${randomUUID()}`, ttlMs: 60_000 } },
          nowMs: Date.now(),
        });
        assert.ok(next.refreshToken);
        issued.push(next.refreshToken);
        current = next.refreshToken;
      }
      const second = await login(deps, userId);
      assert.ok(second);
      issued.push(second);

      // Every key of the database, and every value in it.
      const dump: string[] = [];
      let cursor = "0";
      do {
        const [next, keys] = await raw.scan(cursor, "COUNT", 1000);
        cursor = next;
        for (const key of keys) {
          dump.push(key);
          const type = await raw.type(key);
          if (type === "string") dump.push((await raw.get(key)) ?? "");
          else if (type === "hash") dump.push(...Object.entries(await raw.hgetall(key)).flat());
          else if (type === "zset") dump.push(...(await raw.zrange(key, "0", "-1", "WITHSCORES")));
          else if (type === "set") dump.push(...(await raw.smembers(key)));
          else if (type === "list") dump.push(...(await raw.lrange(key, 0, -1)));
        }
      } while (cursor !== "0");
      const haystack = dump.join("\n");
      assert.ok(haystack.includes(deps.hash(current)), "the scan sees the session's hashes");
      for (const token of issued) {
        assert.ok(!haystack.includes(token), "a refresh token in clear");
        assert.ok(!haystack.includes(token.slice("rt1.".length, 40)), "part of a sealed token");
      }
      assert.ok(!haystack.includes("thumbprint"), "the binding lives in the token only");
    });

    for (const leewaySeconds of [0, 30]) {
      it(`20 parallel exchanges of one token through the use case, leeway ${leewaySeconds}`, async () => {
        const client = {
          ...PUBLIC_CLIENT,
          refreshToken: { ...DEFAULT_REFRESH_TOKEN_SETTINGS, leewaySeconds },
        };
        const deps = createSessionDeps(randomBytes(32), sessions);
        const userId = `auth0|${randomUUID()}`;
        const token = await login(deps, userId, client);
        assert.ok(token);
        const now = Date.now();
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, () =>
            exchangeRefreshToken(deps, { client, refreshToken: token, nowMs: now }),
          ),
        );
        const outcomes = results.map((r) =>
          r.status === "fulfilled"
            ? { kind: "200" }
            : { kind: r.reason instanceof OAuthError ? r.reason.error : String(r.reason) },
        );
        const successes = results.flatMap((r) =>
          r.status === "fulfilled" && r.value.refreshToken ? [r.value.refreshToken] : [],
        );
        if (leewaySeconds === 0) {
          assert.deepEqual(tally(outcomes), { "200": 1, invalid_grant: 19 });
          // Consistent afterwards: the one successor is revoked with its family.
          await assert.rejects(
            exchangeRefreshToken(deps, { client, refreshToken: successes[0] ?? "", nowMs: now }),
            { error: "invalid_grant" },
          );
          assert.equal(await revokeUserSessions(deps, { userId, nowMs: now }), 0);
          assert.equal(await raw.exists(sessionKeys(userId).index), 0);
        } else {
          assert.deepEqual(tally(outcomes), { "200": 20 });
          assert.equal(new Set(successes).size, 20);
          assert.equal(await raw.zcard(sessionKeys(userId).index), 1);
          const next = await exchangeRefreshToken(deps, {
            client,
            refreshToken: successes[19] ?? "",
            nowMs: now + 1,
          });
          assert.ok(next.refreshToken);
          await revokeRefreshToken(deps, { client, token: next.refreshToken, nowMs: now + 2 });
          assert.equal(await raw.exists(sessionKeys(userId).index), 0);
        }
      });
    }
  });
});

describe("redis session store outage", () => {
  it("an unreachable Redis gives StoreUnavailableError within seconds", async () => {
    const port = await freePort(); // nothing listens there
    const sessions = createRedisSessionStore(createRedisClient(`redis://127.0.0.1:${port}`), {
      ownsClient: true,
    });
    try {
      const started = Date.now();
      const family = newFamilyRef();
      const results = await Promise.allSettled([
        sessions.createFamily({ family, tokenHash: newHash(), nowMs: started, policy: ROTATING }),
        sessions.exchange({
          family,
          presentedHash: newHash(),
          successorHash: newHash(),
          nowMs: started,
          policy: ROTATING,
        }),
        sessions.revokeFamilyByToken(family, started),
        sessions.revokeUserFamilies(family.userId, started),
      ]);
      for (const result of results) {
        assert.equal(result.status, "rejected");
        assert.ok(result.reason instanceof StoreUnavailableError, String(result.reason));
      }
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    } finally {
      await sessions.close();
    }
  });
});
