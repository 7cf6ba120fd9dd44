/**
 * Redis Cluster (docs/configuration.md REDIS_CLUSTER_NODES, docs/architecture.md): the Store contract suite
 * on a real 3-master cluster with the service's own cluster client
 * (createRedisClusterClient), cluster-specific checks (every multi-key script
 * on users spread over every master, keys of one user on one slot, round
 * trips counted over all masters, fail-fast outages), and the service end to
 * end on the cluster.
 *
 * Starts its own cluster (test/support/redis-cluster.ts) unless
 * REDIS_CLUSTER_NODES is set; then every test uses fresh user ids and only
 * the outage test starts a dedicated cluster (it stops it).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Cluster } from "ioredis";
import { createRedisClusterClient } from "../../src/store/redis-client.js";
import { userTag } from "../../src/store/redis-keys.js";
import { createRedisStore } from "../../src/store/redis-store.js";
import { type Store, StoreUnavailableError } from "../../src/store/store.js";
import {
  codeAt,
  freshCode,
  issueMfaToken,
  otpGrantParams,
  postTokenForm,
  uniqueUserId,
} from "../support/flows.js";
import { assertOAuthError } from "../support/oauth-assertions.js";
import {
  countClusterCommands,
  type RedisClusterHandle,
  startRedisCluster,
} from "../support/redis-cluster.js";
import { freePort } from "../support/redis-server.js";
import {
  authenticator,
  defineStoreContract,
  MINUTE,
  newAddress,
  newUser,
  POLICY,
} from "../support/store-contract.js";
import { startTestService, type TestService } from "../support/test-service.js";

/** The store exactly as the service builds it for REDIS_CLUSTER_NODES. */
function clusterStore(nodes: RedisClusterHandle["nodes"]): Store {
  return createRedisStore(createRedisClusterClient(nodes));
}

function tally(outcomes: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1;
  return counts;
}

describe("redis cluster", () => {
  let cluster: RedisClusterHandle;
  before(async () => {
    cluster = await startRedisCluster();
  });
  after(() => cluster.stop());

  defineStoreContract("redis cluster", async () => {
    const store = clusterStore(cluster.nodes);
    return { store, advance: (ms) => sleep(ms), close: () => store.close() };
  });

  describe("redis cluster store", () => {
    let store: Store;
    /** A plain Cluster client for inspection (routes keyed commands to the slot's master). */
    let raw: Cluster;
    before(async () => {
      store = clusterStore(cluster.nodes);
      raw = new Cluster(cluster.nodes);
      await raw.ping(); // ready: every master is known
    });
    after(async () => {
      await store.close();
      await raw.quit();
    });

    const masters = () => raw.nodes("master");
    const masterName = (node: { options: { host?: string; port?: number } }) =>
      `${node.options.host}:${node.options.port}`;

    /** Every key matching `pattern`, by master ("host:port" → keys): KEYS runs on one node only. */
    async function keysByMaster(pattern: string): Promise<Map<string, string[]>> {
      const nodes = masters();
      const keys = await Promise.all(nodes.map((node) => node.keys(pattern)));
      return new Map(nodes.map((node, i) => [masterName(node), keys[i] ?? []]));
    }

    /** The masters holding keys of `userId`, and those keys. */
    async function userKeysByMaster(userId: string): Promise<Map<string, string[]>> {
      const byMaster = await keysByMaster(`ts:${userTag(userId)}:*`);
      for (const [name, keys] of byMaster) if (keys.length === 0) byMaster.delete(name);
      return byMaster;
    }

    it("keeps every key of a user under its hash tag, on one master; only :otp and :rc are durable", async () => {
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
      const byMaster = await userKeysByMaster(userId);
      assert.equal(byMaster.size, 1, `keys on ${[...byMaster.keys()].join(", ")}`);
      const keys = [...byMaster.values()].flat();
      const suffixes = keys.map((k) => k.slice(`ts:${tag}:`.length).replace(/^mt:.*/, "mt")).sort();
      assert.deepEqual(suffixes, ["fb", "mt", "mt", "otp", "rc"]);
      const slots = new Set(
        await Promise.all(keys.map((key) => raw.cluster("KEYSLOT", key) as Promise<number>)),
      );
      assert.equal(slots.size, 1, "one slot for every key of a user");
      for (const key of keys) {
        const pttl = await raw.pttl(key);
        if (key.endsWith(":otp") || key.endsWith(":rc")) assert.equal(pttl, -1, key);
        else assert.ok(pttl > 0, `${key} has no TTL (${pttl})`);
      }
      assert.equal(await raw.hget(`ts:${tag}:otp`, "secret"), auth.encryptedSecret);
    });

    it("sets TTLs: bucket until full again, marker until token expiry, once-values for ttlMs", async () => {
      const { userId, token, t0 } = newUser();
      const auth = authenticator();
      await store.associatePending(userId, auth, "rc");
      const tag = userTag(userId);
      await store.beginVerify(token(), t0, POLICY);
      await store.beginVerify(token(), t0, POLICY);
      const fb = `ts:${tag}:fb`;
      assert.equal(Number(await raw.get(fb)), t0 + 2 * MINUTE);
      let pttl = await raw.pttl(fb);
      assert.ok(pttl > 2 * MINUTE - 5000 && pttl <= 2 * MINUTE, `${pttl}`);

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

      // Once-values carry no hash tag: they spread over the masters. Scan all of them.
      const onceKeys = async () => [...(await keysByMaster("ts:once:*")).values()].flat();
      const existing = new Set(await onceKeys());
      await store.rememberOnce("dpop", randomUUID(), 30_000);
      const created = (await onceKeys()).filter((k) => !existing.has(k));
      assert.equal(created.length, 1);
      const onceTtl = await raw.pttl(created[0] ?? "");
      assert.ok(onceTtl > 25_000 && onceTtl <= 30_000, `${onceTtl}`);
    });

    it("runs every multi-key script without CROSSSLOT for users on every master", async () => {
      const users = Array.from({ length: 60 }, () => ({ ...newUser(), auth: authenticator() }));
      await Promise.all(
        users.map(async ({ userId, token, t0, auth }) => {
          assert.deepEqual(await store.associatePending(userId, auth, "rc-1"), {
            kind: "pending_created",
            recoveryCodeStored: true,
            replaced: false,
          });
          const tok = token();
          const begun = await store.beginVerify(tok, t0, POLICY);
          assert.equal(begun.kind, "ready");
          assert.equal(
            await store.commitOtp({
              token: tok,
              authenticatorId: auth.id,
              step: 1,
              nowMs: t0,
              bucket: POLICY,
            }),
            "committed",
          );
          assert.equal(await store.isMfaTokenConsumed(tok), true);
          assert.deepEqual(await store.redeemRecoveryCode(token(), "wrong", "x", t0, POLICY), {
            kind: "invalid",
          });
          assert.deepEqual(await store.redeemRecoveryCode(token(), "rc-1", "rc-2", t0, POLICY), {
            kind: "redeemed",
          });
          assert.deepEqual(await store.associatePending(userId, authenticator(), "x"), {
            kind: "already_enrolled",
          });
          assert.equal((await store.getAuthenticator(userId))?.lastStep, 1);
        }),
      );

      // Every master holds keys of some of these users; each user's keys sit on one master.
      const tags = new Map(users.map((u) => [userTag(u.userId), u.userId]));
      const mastersOfUser = new Map<string, Set<string>>();
      for (const [name, keys] of await keysByMaster("ts:{u:*")) {
        const ours = keys.filter((key) => tags.has(key.slice(3, key.indexOf("}") + 1)));
        assert.ok(ours.length > 0, `master ${name} holds none of the users' ts: keys`);
        for (const key of ours) {
          const tag = key.slice(3, key.indexOf("}") + 1);
          const set = mastersOfUser.get(tag) ?? new Set<string>();
          set.add(name);
          mastersOfUser.set(tag, set);
        }
      }
      assert.equal(mastersOfUser.size, users.length);
      for (const [tag, names] of mastersOfUser)
        assert.equal(names.size, 1, `${tag}: ${[...names]}`);
      assert.equal(
        new Set([...mastersOfUser.values()].map((s) => [...s][0])).size,
        masters().length,
      );

      // The last script, delete, on every user too.
      const deleted = await Promise.all(
        users.map((u) => store.deleteAuthenticator(u.userId, u.auth.id)),
      );
      assert.ok(deleted.every(Boolean));
    });

    it("50 parallel commitOtp per user, users on every master at once: exactly one committed each", async () => {
      const N = 50;
      const users = await Promise.all(
        Array.from({ length: 30 }, async () => {
          const user = { ...newUser(), auth: authenticator() };
          await store.associatePending(user.userId, user.auth, "rc");
          return user;
        }),
      );
      const perUser = await Promise.all(
        users.map(async ({ token, t0, auth }) => {
          const tok = token();
          await store.beginVerify(tok, t0, POLICY);
          return Promise.all(
            Array.from({ length: N }, () =>
              store.commitOtp({
                token: tok,
                authenticatorId: auth.id,
                step: 7,
                nowMs: t0,
                bucket: POLICY,
              }),
            ),
          );
        }),
      );
      for (const results of perUser) {
        assert.deepEqual(tally(results), { committed: 1, mfa_token_used: N - 1 });
      }
      const holding = [...(await keysByMaster("ts:{u:*")).values()].filter((keys) =>
        keys.some((key) => users.some((u) => key.startsWith(`ts:${userTag(u.userId)}:`))),
      );
      assert.equal(holding.length, masters().length, "the users span every master");
    });

    it("costs one round trip per method, two for a successful verify (over all masters)", async () => {
      const client = createRedisClusterClient(cluster.nodes);
      const counted = createRedisStore(client);
      await counted.ping(); // the cluster is ready
      // Connect to every master now: a connection's handshake is not a round trip of a method.
      await Promise.all(client.nodes("master").map((node) => node.ping()));
      const counter = await countClusterCommands(client);
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

        // A whole successful verify, scripts already loaded on that master: exactly 2.
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

        // With the client address's bucket, whose key lives on another slot:
        // charged first by its own script, then given back beside the commit
        // (both sent at once). A success is 4 scripts in 3 round trips, a
        // wrong code 2 scripts in 2 round trips: one round trip more each.
        const address = newAddress({ capacity: 100, refillMs: 36_000 });
        const tok3 = token();
        await counted.beginVerify(tok3, t0, POLICY, undefined, address);
        await counted.commitOtp({
          token: tok3,
          authenticatorId: "again",
          step: 3,
          nowMs: t0,
          bucket: POLICY,
          address,
        });
        const success = (await counter.take()).map((c) => c[0]);
        assert.equal(success.length, 4, success.join(", "));
        await counted.beginVerify(token(), t0, POLICY, undefined, address);
        const wrong = (await counter.take()).map((c) => c[0]);
        assert.equal(wrong.length, 2, wrong.join(", "));
        assert.ok(
          [...success, ...wrong].every((name) => name === "evalsha" || name === "eval"),
          [...success, ...wrong].join(", "),
        );
      } finally {
        await counter.stop();
        await counted.close();
      }
    });
  });

  describe("service on the cluster (REDIS_CLUSTER_NODES)", () => {
    let service: TestService;
    let raw: Cluster;
    before(async () => {
      service = await startTestService({
        store: "config",
        // Keeps the failure bucket out of the race below (see concurrency.test.ts).
        env: { REDIS_CLUSTER_NODES: cluster.nodesEnv, OTP_MAX_FAILURES: "1000" },
      });
      raw = new Cluster(cluster.nodes);
    });
    after(async () => {
      await service.close();
      await raw.quit();
    });

    it("is ready, and issue → associate → verify over REST works once per mfa_token", async () => {
      assert.equal(service.app.ctx.config.store.kind, "redis-cluster");
      assert.equal((await fetch(`${service.baseUrl}/readyz`)).status, 200);

      const userId = uniqueUserId("cluster-e2e");
      const associated = await fetch(`${service.baseUrl}/mfa/associate`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${await issueMfaToken(service, userId)}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ authenticator_types: ["otp"] }),
      });
      assert.equal(associated.status, 200);
      const body = (await associated.json()) as { secret: string; recovery_codes?: string[] };
      assert.equal(body.recovery_codes?.length, 1);

      const mfaToken = await issueMfaToken(service, userId);
      const first = await postTokenForm(
        service,
        otpGrantParams(mfaToken, codeAt(service, body.secret)),
      );
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.equal(typeof first.body.access_token, "string");
      // The service's state is on the cluster: the authenticator is active there.
      assert.equal(await raw.hget(`ts:${userTag(userId)}:otp`, "active"), "1");

      // The same mfa_token again, even with a new valid code: single use.
      assertOAuthError(
        await postTokenForm(service, otpGrantParams(mfaToken, freshCode(service, body.secret))),
        400,
        "expired_token",
        "mfa_token is expired",
      );
    });

    it("20 concurrent verifies with one code and one mfa_token: exactly one 200", async () => {
      const userId = uniqueUserId("cluster-race");
      const associated = await fetch(`${service.baseUrl}/mfa/associate`, {
        method: "POST",
        headers: { authorization: `Bearer ${await issueMfaToken(service, userId)}` },
      });
      assert.equal(associated.status, 200);
      const { secret } = (await associated.json()) as { secret: string };
      const mfaToken = await issueMfaToken(service, userId);
      const params = otpGrantParams(mfaToken, freshCode(service, secret));
      const results = await Promise.all(
        Array.from({ length: 20 }, () => postTokenForm(service, params)),
      );
      assert.deepEqual(
        tally(
          results.map((r) =>
            r.status === 200 ? "200" : `${r.status} ${r.body.error}: ${r.body.error_description}`,
          ),
        ),
        { "200": 1, "400 expired_token: mfa_token is expired": 19 },
      );
    });
  });
});

describe("redis cluster outage", () => {
  it("an unreachable cluster at startup gives StoreUnavailableError within seconds", async () => {
    const port = await freePort(); // nothing listens there
    const store = clusterStore([{ host: "127.0.0.1", port }]);
    try {
      const started = Date.now();
      const results = await Promise.allSettled([
        store.ping(),
        store.getAuthenticator("u"),
        store.beginVerify(newUser().token(), Date.now(), POLICY),
      ]);
      for (const result of results) {
        assert.equal(result.status, "rejected");
        assert.ok(result.reason instanceof StoreUnavailableError, String(result.reason));
      }
      assert.ok(Date.now() - started < 3500, `took ${Date.now() - started} ms`);
    } finally {
      await store.close();
    }
  });

  it("a stopped cluster gives StoreUnavailableError within seconds", async () => {
    const dedicated = await startRedisCluster({ dedicated: true });
    const store = clusterStore(dedicated.nodes);
    try {
      const { token, t0 } = newUser();
      assert.equal((await store.beginVerify(token(), t0, POLICY)).kind, "ready");
      await dedicated.stop();
      for (const call of [
        () => store.beginVerify(token(), t0, POLICY),
        () => store.rememberOnce("dpop", "x", 1000),
        () => store.ping(),
      ]) {
        const started = Date.now();
        await assert.rejects(call(), StoreUnavailableError);
        assert.ok(Date.now() - started < 3500, `took ${Date.now() - started} ms`);
      }
    } finally {
      await store.close();
      await dedicated.stop();
    }
  });
});
