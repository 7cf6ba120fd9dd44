/**
 * In-process implementation of the Store contract (docs/architecture.md, the default).
 * It mirrors the Redis scripts step for step (redis-scripts.ts) and passes
 * the same contract suite. Each method runs synchronously inside one call,
 * so it is atomic in a single Node process.
 *
 * Expiry: markers and buckets expire relative to the `nowMs` values callers
 * pass in (like the Redis TTLs derived from them); `rememberOnce` and
 * `isMfaTokenConsumed` have no `nowMs` and use the factory's clock. Expired entries are treated as absent
 * at once and swept lazily, so memory stays bounded by the live entries.
 */
import {
  type AddressBucket,
  type AssociateResult,
  type BeginVerifyResult,
  type BucketPolicy,
  type CommitOtpInput,
  type CommitOtpResult,
  type LockedResult,
  lockedResult,
  type MfaTokenRef,
  PROOF_SCOPE,
  type ProofMark,
  type RedeemRecoveryCodeResult,
  type Store,
  type StoredAuthenticator,
} from "./store.js";

export interface MemoryStoreOptions {
  /** Clock for the methods that take no `nowMs` (`rememberOnce`, `isMfaTokenConsumed`). Defaults to Date.now. */
  now?: () => number;
}

export interface MemoryStore extends Store {
  /** Entries held with a TTL (markers, buckets, single-use values), expired ones not yet swept included. */
  expiringEntryCount(): number;
}

/**
 * A map whose entries expire at a given time. Reads ignore expired entries;
 * a full sweep runs once the writes since the last sweep reach the size the
 * map had right after it (at least 64), so sweeping costs O(1) amortized per
 * write and the map holds at most about twice its live entries (+64).
 *
 * A sweep uses the `now` of the write that triggers it: callers' clocks are
 * expected to move forward (Date.now in production).
 */
class ExpiringMap<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();
  private writesSinceSweep = 0;
  private sweepAfterWrites = 64;

  get(key: string, now: number): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V, expiresAt: number, now: number): void {
    // Re-insert so iteration order roughly follows write time.
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt });
    if (++this.writesSinceSweep >= this.sweepAfterWrites) this.sweep(now);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Deletes every entry whose key starts with `prefix` (an administrator's erasure: O(entries)). */
  deleteByPrefix(prefix: string): void {
    for (const key of this.entries.keys()) {
      if (key.startsWith(prefix)) this.entries.delete(key);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  private sweep(now: number): void {
    this.writesSinceSweep = 0;
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt <= now) this.entries.delete(key);
    }
    this.sweepAfterWrites = Math.max(64, this.entries.size);
  }
}

/** Same integer-millisecond rounding as the Redis store. */
const ms = (value: number): number => Math.floor(value);
const markerExpiry = (token: MfaTokenRef, nowMs: number): number =>
  ms(nowMs) + Math.max(1, Math.ceil(token.expiresAtMs - nowMs));
/** Unambiguous composite key (user ids and token ids may contain any character). */
const markerKey = (token: MfaTokenRef): string => `${markerPrefix(token.userId)}${token.tokenId}`;
/** What every marker key of one user starts with (the length first: no user's is another's prefix). */
const markerPrefix = (userId: string): string => `${userId.length}:${userId}:`;
const onceMapKey = (scope: string, value: string): string => `${scope.length}:${scope}:${value}`;

export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  const clock = options.now ?? Date.now;
  const authenticators = new Map<string, StoredAuthenticator>();
  /** When a pending authenticator expires (absent: durable, or no expiry given). */
  const pendingExpiresAt = new Map<string, number>();
  const recoveryCodes = new Map<string, string>();
  /** Consumed mfa_token markers, expiring with the token. */
  const markers = new ExpiringMap<true>();
  /** Failure buckets: GCRA `fullAt` per user, expiring once full again. */
  const buckets = new ExpiringMap<number>();
  /** The same per client address (AddressBucket.id). */
  const addressBuckets = new ExpiringMap<number>();
  const onceValues = new ExpiringMap<true>();

  const copy = (a: StoredAuthenticator): StoredAuthenticator => ({ ...a });

  /** The user's authenticator as Redis would see it at `now`: an expired pending one is gone. */
  const authenticatorOf = (userId: string, now: number): StoredAuthenticator | undefined => {
    const expiresAt = pendingExpiresAt.get(userId);
    if (expiresAt !== undefined && expiresAt <= now) {
      pendingExpiresAt.delete(userId);
      authenticators.delete(userId);
    }
    return authenticators.get(userId);
  };

  // Failure bucket (docs/api.md), the same GCRA as the Lua BUCKET_FUNCTIONS:
  // tokens(now) = C - max(0, fullAt - now) / T; a missing entry is full.
  type Buckets = ExpiringMap<number>;
  const bucketFullAt = (map: Buckets, key: string, now: number): number =>
    Math.max(map.get(key, now) ?? now, now);

  const retryAfter = (fullAt: number, now: number, bucket: BucketPolicy): number => {
    const excess = fullAt - now - (bucket.capacity - 1) * ms(bucket.refillMs);
    return excess > 0 ? Math.max(1, Math.ceil(excess / 1000)) : 0;
  };

  const takeAttempt = (
    map: Buckets,
    key: string,
    fullAt: number,
    now: number,
    bucket: BucketPolicy,
  ) => {
    const next = fullAt + ms(bucket.refillMs);
    map.set(key, next, next, now);
  };

  const giveAttemptBack = (map: Buckets, key: string, now: number, bucket: BucketPolicy) => {
    const stored = map.get(key, now);
    if (stored === undefined) return;
    const next = stored - ms(bucket.refillMs);
    if (next <= now) map.delete(key);
    else map.set(key, next, next, now);
  };

  /**
   * The user's bucket and, when given, the address's, checked together (the
   * Lua `buckets_check`): a LockedResult when either is empty (nothing
   * taken), else `take` takes one attempt from each.
   */
  const checkBuckets = (
    userId: string,
    bucket: BucketPolicy,
    address: AddressBucket | undefined,
    now: number,
  ): LockedResult | { take(): void } => {
    const userFullAt = bucketFullAt(buckets, userId, now);
    const userWait = retryAfter(userFullAt, now, bucket);
    const addressFullAt = address ? bucketFullAt(addressBuckets, address.id, now) : now;
    const addressWait = address ? retryAfter(addressFullAt, now, address.policy) : 0;
    if (userWait > 0 || addressWait > 0) return lockedResult(userWait, addressWait);
    return {
      take() {
        takeAttempt(buckets, userId, userFullAt, now, bucket);
        if (address) takeAttempt(addressBuckets, address.id, addressFullAt, now, address.policy);
      },
    };
  };

  /** Records a DPoP proof once, globally (the same key space as rememberOnce("dpop", …)). */
  const markProof = (proof: ProofMark | undefined, now: number): boolean => {
    if (proof === undefined) return true;
    const key = onceMapKey(PROOF_SCOPE, proof.id);
    if (onceValues.get(key, now)) return false;
    onceValues.set(key, true, now + Math.max(1, Math.ceil(proof.ttlMs)), now);
    return true;
  };

  return {
    async beginVerify(token, nowMs, bucket, proof, address): Promise<BeginVerifyResult> {
      const now = ms(nowMs);
      if (!markProof(proof, now)) return { kind: "proof_replayed" };
      if (markers.get(markerKey(token), now)) return { kind: "mfa_token_used" };
      const verdict = checkBuckets(token.userId, bucket, address, now);
      if ("kind" in verdict) return verdict;
      verdict.take();
      const authenticator = authenticatorOf(token.userId, now);
      return { kind: "ready", authenticator: authenticator ? copy(authenticator) : null };
    },

    async commitOtp(input: CommitOtpInput): Promise<CommitOtpResult> {
      const { token } = input;
      const now = ms(input.nowMs);
      if (markers.get(markerKey(token), now)) return "mfa_token_used";
      const authenticator = authenticatorOf(token.userId, now);
      if (!authenticator || authenticator.id !== input.authenticatorId) {
        return "authenticator_changed";
      }
      if (input.step <= authenticator.lastStep) return "replayed";
      markers.set(markerKey(token), true, markerExpiry(token, input.nowMs), now);
      authenticator.lastStep = input.step;
      authenticator.active = true;
      pendingExpiresAt.delete(token.userId);
      giveAttemptBack(buckets, token.userId, now, input.bucket);
      if (input.address) {
        giveAttemptBack(addressBuckets, input.address.id, now, input.address.policy);
      }
      return "committed";
    },

    async isMfaTokenConsumed(token) {
      // No `nowMs` here: the factory clock decides whether the marker expired.
      return markers.get(markerKey(token), clock()) === true;
    },

    async getAuthenticator(userId) {
      const authenticator = authenticatorOf(userId, clock());
      return authenticator ? copy(authenticator) : null;
    },

    async getFactors(userId) {
      const authenticator = authenticatorOf(userId, clock());
      return {
        otp: authenticator ? copy(authenticator) : null,
        hasRecoveryCode: recoveryCodes.has(userId),
      };
    },

    async associatePending(
      userId,
      authenticator,
      recoveryCodeHash,
      expiry,
    ): Promise<AssociateResult> {
      const earlier = authenticatorOf(userId, expiry ? ms(expiry.nowMs) : clock());
      if (earlier?.active) return { kind: "already_enrolled" };
      if (expiry) pendingExpiresAt.set(userId, ms(expiry.nowMs) + Math.max(1, ms(expiry.ttlMs)));
      else pendingExpiresAt.delete(userId);
      authenticators.set(userId, {
        id: authenticator.id,
        encryptedSecret: authenticator.encryptedSecret,
        active: false,
        lastStep: -1,
      });
      const recoveryCodeStored = !recoveryCodes.has(userId);
      if (recoveryCodeStored) recoveryCodes.set(userId, recoveryCodeHash);
      return { kind: "pending_created", recoveryCodeStored, replaced: earlier !== undefined };
    },

    async deleteAuthenticator(userId, authenticatorId) {
      // The recovery code is kept, as in the Redis store.
      if (authenticatorOf(userId, clock())?.id !== authenticatorId) return false;
      authenticators.delete(userId);
      pendingExpiresAt.delete(userId);
      return true;
    },

    async redeemRecoveryCode(
      token,
      codeHash,
      newCodeHash,
      nowMs,
      bucket,
      proof,
      address,
    ): Promise<RedeemRecoveryCodeResult> {
      const now = ms(nowMs);
      if (!markProof(proof, now)) return { kind: "proof_replayed" };
      if (markers.get(markerKey(token), now)) return { kind: "mfa_token_used" };
      const verdict = checkBuckets(token.userId, bucket, address, now);
      if ("kind" in verdict) return verdict;
      if (recoveryCodes.get(token.userId) !== codeHash) {
        verdict.take();
        return { kind: "invalid" };
      }
      markers.set(markerKey(token), true, markerExpiry(token, nowMs), now);
      recoveryCodes.set(token.userId, newCodeHash);
      return { kind: "redeemed" };
    },

    async rememberOnce(scope, value, ttlMs) {
      const now = clock();
      const key = onceMapKey(scope, value);
      if (onceValues.get(key, now)) return false;
      onceValues.set(key, true, now + Math.max(1, Math.ceil(ttlMs)), now);
      return true;
    },

    async resetUserFactors(userId) {
      const removed = authenticators.delete(userId) ? 1 : 0;
      recoveryCodes.delete(userId);
      return removed;
    },

    async unlockUser(userId) {
      buckets.delete(userId);
    },

    async eraseUser(userId) {
      authenticators.delete(userId);
      recoveryCodes.delete(userId);
      buckets.delete(userId);
      markers.deleteByPrefix(markerPrefix(userId));
    },

    async takeAddressAttempt(address, nowMs) {
      const now = ms(nowMs);
      const fullAt = bucketFullAt(addressBuckets, address.id, now);
      const wait = retryAfter(fullAt, now, address.policy);
      if (wait === 0) takeAttempt(addressBuckets, address.id, fullAt, now, address.policy);
      return wait;
    },

    async addressRetryAfter(address, nowMs) {
      const now = ms(nowMs);
      return retryAfter(bucketFullAt(addressBuckets, address.id, now), now, address.policy);
    },

    async ping() {},

    async close() {},

    expiringEntryCount: () => markers.size + buckets.size + addressBuckets.size + onceValues.size,
  };
}
