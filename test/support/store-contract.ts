/**
 * The Store contract suite (docs/architecture.md): one set of behaviours that every Store
 * implementation must pass. Run for memory and Redis by
 * test/integration/store-contract.test.ts and for Redis Cluster by
 * test/integration/store-cluster.test.ts (a separate file, so the cluster
 * suite runs without re-running the others).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { AddressBucket, BucketPolicy, MfaTokenRef, Store } from "../../src/store/store.js";

export interface StoreHarness {
  store: Store;
  /** Lets `ms` pass for the clock `rememberOnce` uses (fake or real). */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

export const MINUTE = 60_000;
export const POLICY: BucketPolicy = { capacity: 3, refillMs: MINUTE };

/** A fresh user (ids never collide, so suites may share one Redis) and a fake clock start. */
export function newUser() {
  const userId = `auth0|${randomUUID()}`;
  // Fake time starts at the real time so Redis TTLs derived from it are sane.
  const t0 = Date.now();
  const token = (expiresInMs = 10 * MINUTE): MfaTokenRef => ({
    userId,
    tokenId: randomUUID(),
    expiresAtMs: t0 + expiresInMs,
  });
  return { userId, t0, token };
}

/** A client address's bucket (ids are keyed hashes in the service: base64url). */
export const newAddress = (policy: BucketPolicy): AddressBucket => ({
  id: randomUUID().replaceAll("-", ""),
  policy,
});

export const authenticator = (id = `a-${randomUUID()}`) => ({ id, encryptedSecret: `enc:${id}` });

export function defineStoreContract(name: string, makeHarness: () => Promise<StoreHarness>) {
  describe(`Store contract: ${name}`, () => {
    let harness: StoreHarness;
    let store: Store;
    before(async () => {
      harness = await makeHarness();
      store = harness.store;
    });
    after(() => harness.close());

    /** A user with a pending authenticator. */
    async function enrolled(recoveryCodeHash = "rc-hash-1") {
      const user = newUser();
      const auth = authenticator();
      const result = await store.associatePending(user.userId, auth, recoveryCodeHash);
      assert.deepEqual(result, {
        kind: "pending_created",
        recoveryCodeStored: true,
        replaced: false,
      });
      return { ...user, auth };
    }

    /** A user with an active authenticator whose last step is `step`. */
    async function active(step = 1000) {
      const user = await enrolled();
      const token = user.token();
      await store.beginVerify(token, user.t0, POLICY);
      const committed = await store.commitOtp({
        token,
        authenticatorId: user.auth.id,
        step,
        nowMs: user.t0,
        bucket: POLICY,
      });
      assert.equal(committed, "committed");
      return user;
    }

    it("ping resolves", async () => {
      await store.ping();
    });

    describe("enrollment", () => {
      it("getAuthenticator returns null for an unknown user", async () => {
        assert.equal(await store.getAuthenticator(newUser().userId), null);
      });

      it("associatePending creates a pending authenticator and stores the first recovery code", async () => {
        const { userId, auth } = await enrolled();
        assert.deepEqual(await store.getAuthenticator(userId), {
          id: auth.id,
          encryptedSecret: auth.encryptedSecret,
          active: false,
          lastStep: -1,
        });
      });

      it("associatePending replaces a pending one and keeps the first recovery code", async () => {
        const { userId, token, t0 } = await enrolled("first");
        const second = authenticator();
        assert.deepEqual(await store.associatePending(userId, second, "second"), {
          kind: "pending_created",
          recoveryCodeStored: false,
          replaced: true,
        });
        const stored = await store.getAuthenticator(userId);
        assert.equal(stored?.id, second.id);
        assert.equal(stored?.encryptedSecret, second.encryptedSecret);
        assert.equal(stored?.active, false);
        // The first recovery code is still the valid one.
        const redeem = (code: string) =>
          store.redeemRecoveryCode(token(), code, "next", t0, POLICY);
        assert.deepEqual(await redeem("second"), { kind: "invalid" });
        assert.deepEqual(await redeem("first"), { kind: "redeemed" });
      });

      it("getFactors: the OTP authenticator and the recovery code, in one step", async () => {
        const { userId } = newUser();
        assert.deepEqual(await store.getFactors(userId), { otp: null, hasRecoveryCode: false });
        const auth = authenticator();
        await store.associatePending(userId, auth, "rc-hash");
        assert.deepEqual(await store.getFactors(userId), {
          otp: { id: auth.id, encryptedSecret: auth.encryptedSecret, active: false, lastStep: -1 },
          hasRecoveryCode: true,
        });
        // Deleting the authenticator keeps the recovery code.
        assert.equal(await store.deleteAuthenticator(userId, auth.id), true);
        assert.deepEqual(await store.getFactors(userId), { otp: null, hasRecoveryCode: true });
      });

      it("associatePending is refused while an authenticator is active", async () => {
        const { userId, auth } = await active();
        assert.deepEqual(await store.associatePending(userId, authenticator(), "x"), {
          kind: "already_enrolled",
        });
        const stored = await store.getAuthenticator(userId);
        assert.equal(stored?.id, auth.id);
        assert.equal(stored?.active, true);
      });

      it("deleteAuthenticator removes only a matching id and keeps the recovery code", async () => {
        const { userId, auth, token, t0 } = await active();
        assert.equal(await store.deleteAuthenticator(userId, "other-id"), false);
        assert.notEqual(await store.getAuthenticator(userId), null);
        assert.equal(await store.deleteAuthenticator(userId, auth.id), true);
        assert.equal(await store.getAuthenticator(userId), null);
        assert.equal(await store.deleteAuthenticator(userId, auth.id), false);
        assert.equal(await store.deleteAuthenticator(newUser().userId, auth.id), false);
        // Enrolling again is allowed; the recovery code is not replaced.
        assert.deepEqual(await store.associatePending(userId, authenticator(), "new-rc"), {
          kind: "pending_created",
          recoveryCodeStored: false,
          replaced: false,
        });
        assert.deepEqual(await store.redeemRecoveryCode(token(), "rc-hash-1", "n", t0, POLICY), {
          kind: "redeemed",
        });
      });
    });

    describe("pending enrollments expire", () => {
      const TTL = 200;

      it("an expired pending authenticator is absent everywhere; a new one is not a replacement", async () => {
        const { userId, token, t0 } = newUser();
        const first = authenticator();
        assert.deepEqual(
          await store.associatePending(userId, first, "rc", { nowMs: t0, ttlMs: TTL }),
          { kind: "pending_created", recoveryCodeStored: true, replaced: false },
        );
        const begun = await store.beginVerify(token(), t0 + TTL - 1, POLICY);
        assert.equal(begun.kind === "ready" && begun.authenticator?.id, first.id);
        await harness.advance(TTL * 2);
        const later = t0 + TTL * 2;
        assert.equal(await store.getAuthenticator(userId), null);
        assert.deepEqual(await store.getFactors(userId), { otp: null, hasRecoveryCode: true });
        assert.deepEqual(await store.beginVerify(token(), later, POLICY), {
          kind: "ready",
          authenticator: null,
        });
        const tok = token();
        assert.equal(
          await store.commitOtp({
            token: tok,
            authenticatorId: first.id,
            step: 1,
            nowMs: later,
            bucket: POLICY,
          }),
          "authenticator_changed",
        );
        assert.equal(await store.deleteAuthenticator(userId, first.id), false);
        assert.deepEqual(
          await store.associatePending(userId, authenticator(), "rc2", {
            nowMs: later,
            ttlMs: TTL,
          }),
          { kind: "pending_created", recoveryCodeStored: false, replaced: false },
        );
      });

      it("activation makes it durable", async () => {
        const { userId, token, t0 } = newUser();
        const auth = authenticator();
        await store.associatePending(userId, auth, "rc", { nowMs: t0, ttlMs: TTL });
        const tok = token();
        await store.beginVerify(tok, t0, POLICY);
        assert.equal(
          await store.commitOtp({
            token: tok,
            authenticatorId: auth.id,
            step: 7,
            nowMs: t0,
            bucket: POLICY,
          }),
          "committed",
        );
        await harness.advance(TTL * 2);
        assert.deepEqual(await store.getAuthenticator(userId), {
          id: auth.id,
          encryptedSecret: auth.encryptedSecret,
          active: true,
          lastStep: 7,
        });
      });
    });

    describe("verify", () => {
      it("beginVerify returns ready with null when the user has no authenticator", async () => {
        const { token, t0 } = newUser();
        assert.deepEqual(await store.beginVerify(token(), t0, POLICY), {
          kind: "ready",
          authenticator: null,
        });
      });

      it("beginVerify returns the pending authenticator", async () => {
        const { token, t0, auth } = await enrolled();
        assert.deepEqual(await store.beginVerify(token(), t0, POLICY), {
          kind: "ready",
          authenticator: {
            id: auth.id,
            encryptedSecret: auth.encryptedSecret,
            active: false,
            lastStep: -1,
          },
        });
      });

      it("commitOtp commits: activates, records the step, consumes the mfa_token", async () => {
        const { userId, token, t0, auth } = await enrolled();
        const tok = token();
        await store.beginVerify(tok, t0, POLICY);
        const input = {
          token: tok,
          authenticatorId: auth.id,
          step: 500,
          nowMs: t0,
          bucket: POLICY,
        };
        assert.equal(await store.commitOtp(input), "committed");
        assert.deepEqual(await store.getAuthenticator(userId), {
          id: auth.id,
          encryptedSecret: auth.encryptedSecret,
          active: true,
          lastStep: 500,
        });
        assert.deepEqual(await store.beginVerify(tok, t0 + 1, POLICY), { kind: "mfa_token_used" });
        assert.equal(await store.commitOtp({ ...input, step: 501 }), "mfa_token_used");
        // Another mfa_token of the same user is unaffected.
        const other = await store.beginVerify(token(), t0 + 1, POLICY);
        assert.equal(other.kind, "ready");
      });

      it("isMfaTokenConsumed is true only after a commit or a redeem with that mfa_token", async () => {
        const { token, t0, auth } = await enrolled("code");
        const tok = token();
        assert.equal(await store.isMfaTokenConsumed(tok), false);
        await store.beginVerify(tok, t0, POLICY);
        assert.equal(await store.isMfaTokenConsumed(tok), false);
        await store.commitOtp({
          token: tok,
          authenticatorId: auth.id,
          step: 1,
          nowMs: t0,
          bucket: POLICY,
        });
        assert.equal(await store.isMfaTokenConsumed(tok), true);
        assert.equal(await store.isMfaTokenConsumed({ ...tok, tokenId: randomUUID() }), false);
        const other = token();
        await store.redeemRecoveryCode(other, "wrong", "n", t0, POLICY);
        assert.equal(await store.isMfaTokenConsumed(other), false);
        await store.redeemRecoveryCode(other, "code", "n", t0, POLICY);
        assert.equal(await store.isMfaTokenConsumed(other), true);
      });

      it("commitOtp accepts only a strictly greater step (replay guard)", async () => {
        const { token, t0, auth } = await active(1000);
        const commit = (step: number, tok = token()) =>
          store.commitOtp({
            token: tok,
            authenticatorId: auth.id,
            step,
            nowMs: t0,
            bucket: POLICY,
          });
        assert.equal(await commit(1000), "replayed");
        assert.equal(await commit(999), "replayed");
        // A refused commit changed nothing: the same mfa_token still works.
        const tok = token();
        assert.equal(await commit(1000, tok), "replayed");
        assert.equal(await commit(1001, tok), "committed");
        assert.equal(await commit(1001), "replayed");
      });

      it("commitOtp reports authenticator_changed when it was replaced or deleted", async () => {
        const { userId, token, t0, auth } = await enrolled();
        const commit = (authenticatorId: string) =>
          store.commitOtp({ token: token(), authenticatorId, step: 1, nowMs: t0, bucket: POLICY });
        assert.equal(await commit("not-the-id"), "authenticator_changed");
        await store.associatePending(userId, authenticator(), "x");
        assert.equal(await commit(auth.id), "authenticator_changed");
        const current = await store.getAuthenticator(userId);
        assert.ok(current);
        await store.deleteAuthenticator(userId, current.id);
        assert.equal(await commit(current.id), "authenticator_changed");
        const { token: other, t0: t1 } = newUser();
        assert.equal(
          await store.commitOtp({
            token: other(),
            authenticatorId: "x",
            step: 1,
            nowMs: t1,
            bucket: POLICY,
          }),
          "authenticator_changed",
        );
      });

      it("commitOtp checks the mfa_token before the authenticator and the step", async () => {
        const { token, t0, auth } = await enrolled();
        const tok = token();
        const base = { token: tok, nowMs: t0, bucket: POLICY };
        assert.equal(
          await store.commitOtp({ ...base, authenticatorId: auth.id, step: 5 }),
          "committed",
        );
        assert.equal(
          await store.commitOtp({ ...base, authenticatorId: "x", step: 6 }),
          "mfa_token_used",
        );
        assert.equal(
          await store.commitOtp({ ...base, authenticatorId: auth.id, step: 1 }),
          "mfa_token_used",
        );
      });
    });

    describe("failure bucket", () => {
      it("locks after `capacity` attempts; retryAfter counts down; nothing changes while locked", async () => {
        const { token, t0 } = await enrolled();
        const tok = token();
        for (let i = 0; i < POLICY.capacity; i++) {
          assert.equal((await store.beginVerify(tok, t0, POLICY)).kind, "ready");
        }
        assert.deepEqual(await store.beginVerify(tok, t0, POLICY), {
          kind: "locked",
          retryAfterSeconds: 60,
        });
        // A locked call did not take anything: the time to wait is unchanged.
        assert.deepEqual(await store.beginVerify(token(), t0, POLICY), {
          kind: "locked",
          retryAfterSeconds: 60,
        });
        const at = async (offsetMs: number) => store.beginVerify(token(), t0 + offsetMs, POLICY);
        assert.deepEqual(await at(1), { kind: "locked", retryAfterSeconds: 60 });
        assert.deepEqual(await at(1000), { kind: "locked", retryAfterSeconds: 59 });
        assert.deepEqual(await at(58_999), { kind: "locked", retryAfterSeconds: 2 });
        assert.deepEqual(await at(59_001), { kind: "locked", retryAfterSeconds: 1 });
        assert.deepEqual(await at(59_999), { kind: "locked", retryAfterSeconds: 1 });
        // One attempt refilled after refillMs: it can be taken, then locked again.
        assert.equal((await at(MINUTE)).kind, "ready");
        assert.deepEqual(await at(MINUTE), { kind: "locked", retryAfterSeconds: 60 });
        // After a long pause the bucket is full again.
        for (let i = 0; i < POLICY.capacity; i++) {
          assert.equal((await at(10 * MINUTE)).kind, "ready");
        }
        assert.equal((await at(10 * MINUTE)).kind, "locked");
      });

      it("a locked bucket refuses the right code too, but a consumed token is reported first", async () => {
        const { token, t0, auth } = await active(10);
        const used = token();
        await store.beginVerify(used, t0, POLICY);
        assert.equal(
          await store.commitOtp({
            token: used,
            authenticatorId: auth.id,
            step: 11,
            nowMs: t0,
            bucket: POLICY,
          }),
          "committed",
        );
        for (let i = 0; i < POLICY.capacity; i++) await store.beginVerify(token(), t0, POLICY);
        assert.equal((await store.beginVerify(token(), t0, POLICY)).kind, "locked");
        assert.deepEqual(await store.beginVerify(used, t0, POLICY), { kind: "mfa_token_used" });
        assert.deepEqual(await store.redeemRecoveryCode(used, "rc-hash-1", "n", t0, POLICY), {
          kind: "mfa_token_used",
        });
        assert.equal(
          (await store.redeemRecoveryCode(token(), "rc-hash-1", "n", t0, POLICY)).kind,
          "locked",
        );
      });

      it("a success gives its attempt back", async () => {
        const { token, t0, auth } = await enrolled();
        for (let step = 1; step <= 2 * POLICY.capacity; step++) {
          const tok = token();
          assert.equal((await store.beginVerify(tok, t0, POLICY)).kind, "ready");
          assert.equal(
            await store.commitOtp({
              token: tok,
              authenticatorId: auth.id,
              step,
              nowMs: t0,
              bucket: POLICY,
            }),
            "committed",
          );
        }
        for (let i = 0; i < POLICY.capacity; i++) {
          assert.equal((await store.beginVerify(token(), t0, POLICY)).kind, "ready");
        }
        assert.equal((await store.beginVerify(token(), t0, POLICY)).kind, "locked");
      });

      it("a success after failures gives back only its own attempt", async () => {
        const { token, t0, auth } = await enrolled();
        await store.beginVerify(token(), t0, POLICY); // wrong code
        const tok = token();
        await store.beginVerify(tok, t0, POLICY);
        await store.commitOtp({
          token: tok,
          authenticatorId: auth.id,
          step: 1,
          nowMs: t0,
          bucket: POLICY,
        });
        // One failure remains charged: capacity - 1 attempts left.
        for (let i = 0; i < POLICY.capacity - 1; i++) {
          assert.equal((await store.beginVerify(token(), t0, POLICY)).kind, "ready");
        }
        assert.deepEqual(await store.beginVerify(token(), t0, POLICY), {
          kind: "locked",
          retryAfterSeconds: 60,
        });
      });

      it("is per user, shared by every mfa_token and by recovery codes", async () => {
        const a = await enrolled();
        const b = await enrolled();
        await store.beginVerify(a.token(), a.t0, POLICY);
        assert.deepEqual(await store.redeemRecoveryCode(a.token(), "wrong", "n", a.t0, POLICY), {
          kind: "invalid",
        });
        await store.beginVerify(a.token(), a.t0, POLICY);
        assert.equal((await store.beginVerify(a.token(), a.t0, POLICY)).kind, "locked");
        assert.equal(
          (await store.redeemRecoveryCode(a.token(), "rc-hash-1", "n", a.t0, POLICY)).kind,
          "locked",
        );
        assert.equal((await store.beginVerify(b.token(), b.t0, POLICY)).kind, "ready");
      });
    });

    describe("address bucket (a second bucket per client address)", () => {
      /** Five attempts, one back every two minutes: unlike the user's POLICY. */
      const ADDRESS_POLICY: BucketPolicy = { capacity: 5, refillMs: 2 * MINUTE };
      const LOCKED_BY_ADDRESS = { kind: "locked", retryAfterSeconds: 120, by: "address" };
      /** A wrong code of a new user from `address` at `now` (the store cannot tell it is wrong: one attempt). */
      const otherUserTries = async (address: AddressBucket, now: number) => {
        const user = await enrolled();
        return store.beginVerify(user.token(), now, POLICY, undefined, address);
      };

      it("wrong codes of many users drain it; then every code from it is refused; others are untouched", async () => {
        const now = Date.now();
        const address = newAddress(ADDRESS_POLICY);
        for (let i = 0; i < ADDRESS_POLICY.capacity; i++) {
          assert.equal((await otherUserTries(address, now)).kind, "ready");
        }
        const user = await enrolled("code-x");
        assert.deepEqual(
          await store.beginVerify(user.token(), now, POLICY, undefined, address),
          LOCKED_BY_ADDRESS,
        );
        assert.deepEqual(
          await store.redeemRecoveryCode(
            user.token(),
            "code-x",
            "n",
            now,
            POLICY,
            undefined,
            address,
          ),
          LOCKED_BY_ADDRESS,
        );
        // The refusals took nothing from the user's own bucket; another address is not throttled.
        const elsewhere = newAddress(ADDRESS_POLICY);
        for (let i = 0; i < POLICY.capacity; i++) {
          assert.equal(
            (await store.beginVerify(user.token(), now, POLICY, undefined, elsewhere)).kind,
            "ready",
          );
        }
        assert.deepEqual(await store.beginVerify(user.token(), now, POLICY, undefined, elsewhere), {
          kind: "locked",
          retryAfterSeconds: 60,
        });
        assert.equal((await otherUserTries(elsewhere, now)).kind, "ready");
      });

      it("counts down and refills one attempt per refill period", async () => {
        const now = Date.now();
        const address = newAddress(ADDRESS_POLICY);
        for (let i = 0; i < ADDRESS_POLICY.capacity; i++) await otherUserTries(address, now);
        assert.deepEqual(await otherUserTries(address, now + 60_500), {
          ...LOCKED_BY_ADDRESS,
          retryAfterSeconds: 60,
        });
        assert.equal((await otherUserTries(address, now + 2 * MINUTE)).kind, "ready");
        assert.deepEqual(await otherUserTries(address, now + 2 * MINUTE), LOCKED_BY_ADDRESS);
        // Full again after capacity × refill.
        const later = now + 20 * MINUTE;
        for (let i = 0; i < ADDRESS_POLICY.capacity; i++) {
          assert.equal((await otherUserTries(address, later)).kind, "ready");
        }
        assert.equal((await otherUserTries(address, later)).kind, "locked");
      });

      it("a success gives the address's attempt back; a commit that fails keeps it", async () => {
        const now = Date.now();
        const address = newAddress({ capacity: 2, refillMs: MINUTE });
        const user = await enrolled();
        for (let step = 1; step <= 3; step++) {
          const tok = user.token();
          assert.equal(
            (await store.beginVerify(tok, now, POLICY, undefined, address)).kind,
            "ready",
          );
          const committed = await store.commitOtp({
            token: tok,
            authenticatorId: user.auth.id,
            step,
            nowMs: now,
            bucket: POLICY,
            address,
          });
          assert.equal(committed, "committed");
        }
        // A replayed step: the commit fails and the attempt stays taken.
        const replayed = user.token();
        await store.beginVerify(replayed, now, POLICY, undefined, address);
        assert.equal(
          await store.commitOtp({
            token: replayed,
            authenticatorId: user.auth.id,
            step: 3,
            nowMs: now,
            bucket: POLICY,
            address,
          }),
          "replayed",
        );
        assert.equal((await otherUserTries(address, now)).kind, "ready");
        assert.deepEqual(await otherUserTries(address, now), {
          kind: "locked",
          retryAfterSeconds: 60,
          by: "address",
        });
      });

      it("a user's empty bucket takes nothing from the address's; both empty: by both, the longer wait", async () => {
        const now = Date.now();
        const address = newAddress(ADDRESS_POLICY);
        const user = await enrolled();
        for (let i = 0; i < POLICY.capacity; i++)
          await store.beginVerify(user.token(), now, POLICY);
        assert.deepEqual(await store.beginVerify(user.token(), now, POLICY, undefined, address), {
          kind: "locked",
          retryAfterSeconds: 60,
        });
        for (let i = 0; i < ADDRESS_POLICY.capacity; i++) {
          assert.equal((await otherUserTries(address, now)).kind, "ready");
        }
        assert.deepEqual(await store.beginVerify(user.token(), now, POLICY, undefined, address), {
          kind: "locked",
          retryAfterSeconds: 120,
          by: "both",
        });
      });

      it("recovery codes: a wrong one takes an attempt from it, a redeemed one does not", async () => {
        const now = Date.now();
        const address = newAddress({ capacity: 2, refillMs: MINUTE });
        const user = await enrolled("code-r");
        const redeem = (code: string) =>
          store.redeemRecoveryCode(user.token(), code, "code-r", now, POLICY, undefined, address);
        assert.deepEqual(await redeem("wrong"), { kind: "invalid" });
        assert.deepEqual(await redeem("code-r"), { kind: "redeemed" });
        assert.equal((await otherUserTries(address, now)).kind, "ready");
        assert.equal((await otherUserTries(address, now)).kind, "locked");
      });

      it("a replayed proof and a consumed mfa_token come first and take nothing from it", async () => {
        const now = Date.now();
        const address = newAddress({ capacity: 2, refillMs: MINUTE });
        const user = await active(20);
        const mark = { id: `jkt.${randomUUID()}`, ttlMs: MINUTE };
        const tok = user.token();
        assert.equal((await store.beginVerify(tok, now, POLICY, mark, address)).kind, "ready");
        const committed = await store.commitOtp({
          token: tok,
          authenticatorId: user.auth.id,
          step: 21,
          nowMs: now,
          bucket: POLICY,
          address,
        });
        assert.equal(committed, "committed");
        assert.deepEqual(await store.beginVerify(user.token(), now, POLICY, mark, address), {
          kind: "proof_replayed",
        });
        assert.deepEqual(await store.beginVerify(tok, now, POLICY, undefined, address), {
          kind: "mfa_token_used",
        });
        assert.deepEqual(
          await store.redeemRecoveryCode(tok, "rc-hash-1", "n", now, POLICY, undefined, address),
          { kind: "mfa_token_used" },
        );
        // Both attempts are still there.
        assert.equal((await otherUserTries(address, now)).kind, "ready");
        assert.equal((await otherUserTries(address, now)).kind, "ready");
        assert.equal((await otherUserTries(address, now)).kind, "locked");
        // Once it is empty, a replayed proof is still reported as such.
        assert.deepEqual(await store.beginVerify(user.token(), now, POLICY, mark, address), {
          kind: "proof_replayed",
        });
      });

      it("50 parallel wrong codes of 50 users from one address: exactly its capacity are evaluated", async () => {
        const now = Date.now();
        const address = newAddress({ capacity: 10, refillMs: MINUTE });
        const users = await Promise.all(Array.from({ length: 50 }, () => enrolled()));
        const results = await Promise.all(
          users.map((u) => store.beginVerify(u.token(), now, POLICY, undefined, address)),
        );
        assert.equal(results.filter((r) => r.kind === "ready").length, 10);
        assert.equal(results.filter((r) => r.kind === "locked").length, 40);
      });
    });

    describe("recovery codes", () => {
      it("invalid when no code is stored, and it costs an attempt", async () => {
        const { token, t0 } = newUser();
        for (let i = 0; i < POLICY.capacity; i++) {
          assert.deepEqual(await store.redeemRecoveryCode(token(), "h", "n", t0, POLICY), {
            kind: "invalid",
          });
        }
        assert.deepEqual(await store.redeemRecoveryCode(token(), "h", "n", t0, POLICY), {
          kind: "locked",
          retryAfterSeconds: 60,
        });
      });

      it("redeems, rotates the code, consumes the mfa_token, leaves the bucket alone", async () => {
        const { token, t0 } = await enrolled("code-1");
        const tok = token();
        assert.deepEqual(await store.redeemRecoveryCode(tok, "code-1", "code-2", t0, POLICY), {
          kind: "redeemed",
        });
        assert.deepEqual(await store.redeemRecoveryCode(tok, "code-2", "code-3", t0, POLICY), {
          kind: "mfa_token_used",
        });
        assert.deepEqual(await store.beginVerify(tok, t0, POLICY), { kind: "mfa_token_used" });
        assert.deepEqual(await store.redeemRecoveryCode(token(), "code-1", "x", t0, POLICY), {
          kind: "invalid",
        });
        assert.deepEqual(await store.redeemRecoveryCode(token(), "code-2", "code-3", t0, POLICY), {
          kind: "redeemed",
        });
        // Two redeems and one failure: capacity - 1 attempts are left.
        for (let i = 0; i < POLICY.capacity - 1; i++) {
          assert.equal((await store.beginVerify(token(), t0, POLICY)).kind, "ready");
        }
        assert.equal((await store.beginVerify(token(), t0, POLICY)).kind, "locked");
      });

      it("locks after `capacity` wrong codes, the right one included", async () => {
        const { token, t0 } = await enrolled("right");
        for (let i = 0; i < POLICY.capacity; i++) {
          await store.redeemRecoveryCode(token(), "wrong", "n", t0, POLICY);
        }
        assert.deepEqual(
          await store.redeemRecoveryCode(token(), "right", "n", t0 + 30_000, POLICY),
          {
            kind: "locked",
            retryAfterSeconds: 30,
          },
        );
        assert.deepEqual(
          await store.redeemRecoveryCode(token(), "right", "n", t0 + MINUTE, POLICY),
          {
            kind: "redeemed",
          },
        );
      });
    });

    describe("rememberOnce", () => {
      it("is true once, false while remembered, per scope, and true again after the TTL", async () => {
        const value = randomUUID();
        assert.equal(await store.rememberOnce("dpop", value, 200), true);
        assert.equal(await store.rememberOnce("dpop", value, 200), false);
        assert.equal(await store.rememberOnce("assertion:client-a", value, 200), true);
        assert.equal(await store.rememberOnce("dpop", `${value}x`, 200), true);
        await harness.advance(400);
        assert.equal(await store.rememberOnce("dpop", value, 200), true);
      });
    });

    describe("DPoP proof marks (recorded in the grant's first step)", () => {
      const proof = (ttlMs = MINUTE) => ({ id: `jkt.${randomUUID()}`, ttlMs });

      it("beginVerify records a proof once; a replay changes nothing (no attempt taken)", async () => {
        const { token, t0 } = await enrolled();
        const mark = proof();
        const bucket = { capacity: 1, refillMs: MINUTE };
        const first = await store.beginVerify(token(), t0, bucket, mark);
        assert.equal(first.kind, "ready");
        // The only attempt is taken; a replay answers proof_replayed, not locked.
        assert.deepEqual(await store.beginVerify(token(), t0, bucket, mark), {
          kind: "proof_replayed",
        });
        // Another proof reaches the bucket, which the replay did not touch further.
        const other = await store.beginVerify(token(), t0, bucket, proof());
        assert.equal(other.kind, "locked");
      });

      it("a proof replay is reported before a consumed mfa_token", async () => {
        const user = await active(5);
        const mark = proof();
        const tok = user.token();
        assert.equal((await store.beginVerify(tok, user.t0, POLICY, mark)).kind, "ready");
        assert.equal(
          await store.commitOtp({
            token: tok,
            authenticatorId: user.auth.id,
            step: 6,
            nowMs: user.t0,
            bucket: POLICY,
          }),
          "committed",
        );
        assert.deepEqual(await store.beginVerify(tok, user.t0, POLICY, mark), {
          kind: "proof_replayed",
        });
        assert.deepEqual(await store.beginVerify(tok, user.t0, POLICY, proof()), {
          kind: "mfa_token_used",
        });
      });

      it("redeemRecoveryCode records a proof once", async () => {
        const { token, t0 } = await enrolled("code-p");
        const mark = proof();
        assert.deepEqual(await store.redeemRecoveryCode(token(), "wrong", "n1", t0, POLICY, mark), {
          kind: "invalid",
        });
        assert.deepEqual(
          await store.redeemRecoveryCode(token(), "code-p", "n2", t0, POLICY, mark),
          {
            kind: "proof_replayed",
          },
        );
        assert.deepEqual(
          await store.redeemRecoveryCode(token(), "code-p", "n3", t0, POLICY, proof()),
          { kind: "redeemed" },
        );
      });

      it("50 parallel beginVerify with one proof: exactly one gets past it", async () => {
        const { token, t0 } = await enrolled();
        const mark = proof();
        const results = await Promise.all(
          Array.from({ length: 50 }, () => store.beginVerify(token(), t0, POLICY, mark)),
        );
        assert.equal(results.filter((r) => r.kind !== "proof_replayed").length, 1);
      });
    });

    describe("concurrency", () => {
      const N = 50;

      it(`${N} parallel commitOtp with one mfa_token and step: exactly one committed`, async () => {
        const { token, t0, auth } = await enrolled();
        const tok = token();
        await store.beginVerify(tok, t0, POLICY);
        const results = await Promise.all(
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
        assert.equal(results.filter((r) => r === "committed").length, 1);
        assert.equal(results.filter((r) => r === "mfa_token_used").length, N - 1);
      });

      it(`${N} parallel commitOtp with distinct mfa_tokens, one step: exactly one committed`, async () => {
        const { token, t0, auth } = await enrolled();
        const results = await Promise.all(
          Array.from({ length: N }, () =>
            store.commitOtp({
              token: token(),
              authenticatorId: auth.id,
              step: 7,
              nowMs: t0,
              bucket: POLICY,
            }),
          ),
        );
        assert.equal(results.filter((r) => r === "committed").length, 1);
        assert.equal(results.filter((r) => r === "replayed").length, N - 1);
      });

      it(`${N} parallel beginVerify: exactly capacity attempts are taken`, async () => {
        const { token, t0 } = await enrolled();
        const bucket = { capacity: 10, refillMs: MINUTE };
        const results = await Promise.all(
          Array.from({ length: N }, () => store.beginVerify(token(), t0, bucket)),
        );
        assert.equal(results.filter((r) => r.kind === "ready").length, 10);
        assert.equal(results.filter((r) => r.kind === "locked").length, N - 10);
      });

      it(`${N} parallel redeems of one recovery code: exactly one redeemed`, async () => {
        const { token, t0 } = await enrolled("code");
        const bucket = { capacity: 100, refillMs: MINUTE };
        const results = await Promise.all(
          Array.from({ length: N }, (_, i) =>
            store.redeemRecoveryCode(token(), "code", `n${i}`, t0, bucket),
          ),
        );
        assert.equal(results.filter((r) => r.kind === "redeemed").length, 1);
        assert.equal(results.filter((r) => r.kind === "invalid").length, N - 1);
      });

      it(`${N} parallel rememberOnce: exactly one true`, async () => {
        const value = randomUUID();
        const results = await Promise.all(
          Array.from({ length: N }, () => store.rememberOnce("dpop", value, MINUTE)),
        );
        assert.equal(results.filter(Boolean).length, 1);
      });
    });

    describe("the administrator's steps (SPEC §3) and the internal key's address bucket", () => {
      /** A user with an active authenticator, a recovery code, consumed tokens and a used bucket. */
      async function busyUser() {
        const user = await active(1000);
        // One wrong attempt: the bucket holds one attempt taken.
        await store.beginVerify(user.token(), user.t0, POLICY);
        return user;
      }

      it("resetUserFactors removes an active authenticator and the recovery code: 1", async () => {
        const user = await busyUser();
        assert.equal(await store.resetUserFactors(user.userId), 1);
        assert.deepEqual(await store.getFactors(user.userId), {
          otp: null,
          hasRecoveryCode: false,
        });
        // The user may enroll again at once, with a new recovery code.
        assert.deepEqual(await store.associatePending(user.userId, authenticator(), "rc-2"), {
          kind: "pending_created",
          recoveryCodeStored: true,
          replaced: false,
        });
      });

      it("resetUserFactors removes a pending authenticator: 1; an unknown user: 0", async () => {
        const user = await enrolled();
        assert.equal(await store.resetUserFactors(user.userId), 1);
        assert.equal(await store.getAuthenticator(user.userId), null);
        assert.equal(await store.resetUserFactors(newUser().userId), 0);
      });

      it("unlockUser refills an empty bucket; other users' buckets stay", async () => {
        const user = await enrolled();
        const other = await enrolled();
        for (const u of [user, other]) {
          for (let i = 0; i < POLICY.capacity; i++) {
            assert.equal((await store.beginVerify(u.token(), u.t0, POLICY)).kind, "ready");
          }
          assert.equal((await store.beginVerify(u.token(), u.t0, POLICY)).kind, "locked");
        }
        await store.unlockUser(user.userId);
        assert.equal((await store.beginVerify(user.token(), user.t0, POLICY)).kind, "ready");
        assert.equal((await store.beginVerify(other.token(), other.t0, POLICY)).kind, "locked");
        await store.unlockUser(newUser().userId); // an unknown user: nothing to do
      });

      it("eraseUser leaves nothing of the user (markers, bucket, factors), and others' data alone", async () => {
        const user = await busyUser();
        const other = await busyUser();
        const consumed = user.token();
        await store.redeemRecoveryCode(consumed, "rc-hash-1", "rc-hash-2", user.t0, POLICY);
        const otherConsumed = other.token();
        await store.redeemRecoveryCode(otherConsumed, "rc-hash-1", "rc-hash-2", other.t0, POLICY);
        assert.equal(await store.isMfaTokenConsumed(consumed), true);

        await store.eraseUser(user.userId);
        assert.deepEqual(await store.getFactors(user.userId), {
          otp: null,
          hasRecoveryCode: false,
        });
        assert.equal(await store.isMfaTokenConsumed(consumed), false);
        // A full bucket again: capacity attempts before the lockout.
        for (let i = 0; i < POLICY.capacity; i++) {
          assert.equal((await store.beginVerify(user.token(), user.t0, POLICY)).kind, "ready");
        }
        assert.equal((await store.beginVerify(user.token(), user.t0, POLICY)).kind, "locked");

        assert.equal((await store.getFactors(other.userId)).hasRecoveryCode, true);
        assert.equal((await store.getAuthenticator(other.userId))?.active, true);
        assert.equal(await store.isMfaTokenConsumed(otherConsumed), true);
        await store.eraseUser(newUser().userId); // an unknown user: nothing to do
      });

      it("eraseUser of a user with 1,200 consumed mfa_tokens (several batches)", async () => {
        const user = await enrolled("c0");
        const tokens: MfaTokenRef[] = [];
        for (let i = 0; i < 1200; i++) {
          const token = user.token();
          tokens.push(token);
          const redeemed = await store.redeemRecoveryCode(token, `c${i}`, `c${i + 1}`, user.t0, {
            capacity: 10_000,
            refillMs: MINUTE,
          });
          assert.equal(redeemed.kind, "redeemed");
        }
        await store.eraseUser(user.userId);
        const left = await Promise.all(tokens.map((t) => store.isMfaTokenConsumed(t)));
        assert.equal(left.filter(Boolean).length, 0);
      });

      it("takeAddressAttempt drains one address's bucket; the right key then waits too", async () => {
        const policy = { capacity: 2, refillMs: MINUTE };
        const address = newAddress(policy);
        const other = newAddress(policy);
        const { t0 } = newUser();
        assert.equal(await store.addressRetryAfter(address, t0), 0);
        assert.equal(await store.takeAddressAttempt(address, t0), 0);
        assert.equal(await store.takeAddressAttempt(address, t0), 0);
        assert.equal(await store.takeAddressAttempt(address, t0), 60);
        assert.equal(await store.addressRetryAfter(address, t0), 60);
        assert.equal(await store.addressRetryAfter(address, t0 + 30_000), 30);
        // One attempt refills after a minute: one more is taken, then it waits again.
        assert.equal(await store.addressRetryAfter(address, t0 + MINUTE), 0);
        assert.equal(await store.takeAddressAttempt(address, t0 + MINUTE), 0);
        assert.equal(await store.takeAddressAttempt(address, t0 + MINUTE), 60);
        assert.equal(await store.addressRetryAfter(other, t0), 0);
      });
    });
  });
}
