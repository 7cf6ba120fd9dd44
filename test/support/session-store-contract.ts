/**
 * The SessionStore contract suite: the behaviours every SessionStore must
 * show, so the Lua scripts (src/store/session-scripts.ts) and their memory
 * twin stay in lockstep. Run for memory and Redis by
 * test/integration/session-store-contract.test.ts and for Redis Cluster by
 * test/integration/session-store-cluster.test.ts.
 *
 * Times: every step takes `nowMs`; tests start at the real time (so Redis
 * TTLs derived from it are sane) and move forward by passing later times.
 * Only the test of TTL-expired families lets real time pass (`advance`).
 */
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import {
  type ExchangeInput,
  type ExchangeResult,
  type FamilyRef,
  MAX_LIVE_TOKENS,
  REVOKE_BATCH,
  type SessionPolicy,
  type SessionStore,
} from "../../src/store/session-store.js";

export interface SessionStoreHarness {
  sessions: SessionStore;
  /** Lets `ms` pass for the store's TTLs (real time on Redis; nothing to do in memory). */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

export const SECOND = 1000;
export const DAY = 86_400_000;

/** Rotating, leeway 0, Auth0's default lifetimes. */
export const ROTATING: SessionPolicy = {
  rotating: true,
  leewayMs: 0,
  absoluteLifetimeMs: 30 * DAY,
  idleLifetimeMs: 15 * DAY,
};

/** A hash of the shape the service stores (43 base64url characters), unique per call. */
export const newHash = (): string => createHash("sha256").update(randomUUID()).digest("base64url");

export function tally(results: ReadonlyArray<{ kind: string }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { kind } of results) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

/** A family of a fresh user (ids never collide, so suites may share one Redis). */
export function newFamilyRef(userId = `auth0|${randomUUID()}`): FamilyRef {
  return { userId, familyId: randomUUID().replaceAll("-", "") };
}

export function defineSessionStoreContract(
  name: string,
  makeHarness: () => Promise<SessionStoreHarness>,
) {
  describe(`SessionStore contract: ${name}`, () => {
    let harness: SessionStoreHarness;
    let sessions: SessionStore;
    before(async () => {
      harness = await makeHarness();
      sessions = harness.sessions;
    });
    after(() => harness.close());

    /** A new family: its ref, first token hash, start time, and an exchange helper. */
    async function started(policy: SessionPolicy = ROTATING, family = newFamilyRef()) {
      const t0 = Date.now();
      const first = newHash();
      await sessions.createFamily({ family, tokenHash: first, nowMs: t0, policy });
      const exchange = (
        presentedHash: string,
        nowMs: number,
        overrides: Partial<ExchangeInput> = {},
      ): Promise<ExchangeResult> =>
        sessions.exchange({
          family,
          presentedHash,
          successorHash: newHash(),
          nowMs,
          policy,
          ...overrides,
        });
      /** Exchanges `presented` for a known successor, expecting `kind`. */
      const step = async (presented: string, nowMs: number, kind: string) => {
        const successorHash = newHash();
        assert.deepEqual(await exchange(presented, nowMs, { successorHash }), { kind });
        return successorHash;
      };
      return { family, first, t0, exchange, step };
    }

    describe("rotation", () => {
      it("exchanges a live token for its successor, again and again", async () => {
        const { first, t0, step } = await started();
        const second = await step(first, t0 + SECOND, "rotated");
        const third = await step(second, t0 + 2 * SECOND, "rotated");
        await step(third, t0 + 3 * SECOND, "rotated");
      });

      it("an unknown family is invalid and stays unknown", async () => {
        const { exchange } = await started(ROTATING);
        const stranger = await started(ROTATING, newFamilyRef());
        assert.deepEqual(
          await sessions.exchange({
            family: newFamilyRef(),
            presentedHash: stranger.first,
            successorHash: newHash(),
            nowMs: Date.now(),
            policy: ROTATING,
          }),
          { kind: "invalid" },
        );
        // The families that do exist are untouched.
        assert.deepEqual(await exchange(newHash(), Date.now()), { kind: "reused" });
        assert.deepEqual(await stranger.exchange(stranger.first, Date.now()), {
          kind: "rotated",
        });
      });

      it("with leeway 0 the previous token is a reuse: the family is revoked, the newest token too", async () => {
        const { first, t0, step } = await started();
        const second = await step(first, t0 + SECOND, "rotated");
        // Even at the very instant of the first exchange: leeway 0 means never.
        await step(first, t0 + SECOND, "reused");
        await step(second, t0 + 2 * SECOND, "invalid");
        await step(first, t0 + 3 * SECOND, "invalid");
      });

      it("a token older than the previous one is a reuse even within the leeway", async () => {
        const policy = { ...ROTATING, leewayMs: 60 * SECOND };
        const { first, t0, step } = await started(policy);
        const second = await step(first, t0 + SECOND, "rotated");
        const third = await step(second, t0 + 2 * SECOND, "rotated");
        await step(first, t0 + 3 * SECOND, "reused");
        await step(third, t0 + 4 * SECOND, "invalid");
      });

      it("any hash the family never held is a reuse (the token decoded, so it is of this family)", async () => {
        const { first, t0, step } = await started();
        await step(newHash(), t0 + SECOND, "reused");
        await step(first, t0 + 2 * SECOND, "invalid");
      });
    });

    describe("leeway", () => {
      const LEEWAY = 30 * SECOND;
      const policy = { ...ROTATING, leewayMs: LEEWAY };

      it("the previous token within the leeway of its first exchange gets another successor", async () => {
        const { first, t0, step } = await started(policy);
        const firstExchange = t0 + SECOND;
        const second = await step(first, firstExchange, "rotated");
        const again = await step(first, firstExchange + LEEWAY, "reissued");
        // Both successors are live until one of them is exchanged.
        const next = await step(again, firstExchange + LEEWAY + SECOND, "rotated");
        // Now `again` is the previous token and `second` a retired sibling: a reuse.
        await step(second, firstExchange + LEEWAY + 2 * SECOND, "reused");
        await step(next, firstExchange + LEEWAY + 3 * SECOND, "invalid");
      });

      it("either successor may be the one exchanged next", async () => {
        const { first, t0, step } = await started(policy);
        const second = await step(first, t0 + SECOND, "rotated");
        await step(first, t0 + 2 * SECOND, "reissued");
        await step(second, t0 + 3 * SECOND, "rotated");
      });

      it("the leeway counts from the FIRST exchange: re-exchanges do not extend it", async () => {
        const { first, t0, step } = await started(policy);
        const firstExchange = t0 + SECOND;
        await step(first, firstExchange, "rotated");
        await step(first, firstExchange + LEEWAY / 2, "reissued");
        const last = await step(first, firstExchange + LEEWAY, "reissued");
        await step(first, firstExchange + LEEWAY + 1, "reused");
        await step(last, firstExchange + LEEWAY + 2, "invalid");
      });

      it(`a family holds at most ${MAX_LIVE_TOKENS} live tokens; the oldest successor is dropped`, async () => {
        const { first, t0, step } = await started(policy);
        const successors = [await step(first, t0 + SECOND, "rotated")];
        for (let i = 0; i < MAX_LIVE_TOKENS; i++) {
          successors.push(await step(first, t0 + 2 * SECOND, "reissued"));
        }
        // The first successor was dropped: presenting it is a reuse.
        await step(successors[0] ?? "", t0 + 3 * SECOND, "reused");

        const other = await started(policy);
        const kept = [await other.step(other.first, t0 + SECOND, "rotated")];
        for (let i = 0; i < MAX_LIVE_TOKENS; i++) {
          kept.push(await other.step(other.first, t0 + 2 * SECOND, "reissued"));
        }
        // The newest MAX_LIVE_TOKENS are live: the oldest of them rotates.
        await other.step(kept[1] ?? "", t0 + 3 * SECOND, "rotated");
      });
    });

    describe("concurrency", () => {
      it("20 parallel exchanges of one token, leeway 0: one rotated, one reused, the rest invalid; the family is gone", async () => {
        const { family, first, t0, exchange } = await started();
        const successors = Array.from({ length: 20 }, () => newHash());
        const results = await Promise.all(
          successors.map((successorHash) => exchange(first, t0 + SECOND, { successorHash })),
        );
        assert.deepEqual(tally(results), { rotated: 1, reused: 1, invalid: 18 });
        // Consistent afterwards: whichever successor won is revoked with its family.
        const winner = successors[results.findIndex((r) => r.kind === "rotated")] ?? "";
        assert.deepEqual(await exchange(winner, t0 + 2 * SECOND), { kind: "invalid" });
        assert.equal(await sessions.revokeFamilyByToken(family, t0 + 2 * SECOND), false);
        assert.equal(await sessions.revokeUserFamilies(family.userId, t0 + 2 * SECOND), 0);
      });

      it("20 parallel exchanges of one token within the leeway: all succeed, the family lives on", async () => {
        const policy = { ...ROTATING, leewayMs: 30 * SECOND };
        const { first, t0, exchange, step } = await started(policy);
        const results = await Promise.all(
          Array.from({ length: 20 }, () => exchange(first, t0 + SECOND)),
        );
        assert.deepEqual(tally(results), { rotated: 1, reissued: 19 });
        // Consistent afterwards: the previous token is still re-exchangeable, then rotated from.
        const latest = await step(first, t0 + 2 * SECOND, "reissued");
        const next = await step(latest, t0 + 3 * SECOND, "rotated");
        await step(first, t0 + 4 * SECOND, "reused");
        await step(next, t0 + 5 * SECOND, "invalid");
      });
    });

    describe("expiry", () => {
      it("absolute: from the family's start, whatever the exchanges", async () => {
        const policy = { ...ROTATING, absoluteLifetimeMs: 60 * SECOND, idleLifetimeMs: null };
        const { first, t0, step } = await started(policy);
        const second = await step(first, t0 + 30 * SECOND, "rotated");
        const third = await step(second, t0 + 60 * SECOND - 1, "rotated");
        await step(third, t0 + 60 * SECOND, "invalid");
      });

      it("idle: from the last exchange; an exchange restarts it", async () => {
        const policy = { ...ROTATING, absoluteLifetimeMs: null, idleLifetimeMs: 10 * SECOND };
        const { first, t0, step } = await started(policy);
        const second = await step(first, t0 + 10 * SECOND - 1, "rotated");
        const third = await step(second, t0 + 20 * SECOND - 2, "rotated");
        await step(third, t0 + 30 * SECOND - 2, "invalid");
      });

      it("the earlier of the two limits applies", async () => {
        const policy = {
          ...ROTATING,
          absoluteLifetimeMs: 15 * SECOND,
          idleLifetimeMs: 10 * SECOND,
        };
        const { first, t0, step } = await started(policy);
        const second = await step(first, t0 + 9 * SECOND, "rotated");
        await step(second, t0 + 15 * SECOND, "invalid");
      });

      it("an expired family is gone for good, even if the lifetimes grow later", async () => {
        const short = { ...ROTATING, absoluteLifetimeMs: 10 * SECOND };
        const { family, first, t0, exchange } = await started(short);
        assert.deepEqual(await exchange(first, t0 + 10 * SECOND), { kind: "invalid" });
        assert.deepEqual(
          await exchange(first, t0 + 11 * SECOND, {
            policy: { ...short, absoluteLifetimeMs: DAY },
          }),
          { kind: "invalid" },
        );
        assert.equal(await sessions.revokeFamilyByToken(family, t0 + 11 * SECOND), false);
      });

      it("infinite lifetimes: a family lives on however long it rests", async () => {
        const policy = { ...ROTATING, absoluteLifetimeMs: null, idleLifetimeMs: null };
        const { first, t0, step } = await started(policy);
        await step(first, t0 + 3650 * DAY, "rotated");
      });

      it("a family whose TTL has run out is unknown, and is not counted by revoke-all", async () => {
        const policy = { ...ROTATING, absoluteLifetimeMs: 50, idleLifetimeMs: null };
        const userId = `auth0|${randomUUID()}`;
        const short = await started(policy, newFamilyRef(userId));
        await started(ROTATING, newFamilyRef(userId));
        await harness.advance(100);
        assert.deepEqual(await short.exchange(short.first, short.t0 + 100), { kind: "invalid" });
        assert.equal(await sessions.revokeUserFamilies(userId, short.t0 + 100), 1);
      });
    });

    describe("non-rotating", () => {
      const policy = { ...ROTATING, rotating: false, leewayMs: 30 * SECOND };

      it("keeps its one token, exchanged any number of times", async () => {
        const { first, t0, step } = await started(policy);
        await step(first, t0 + SECOND, "kept");
        await step(first, t0 + 2 * SECOND, "kept");
        await step(first, t0 + 3 * SECOND, "kept");
      });

      it("another hash is invalid, without revoking the family (no reuse detection)", async () => {
        const { first, t0, step } = await started(policy);
        await step(newHash(), t0 + SECOND, "invalid");
        await step(first, t0 + 2 * SECOND, "kept");
      });

      it("an exchange restarts the idle clock", async () => {
        const idle = { ...policy, absoluteLifetimeMs: null, idleLifetimeMs: 10 * SECOND };
        const { first, t0, step } = await started(idle);
        await step(first, t0 + 9 * SECOND, "kept");
        await step(first, t0 + 18 * SECOND, "kept");
        await step(first, t0 + 28 * SECOND, "invalid");
      });

      it("a rotating client's family can be continued after the client turns non-rotating, and back", async () => {
        const { first, t0, step, exchange } = await started(ROTATING);
        const second = await step(first, t0 + SECOND, "rotated");
        assert.deepEqual(await exchange(second, t0 + 2 * SECOND, { policy }), { kind: "kept" });
        assert.deepEqual(await exchange(first, t0 + 3 * SECOND, { policy }), { kind: "invalid" });
        await step(second, t0 + 4 * SECOND, "rotated");
      });
    });

    describe("DPoP proof marks", () => {
      it("records a proof once; a replayed proof changes nothing", async () => {
        const { first, t0, exchange, step } = await started();
        const proof = { id: `jkt.${randomUUID()}`, ttlMs: 60 * SECOND };
        const successorHash = newHash();
        assert.deepEqual(await exchange(first, t0 + SECOND, { proof, successorHash }), {
          kind: "rotated",
        });
        assert.deepEqual(await exchange(successorHash, t0 + 2 * SECOND, { proof }), {
          kind: "proof_replayed",
        });
        // Even for a token that would be a reuse, and for an unknown family.
        assert.deepEqual(await exchange(first, t0 + 2 * SECOND, { proof }), {
          kind: "proof_replayed",
        });
        await step(successorHash, t0 + 3 * SECOND, "rotated");
      });
    });

    describe("revocation", () => {
      it("revokeFamilyByToken deletes the family: it then answers as unknown", async () => {
        const { family, first, t0, step } = await started();
        const second = await step(first, t0 + SECOND, "rotated");
        assert.equal(await sessions.revokeFamilyByToken(family, t0 + 2 * SECOND), true);
        await step(second, t0 + 3 * SECOND, "invalid");
        await step(first, t0 + 3 * SECOND, "invalid");
        assert.equal(await sessions.revokeFamilyByToken(family, t0 + 4 * SECOND), false);
        assert.equal(await sessions.revokeFamilyByToken(newFamilyRef(), t0), false);
      });

      it("revokeUserFamilies deletes every family of the user and only those", async () => {
        const userId = `auth0|${randomUUID()}`;
        const families = await Promise.all(
          [ROTATING, ROTATING, { ...ROTATING, rotating: false }, ROTATING].map((policy) =>
            started(policy, newFamilyRef(userId)),
          ),
        );
        const other = await started(ROTATING, newFamilyRef());
        const [a, b, c, d] = families;
        assert.ok(a && b && c && d);
        const t = a.t0 + SECOND;
        assert.equal(await sessions.revokeFamilyByToken(d.family, t), true);
        const bSecond = await b.step(b.first, t, "rotated");
        assert.equal(await sessions.revokeUserFamilies(userId, t), 3);
        await a.step(a.first, t, "invalid");
        await b.step(bSecond, t, "invalid");
        assert.deepEqual(
          await c.exchange(c.first, t, { policy: { ...ROTATING, rotating: false } }),
          {
            kind: "invalid",
          },
        );
        assert.equal(await sessions.revokeUserFamilies(userId, t), 0);
        await other.step(other.first, t, "rotated");
        // The user may log in again afterwards.
        const again = await started(ROTATING, newFamilyRef(userId));
        await again.step(again.first, t, "rotated");
        assert.equal(await sessions.revokeUserFamilies(userId, t), 1);
      });

      it("revokeUserFamilies of a user without families is 0", async () => {
        assert.equal(await sessions.revokeUserFamilies(`auth0|${randomUUID()}`, Date.now()), 0);
      });

      it(`revokeUserFamilies of more families than one batch (${REVOKE_BATCH}): all revoked, counted once`, async () => {
        const userId = `auth0|${randomUUID()}`;
        const count = 2 * REVOKE_BATCH + 7;
        const t0 = Date.now();
        const refs = Array.from({ length: count }, () => newFamilyRef(userId));
        const firsts = refs.map(() => newHash());
        for (let i = 0; i < count; i += 100) {
          await Promise.all(
            refs.slice(i, i + 100).map((family, j) =>
              sessions.createFamily({
                family,
                tokenHash: firsts[i + j] as string,
                nowMs: t0,
                policy: ROTATING,
              }),
            ),
          );
        }
        const t = t0 + SECOND;
        assert.equal(await sessions.revokeUserFamilies(userId, t), count);
        for (const index of [0, REVOKE_BATCH, count - 1]) {
          const exchanged = await sessions.exchange({
            family: refs[index] as FamilyRef,
            presentedHash: firsts[index] as string,
            successorHash: newHash(),
            nowMs: t,
            policy: ROTATING,
          });
          assert.deepEqual(exchanged, { kind: "invalid" });
        }
        assert.equal(await sessions.revokeUserFamilies(userId, t), 0);
      });
    });

    describe("the cap on one user's families (maxFamilies)", () => {
      it("a family beyond the cap revokes the one that ends first, in the same step", async () => {
        const userId = `auth0|${randomUUID()}`;
        const t0 = Date.now();
        // Idle lifetime: the family used least recently ends first.
        const started3 = [];
        for (let i = 0; i < 3; i++) {
          const family = newFamilyRef(userId);
          const first = newHash();
          assert.equal(
            await sessions.createFamily({
              family,
              tokenHash: first,
              nowMs: t0 + i * SECOND,
              policy: ROTATING,
              maxFamilies: 3,
            }),
            0,
          );
          started3.push({ family, first });
        }
        const [a, b, c] = started3;
        assert.ok(a && b && c);
        // `a` is used again: `b` now ends first.
        const aNext = newHash();
        assert.deepEqual(
          await sessions.exchange({
            family: a.family,
            presentedHash: a.first,
            successorHash: aNext,
            nowMs: t0 + 10 * SECOND,
            policy: ROTATING,
          }),
          { kind: "rotated" },
        );
        const d = { family: newFamilyRef(userId), first: newHash() };
        assert.equal(
          await sessions.createFamily({
            family: d.family,
            tokenHash: d.first,
            nowMs: t0 + 11 * SECOND,
            policy: ROTATING,
            maxFamilies: 3,
          }),
          1,
        );
        const t = t0 + 12 * SECOND;
        const exchange = (family: FamilyRef, presentedHash: string) =>
          sessions.exchange({
            family,
            presentedHash,
            successorHash: newHash(),
            nowMs: t,
            policy: ROTATING,
          });
        assert.deepEqual(await exchange(b.family, b.first), { kind: "invalid" });
        assert.deepEqual(await exchange(a.family, aNext), { kind: "rotated" });
        assert.deepEqual(await exchange(c.family, c.first), { kind: "rotated" });
        assert.deepEqual(await exchange(d.family, d.first), { kind: "rotated" });
        assert.equal(await sessions.revokeUserFamilies(userId, t), 3);
      });
    });
  });
}
