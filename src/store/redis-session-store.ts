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
import type { Cluster, Redis } from "ioredis";
import { guarded } from "./redis-errors.js";
import { createProofMarks, defineScripts } from "./redis-script-runner.js";
import { sessionKeys } from "./session-keys.js";
import { SESSION_SCRIPTS, type SessionScriptName } from "./session-scripts.js";
import type { ExchangeResult, FamilyRef, SessionPolicy, SessionStore } from "./session-store.js";

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
    createFamily: ({ family, tokenHash, nowMs, policy }) =>
      guarded(async () => {
        const keys = sessionKeys(family.userId);
        await run("tsCreateFamily", [
          keys.family(family.familyId),
          keys.index,
          ms(nowMs),
          tokenHash,
          ...lifetimes(policy),
          family.familyId,
        ]);
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

    revokeUserFamilies: (userId: string) =>
      guarded(async () => {
        const keys = sessionKeys(userId);
        const reply = await run("tsRevokeUserFamilies", [keys.index, keys.familyPrefix]);
        if (typeof reply !== "number") throw unexpected(reply);
        return reply;
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
