/**
 * In-process implementation of the SessionStore contract (the default
 * store's twin). It follows the Redis scripts step for step
 * (session-scripts.ts, whose EXCHANGE_LUA comment states the reuse rule) and
 * passes the same contract suite. Each step runs synchronously after at most
 * one await (the DPoP proof mark), so it is atomic in a single Node process.
 *
 * Expiry mirrors the Redis TTLs: a family is absent once the deadline
 * computed at its last write has passed (with the `nowMs` callers pass in),
 * and expired families are swept lazily, so memory stays bounded by the live
 * ones.
 */
import type { ExchangeResult, FamilyRef, SessionPolicy, SessionStore } from "./session-store.js";
import { MAX_LIVE_TOKENS, REVOKED_PER_LOGIN } from "./session-store.js";
import { PROOF_SCOPE, type ProofMark } from "./store.js";

export interface MemorySessionStoreOptions {
  /**
   * Where DPoP proof marks are recorded. Pass the main memory store's
   * `rememberOnce`, so a proof used with one grant cannot be replayed with
   * another (Redis shares one key space for them). By default the marks are
   * kept here.
   */
  rememberOnce?: (scope: string, value: string, ttlMs: number) => Promise<boolean>;
  /** Clock of the default proof marks (their TTL is not tied to a call's `nowMs`). Defaults to Date.now. */
  now?: () => number;
}

export interface MemorySessionStore extends SessionStore {
  /** Families held, expired ones not yet swept included. */
  familyCount(): number;
}

interface Family {
  /** Live token hashes, oldest first (Redis: `l`, concatenated). */
  live: string[];
  /** `p` and `pf`. */
  previous: string | null;
  previousAt: number;
  /** `s` and `u`. */
  startedAt: number;
  lastUsedAt: number;
  /** The key's TTL: absent from this time on. */
  expiresAt: number;
}

/** Same integer-millisecond rounding as the Redis store; 0 means "no limit". */
const ms = (value: number): number => Math.floor(value);
const limit = (value: number | null): number => (value === null ? 0 : Math.max(1, ms(value)));

/** The Lua `family_deadline`; Infinity for "no limit" (Redis: no TTL). */
function familyDeadline(started: number, last: number, policy: SessionPolicy): number {
  const absolute = limit(policy.absoluteLifetimeMs);
  const idle = limit(policy.idleLifetimeMs);
  let deadline = Number.POSITIVE_INFINITY;
  if (absolute > 0) deadline = started + absolute;
  if (idle > 0 && last + idle < deadline) deadline = last + idle;
  return deadline;
}

export function createMemorySessionStore(
  options: MemorySessionStoreOptions = {},
): MemorySessionStore {
  /** userId → familyId → family (Redis: the index and the family keys). */
  const users = new Map<string, Map<string, Family>>();
  const proofs = new Map<string, number>();
  let writesSinceSweep = 0;
  let sweepAfterWrites = 64;

  const familyCount = () => {
    let count = 0;
    for (const families of users.values()) count += families.size;
    return count;
  };

  /** Amortized O(1) per write: a full sweep once the writes since the last reach its size. */
  const wrote = (now: number) => {
    if (++writesSinceSweep < sweepAfterWrites) return;
    writesSinceSweep = 0;
    for (const [userId, families] of users) {
      for (const [id, family] of families) if (family.expiresAt <= now) families.delete(id);
      if (families.size === 0) users.delete(userId);
    }
    for (const [id, expiresAt] of proofs) if (expiresAt <= now) proofs.delete(id);
    sweepAfterWrites = Math.max(64, familyCount() + proofs.size);
  };

  const clock = options.now ?? Date.now;
  const rememberOnce =
    options.rememberOnce ??
    (async (scope: string, value: string, ttlMs: number) => {
      const key = `${scope.length}:${scope}:${value}`;
      const now = clock();
      if ((proofs.get(key) ?? 0) > now) return false;
      proofs.set(key, now + Math.max(1, Math.ceil(ttlMs)));
      return true;
    });
  const proofFirstUse = (proof: ProofMark | undefined) =>
    proof === undefined ? Promise.resolve(true) : rememberOnce(PROOF_SCOPE, proof.id, proof.ttlMs);

  /** The family as Redis would see it at `now`: undefined once its TTL has passed. */
  const lookup = (ref: FamilyRef, now: number): Family | undefined => {
    const family = users.get(ref.userId)?.get(ref.familyId);
    if (family === undefined || family.expiresAt > now) return family;
    forget(ref);
    return undefined;
  };

  /** Lua `forget`: true when the family was still there. */
  const forget = (ref: FamilyRef): boolean => {
    const families = users.get(ref.userId);
    const existed = families?.delete(ref.familyId) ?? false;
    if (families?.size === 0) users.delete(ref.userId);
    return existed;
  };

  return {
    async createFamily({ family: ref, tokenHash, nowMs, policy, maxFamilies }) {
      const now = ms(nowMs);
      let families = users.get(ref.userId);
      if (families === undefined) {
        families = new Map();
        users.set(ref.userId, families);
      }
      // The cap, in the same step: the families that end first go (Lua: ZRANGE of the index).
      let revoked = 0;
      if (maxFamilies !== undefined) {
        for (const [id, family] of families) if (family.expiresAt <= now) families.delete(id);
        const excess = Math.min(families.size - maxFamilies + 1, REVOKED_PER_LOGIN);
        if (excess > 0) {
          const oldest = [...families]
            .sort(([, a], [, b]) => a.expiresAt - b.expiresAt || a.startedAt - b.startedAt)
            .slice(0, excess);
          for (const [id] of oldest) families.delete(id);
          revoked = oldest.length;
        }
      }
      families.set(ref.familyId, {
        live: [tokenHash],
        previous: null,
        previousAt: 0,
        startedAt: now,
        lastUsedAt: now,
        expiresAt: familyDeadline(now, now, policy),
      });
      wrote(now);
      return revoked;
    },

    async exchange(input): Promise<ExchangeResult> {
      const { presentedHash, successorHash, policy } = input;
      // 0. A replayed DPoP proof changes nothing.
      if (!(await proofFirstUse(input.proof))) return { kind: "proof_replayed" };
      const now = ms(input.nowMs);

      // 1. Unknown, revoked or expired.
      const family = lookup(input.family, now);
      if (family === undefined) return { kind: "invalid" };
      if (now >= familyDeadline(family.startedAt, family.lastUsedAt, policy)) {
        forget(input.family);
        return { kind: "invalid" };
      }

      // 2. What the presented token is (the rule: session-scripts.ts EXCHANGE_LUA).
      const isLive = family.live.includes(presentedHash);
      let outcome: ExchangeResult;
      if (policy.rotating) {
        const leeway = Math.max(0, ms(policy.leewayMs));
        if (isLive) {
          family.live = [successorHash];
          family.previous = presentedHash;
          family.previousAt = now;
          outcome = { kind: "rotated" };
        } else if (
          family.previous === presentedHash &&
          leeway > 0 &&
          now - family.previousAt <= leeway
        ) {
          family.live = [...family.live.slice(-(MAX_LIVE_TOKENS - 1)), successorHash];
          outcome = { kind: "reissued" };
        } else {
          forget(input.family);
          return { kind: "reused" };
        }
      } else if (isLive) {
        outcome = { kind: "kept" };
      } else {
        return { kind: "invalid" };
      }

      // 3. The idle clock restarted.
      family.lastUsedAt = now;
      family.expiresAt = familyDeadline(family.startedAt, now, policy);
      wrote(now);
      return outcome;
    },

    async revokeFamilyByToken(ref, nowMs) {
      return lookup(ref, ms(nowMs)) !== undefined && forget(ref);
    },

    async revokeUserFamilies(userId, nowMs) {
      const families = users.get(userId);
      if (families === undefined) return 0;
      users.delete(userId);
      let revoked = 0;
      for (const family of families.values()) if (family.expiresAt > ms(nowMs)) revoked++;
      return revoked;
    },

    async close() {},

    familyCount,
  };
}
