/**
 * The Store contract suite (docs/architecture.md, defined in test/support/store-contract.ts)
 * run against memory and Redis, plus Redis-only checks (TTLs, key layout,
 * round trips, outage handling).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { createMemoryStore } from "../../src/store/memory-store.js";
import { userTag } from "../../src/store/redis-keys.js";
import { connectRedisStore } from "../../src/store/redis-store.js";
import { type Store, StoreUnavailableError } from "../../src/store/store.js";
import {
  countCommands,
  freePort,
  type RedisServerHandle,
  startRedisServer,
} from "../support/redis-server.js";
import {
  authenticator,
  defineStoreContract,
  MINUTE,
  newUser,
  POLICY,
} from "../support/store-contract.js";

export type { StoreHarness } from "../support/store-contract.js";

// ---------------------------------------------------------------- memory

defineStoreContract("memory", async () => {
  // Real time plus what the tests let pass, like Redis's clock: the suite's
  // users start at the real time (newUser), whenever their test runs.
  let skipped = 0;
  const store = createMemoryStore({ now: () => Date.now() + skipped });
  return {
    store,
    advance: async (ms) => {
      skipped += ms;
    },
    close: () => store.close(),
  };
});

describe("memory store", () => {
  it("sweeps expired entries, so memory stays bounded by the live ones", async () => {
    let clock = 1_000_000;
    const store = createMemoryStore({ now: () => clock });
    for (let i = 0; i < 10_000; i++) {
      clock += 10;
      await store.rememberOnce("dpop", `jti-${i}`, 100);
    }
    // About 10 live values; the sweep keeps at most ~2× live + 64 entries.
    assert.ok(store.expiringEntryCount() < 200, `${store.expiringEntryCount()} entries`);

    let now = 1_000_000;
    for (let i = 0; i < 10_000; i++) {
      now += 10;
      const token = { userId: `u${i}`, tokenId: `t${i}`, expiresAtMs: now + 100 };
      await store.beginVerify(token, now, { capacity: 3, refillMs: 100 });
      await store.redeemRecoveryCode(token, "x", "y", now, { capacity: 3, refillMs: 100 });
    }
    assert.ok(store.expiringEntryCount() < 200, `${store.expiringEntryCount()} entries`);
  });

  it("returns copies, not its own records", async () => {
    const store = createMemoryStore();
    await store.associatePending("u", { id: "a", encryptedSecret: "s" }, "h");
    const got = await store.getAuthenticator("u");
    assert.ok(got);
    got.active = true;
    assert.equal((await store.getAuthenticator("u"))?.active, false);
  });
});

// ---------------------------------------------------------------- redis

describe("redis", () => {
  let server: RedisServerHandle;
  before(async () => {
    server = await startRedisServer();
  });
  after(() => server.stop());

  defineStoreContract("redis", async () => {
    const store = connectRedisStore(server.url);
    return { store, advance: (ms) => sleep(ms), close: () => store.close() };
  });

  describe("redis store", () => {
    let store: Store;
    let raw: Redis;
    before(() => {
      store = connectRedisStore(server.url);
      raw = new Redis(server.url);
    });
    after(async () => {
      await store.close();
      await raw.quit();
    });

    it("keeps every key of a user under its hash tag; only :otp and :rc are durable", async () => {
      const { userId, token, t0 } = newUser();
      const auth = authenticator();
      await store.associatePending(userId, auth, "rc");
      const tok = token();
      await store.beginVerify(tok, t0, POLICY);
      await store.beginVerify(token(), t0, POLICY); // a failure: the bucket stays charged
      await store.commitOtp({
        token: tok,
        authenticatorId: auth.id,
        step: 9,
        nowMs: t0,
        bucket: POLICY,
      });
      await store.redeemRecoveryCode(token(), "rc", "rc2", t0, POLICY);
      await store.redeemRecoveryCode(token(), "wrong", "x", t0, POLICY);

      const tag = userTag(userId);
      const keys = (await raw.keys("ts:*")).filter((k) => k.includes(tag));
      const suffixes = keys.map((k) => k.slice(`ts:${tag}:`.length).replace(/^mt:.*/, "mt")).sort();
      assert.deepEqual(suffixes, ["fb", "mt", "mt", "otp", "rc"]);
      for (const key of keys) {
        assert.ok(key.startsWith(`ts:${tag}:`), key);
        const pttl = await raw.pttl(key);
        if (key.endsWith(":otp") || key.endsWith(":rc")) assert.equal(pttl, -1, key);
        else assert.ok(pttl > 0, `${key} has no TTL (${pttl})`);
      }
      // The secret is stored as given (already encrypted), never in another form.
      assert.equal(await raw.hget(`ts:${tag}:otp`, "secret"), auth.encryptedSecret);
    });

    it("sets TTLs: bucket until full again, marker until token expiry, once-values for ttlMs", async () => {
      const { userId, token, t0, auth } = await (async () => {
        const u = newUser();
        const a = authenticator();
        await store.associatePending(u.userId, a, "rc");
        return { ...u, auth: a };
      })();
      const tag = userTag(userId);
      await store.beginVerify(token(), t0, POLICY);
      await store.beginVerify(token(), t0, POLICY);
      const fb = `ts:${tag}:fb`;
      assert.equal(Number(await raw.get(fb)), t0 + 2 * MINUTE);
      let pttl = await raw.pttl(fb);
      assert.ok(pttl > 2 * MINUTE - 5000 && pttl <= 2 * MINUTE, `${pttl}`);

      // A success gives one attempt back: the expiry moves one period earlier.
      const tok = token(5 * MINUTE);
      await store.beginVerify(tok, t0, POLICY);
      await store.commitOtp({
        token: tok,
        authenticatorId: auth.id,
        step: 3,
        nowMs: t0,
        bucket: POLICY,
      });
      pttl = await raw.pttl(fb);
      assert.ok(pttl > 2 * MINUTE - 5000 && pttl <= 2 * MINUTE, `${pttl}`);
      const markerTtl = await raw.pttl(`ts:${tag}:mt:${tok.tokenId}`);
      assert.ok(markerTtl > 5 * MINUTE - 5000 && markerTtl <= 5 * MINUTE, `${markerTtl}`);

      // Giving back the last charged attempt deletes the key (a full bucket).
      const { userId: u2, token: token2, t0: t2 } = newUser();
      const a2 = authenticator();
      await store.associatePending(u2, a2, "rc");
      const tok2 = token2();
      await store.beginVerify(tok2, t2, POLICY);
      await store.commitOtp({
        token: tok2,
        authenticatorId: a2.id,
        step: 1,
        nowMs: t2,
        bucket: POLICY,
      });
      assert.equal(await raw.exists(`ts:${userTag(u2)}:fb`), 0);

      const existing = new Set(await raw.keys("ts:once:*"));
      await store.rememberOnce("dpop", randomUUID(), 30_000);
      const created = (await raw.keys("ts:once:*")).filter((k) => !existing.has(k));
      assert.equal(created.length, 1);
      const onceTtl = await raw.pttl(created[0] ?? "");
      assert.ok(onceTtl > 25_000 && onceTtl <= 30_000, `${onceTtl}`);
    });

    it("costs one round trip per method, two for a successful verify", async () => {
      const counted = connectRedisStore(server.url);
      await counted.ping(); // connect (handshake commands are not counted)
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
        const { userId, token, t0 } = newUser();
        const auth = authenticator();
        // The first script call on a connection is a plain EVAL: still one command.
        await expectOne("associatePending", () => counted.associatePending(userId, auth, "rc"));
        await expectOne("getAuthenticator", () => counted.getAuthenticator(userId));
        await expectOne("getFactors", () => counted.getFactors(userId));
        await expectOne("isMfaTokenConsumed", () => counted.isMfaTokenConsumed(token()));
        const tok = token();
        await expectOne("beginVerify", () => counted.beginVerify(tok, t0, POLICY));
        await expectOne("commitOtp", () =>
          counted.commitOtp({
            token: tok,
            authenticatorId: auth.id,
            step: 1,
            nowMs: t0,
            bucket: POLICY,
          }),
        );
        await expectOne("redeemRecoveryCode", () =>
          counted.redeemRecoveryCode(token(), "rc", "rc2", t0, POLICY),
        );
        await expectOne("rememberOnce", () => counted.rememberOnce("dpop", randomUUID(), 1000));
        await expectOne("deleteAuthenticator", () => counted.deleteAuthenticator(userId, auth.id));
        await expectOne("ping", () => counted.ping());

        // A whole successful verify, scripts already loaded: exactly 2 (docs/architecture.md).
        await counted.associatePending(userId, authenticator("again"), "rc");
        await counter.take();
        const tok2 = token();
        await counted.beginVerify(tok2, t0, POLICY);
        await counted.commitOtp({
          token: tok2,
          authenticatorId: "again",
          step: 2,
          nowMs: t0,
          bucket: POLICY,
        });
        const commands = await counter.take();
        assert.deepEqual(
          commands.map((c) => c[0]),
          ["evalsha", "evalsha"],
        );
      } finally {
        await counter.stop();
        await counted.close();
      }
    });
  });
});

describe("redis outage", () => {
  it("a stopped Redis gives StoreUnavailableError within seconds", async () => {
    const server = await startRedisServer({ dedicated: true });
    const store = connectRedisStore(server.url);
    try {
      await store.ping();
      const { token, t0 } = newUser();
      assert.equal((await store.beginVerify(token(), t0, POLICY)).kind, "ready");
      await server.stop();
      for (const call of [
        () => store.beginVerify(token(), t0, POLICY),
        () => store.rememberOnce("dpop", "x", 1000),
        () => store.ping(),
      ]) {
        const started = Date.now();
        await assert.rejects(call(), StoreUnavailableError);
        assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
      }
    } finally {
      await store.close();
      await server.stop();
    }
  });

  it("an unreachable Redis at startup gives StoreUnavailableError within seconds", async () => {
    const port = await freePort(); // nothing listens there
    const store = connectRedisStore(`redis://127.0.0.1:${port}`);
    try {
      const started = Date.now();
      await assert.rejects(store.ping(), StoreUnavailableError);
      await assert.rejects(store.getAuthenticator("u"), StoreUnavailableError);
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    } finally {
      await store.close();
    }
  });
});
