/**
 * PostgreSQL implementation of the SessionStore contract (session-store.ts),
 * on the same pool as the main store. Every method is one function of the
 * schema (migrations/0002-sessions.sql, 0003-account-security.sql): one statement, one transaction, one
 * round trip, DPoP proof mark included (recorded inside the exchange, in the
 * single-use values the code grants share). The rules are the Lua scripts'
 * (session-scripts.ts), line for line; the contract suite keeps them in
 * lockstep.
 *
 * A family's row holds its absolute expiry (the earlier of its absolute and
 * idle deadlines, NULL for none): an expired family reads as unknown, and
 * postgres-sweeper.ts deletes it later.
 */
import type { Database } from "./postgres-client.js";
import {
  CREATE_FAMILY,
  DROP_REVOKED_FAMILIES,
  EXCHANGE,
  REVOKE_FAMILY,
  REVOKE_USER_FAMILIES,
  singleUseKey,
} from "./postgres-statements.js";
import {
  type ExchangeResult,
  type FamilyRef,
  MAX_LIVE_TOKENS,
  REVOKE_BATCH,
  type SessionPolicy,
  type SessionStore,
} from "./session-store.js";
import { PROOF_SCOPE } from "./store.js";

/** Times go to the database as integer milliseconds; a lifetime of 0 means "no limit". */
const ms = (value: number): number => Math.floor(value);
const limit = (value: number | null): number => (value === null ? 0 : Math.max(1, ms(value)));

const EXCHANGE_RESULTS: Record<string, ExchangeResult> = {
  proof_replayed: { kind: "proof_replayed" },
  invalid: { kind: "invalid" },
  rotated: { kind: "rotated" },
  reissued: { kind: "reissued" },
  kept: { kind: "kept" },
  reused: { kind: "reused" },
};

function unexpected(reply: unknown): Error {
  return new Error(`unexpected reply from the postgres session store: ${JSON.stringify(reply)}`);
}

/** Shares the main store's pool: `close()` leaves it open unless `ownsDatabase`. */
export function createPostgresSessionStore(
  db: Database,
  options: { ownsDatabase?: boolean } = {},
): SessionStore {
  const lifetimes = (policy: SessionPolicy) => [
    limit(policy.absoluteLifetimeMs),
    limit(policy.idleLifetimeMs),
  ];

  return {
    async createFamily({ family, tokenHash, nowMs, policy, maxFamilies }) {
      const [row] = await db.query<{ revoked: number }>(CREATE_FAMILY, [
        family.userId,
        family.familyId,
        tokenHash,
        ms(nowMs),
        ...lifetimes(policy),
        maxFamilies ?? null,
      ]);
      if (typeof row?.revoked !== "number") throw unexpected(row);
      return row.revoked;
    },

    async exchange(input): Promise<ExchangeResult> {
      const { proof } = input;
      const [row] = await db.query<{ outcome: string }>(EXCHANGE, [
        input.family.userId,
        input.family.familyId,
        input.presentedHash,
        input.successorHash,
        ms(input.nowMs),
        input.policy.rotating,
        Math.max(0, ms(input.policy.leewayMs)),
        ...lifetimes(input.policy),
        proof === undefined ? null : singleUseKey(PROOF_SCOPE, proof.id),
        proof === undefined ? null : ms(input.nowMs) + Math.max(1, Math.ceil(proof.ttlMs)),
        MAX_LIVE_TOKENS,
      ]);
      const result = row === undefined ? undefined : EXCHANGE_RESULTS[row.outcome];
      if (result === undefined) throw unexpected(row);
      return result;
    },

    async revokeFamilyByToken(family: FamilyRef, nowMs: number) {
      const [row] = await db.query<{ revoked: boolean }>(REVOKE_FAMILY, [
        family.userId,
        family.familyId,
        ms(nowMs),
      ]);
      return row?.revoked === true;
    },

    async revokeUserFamilies(userId: string, nowMs: number) {
      // Step 1 revokes them all at once (the user's threshold) and deletes a
      // first batch; each following step deletes one more batch.
      const [row] = await db.query<{ revoked: number; more: boolean }>(REVOKE_USER_FAMILIES, [
        userId,
        ms(nowMs),
        REVOKE_BATCH,
      ]);
      if (typeof row?.revoked !== "number") throw unexpected(row);
      for (let more = row.more; more; ) {
        const [batch] = await db.query<{ deleted: number }>(DROP_REVOKED_FAMILIES, [
          userId,
          REVOKE_BATCH,
        ]);
        if (typeof batch?.deleted !== "number") throw unexpected(batch);
        more = batch.deleted >= REVOKE_BATCH;
      }
      return row.revoked;
    },

    async close() {
      if (options.ownsDatabase) await db.close();
    },
  };
}
