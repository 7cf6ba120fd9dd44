/**
 * Redis implementation of the SessionStore contract (session-store.ts), on
 * the same ioredis client as the main store (standalone `Redis` or
 * `Cluster`, built by redis-client.ts with its fail-fast options). Every
 * method is one script from session-scripts.ts: one round trip, one slot.
 * Scripts are registered with `defineCommand` (EVALSHA after the first call
 * on a connection), under names distinct from the main store's.
 *
 * A DPoP proof sent with an exchange is recorded inside the exchange script
 * on standalone Redis (its key needs no slot); on a cluster its key may live
 * on another node, so it is recorded first with one SET NX (one more round
 * trip, DPoP requests only), as the main store does for the code grants.
 */
import { randomBytes } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import { guarded } from "./redis-errors.js";
import { createProofMarks, defineScripts } from "./redis-script-runner.js";
import { sessionKeys } from "./session-keys.js";
import { SESSION_SCRIPTS, type SessionScriptName } from "./session-scripts.js";
import {
  type ExchangeResult,
  type FamilyRef,
  REVOKE_BATCH,
  type SessionPolicy,
  type SessionStore,
} from "./session-store.js";

/** Durations and times go to Redis as integer milliseconds; 0 means "no limit". */
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
  return new Error(`unexpected reply from redis session script: ${JSON.stringify(reply)}`);
}

/**
 * Wraps a client the caller owns (the main store's): `close()` leaves it
 * open. Pass `{ ownsClient: true }` for a client of its own.
 */
export function createRedisSessionStore(
  client: Redis | Cluster,
  options: { ownsClient?: boolean } = {},
): SessionStore {
  const run = defineScripts<SessionScriptName>(client, SESSION_SCRIPTS);

  /** KEYS[3] and the proof TTL for the exchange script, or "replayed" (see the header). */
  const proofArguments = createProofMarks(client);

  const lifetimes = (policy: SessionPolicy) => [
    limit(policy.absoluteLifetimeMs),
    limit(policy.idleLifetimeMs),
  ];

  return {
    createFamily: ({ family, tokenHash, nowMs, policy, maxFamilies }) =>
      guarded(async () => {
        const keys = sessionKeys(family.userId);
        const reply = await run("tsCreateFamily", [
          keys.family(family.familyId),
          keys.index,
          ms(nowMs),
          tokenHash,
          ...lifetimes(policy),
          family.familyId,
          maxFamilies ?? 0,
          keys.familyPrefix,
        ]);
        if (typeof reply !== "number") throw unexpected(reply);
        return reply;
      }),

    exchange: (input) =>
      guarded(async (): Promise<ExchangeResult> => {
        const keys = sessionKeys(input.family.userId);
        const familyKey = keys.family(input.family.familyId);
        const mark = await proofArguments(familyKey, input.proof);
        if (mark === "replayed") return { kind: "proof_replayed" };
        const reply = await run("tsExchangeRefreshToken", [
          familyKey,
          keys.index,
          mark.key,
          ms(input.nowMs),
          input.presentedHash,
          input.successorHash,
          input.policy.rotating ? "1" : "0",
          Math.max(0, ms(input.policy.leewayMs)),
          ...lifetimes(input.policy),
          mark.ttl,
          input.family.familyId,
        ]);
        const result = typeof reply === "string" ? EXCHANGE_RESULTS[reply] : undefined;
        if (result === undefined) throw unexpected(reply);
        return result;
      }),

    revokeFamilyByToken: (family: FamilyRef, nowMs: number) =>
      guarded(async () => {
        const keys = sessionKeys(family.userId);
        const reply = await run("tsRevokeFamily", [
          keys.family(family.familyId),
          keys.index,
          ms(nowMs),
          family.familyId,
        ]);
        return reply === 1;
      }),

    revokeUserFamilies: (userId: string, nowMs: number) =>
      guarded(async () => {
        const keys = sessionKeys(userId);
        // Step 1, O(1): the index renamed away revokes every family at once;
        // the first batch of family keys goes in the same script.
        const revokedIndex = keys.revokedIndex(randomBytes(12).toString("base64url"));
        const reply = await run("tsRevokeUserFamilies", [
          keys.index,
          revokedIndex,
          ms(nowMs),
          keys.familyPrefix,
          REVOKE_BATCH,
        ]);
        if (!Array.isArray(reply) || reply.length !== 2) throw unexpected(reply);
        const [revoked, firstLeft] = reply as [unknown, unknown];
        if (typeof revoked !== "number" || typeof firstLeft !== "number") throw unexpected(reply);
        // Then REVOKE_BATCH keys per script (Redis serves other clients in between).
        for (let left = firstLeft; left > 0; ) {
          const next = await run("tsDropRevokedFamilies", [
            revokedIndex,
            keys.familyPrefix,
            REVOKE_BATCH,
          ]);
          if (typeof next !== "number") throw unexpected(next);
          left = next;
        }
        return revoked;
      }),

    close: async () => {
      if (!options.ownsClient) return;
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    },
  };
}
