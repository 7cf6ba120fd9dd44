/**
 * The administrator's steps on one user on Redis (standalone or Cluster),
 * and the internal API key's address bucket: the Store methods
 * resetUserFactors, unlockUser, eraseUser, takeAddressAttempt and
 * addressRetryAfter (store.ts), apart from redis-store.ts's verify path.
 *
 * eraseUser finds the user's keys by their common prefix (redis-keys.ts
 * `prefix`: the user's hash tag), so it erases whatever names the user —
 * consumed mfa_token marks, whose ids are not listed anywhere, and any key
 * a later release adds under the tag — without an index to keep. SCAN walks
 * the keyspace in steps of SCAN_COUNT (each a short command: Redis is never
 * blocked) and each batch of found keys is deleted by one script on the
 * user's slot. On a cluster every master is scanned (only the one owning
 * the user's slot holds keys of it).
 */
import { Cluster, type Redis } from "ioredis";
import { ADMIN_SCRIPTS, type AdminScriptName, ERASE_BATCH } from "./redis-admin-scripts.js";
import { guarded } from "./redis-errors.js";
import { addressBucketKey, userKeys } from "./redis-keys.js";
import { defineScripts } from "./redis-script-runner.js";
import type { Store } from "./store.js";

/** Keys examined per SCAN call. */
const SCAN_COUNT = 1000;

const ms = (value: number): number => Math.floor(value);

/** Redis glob metacharacters (`*`, `?`, `[`, `]`, `\`) escaped; a prefix's other characters match themselves. */
const globEscape = (value: string): string => value.replace(/[*?[\]\\]/g, "\\$&");

type UserAdminSteps = Pick<
  Store,
  "resetUserFactors" | "unlockUser" | "eraseUser" | "takeAddressAttempt" | "addressRetryAfter"
>;

export function createRedisUserAdmin(client: Redis | Cluster): UserAdminSteps {
  const run = defineScripts<AdminScriptName>(client, ADMIN_SCRIPTS);
  const scanned = (): Redis[] => (client instanceof Cluster ? client.nodes("master") : [client]);

  /** Every key starting with `prefix` on one node, SCAN_COUNT at a time. */
  async function* keysOf(node: Redis, prefix: string): AsyncGenerator<string[]> {
    let cursor = "0";
    do {
      const [next, keys] = await node.scan(
        cursor,
        "MATCH",
        `${globEscape(prefix)}*`,
        "COUNT",
        SCAN_COUNT,
      );
      cursor = next;
      if (keys.length > 0) yield keys;
    } while (cursor !== "0");
  }

  const eraseBatch = async (routing: string, prefix: string, keys: string[]) => {
    for (let at = 0; at < keys.length; at += ERASE_BATCH) {
      await run("tsEraseUserKeys", [routing, prefix, ...keys.slice(at, at + ERASE_BATCH)]);
    }
  };

  return {
    resetUserFactors: (userId) =>
      guarded(async () => {
        const keys = userKeys(userId);
        const reply = await run("tsResetUserFactors", [keys.otp, keys.recoveryCode]);
        if (typeof reply !== "number")
          throw new Error(`unexpected reply: ${JSON.stringify(reply)}`);
        return reply;
      }),

    unlockUser: (userId) =>
      guarded(async () => {
        await run("tsUnlockUser", [userKeys(userId).failureBucket]);
      }),

    eraseUser: (userId) =>
      guarded(async () => {
        const keys = userKeys(userId);
        // The factors and the bucket first, in one step: the user is
        // unenrolled and unlocked at once, whatever the scan finds later.
        await eraseBatch(keys.otp, keys.prefix, [keys.otp, keys.recoveryCode, keys.failureBucket]);
        for (const node of scanned()) {
          for await (const found of keysOf(node, keys.prefix)) {
            await eraseBatch(keys.otp, keys.prefix, found);
          }
        }
      }),

    takeAddressAttempt: (address, nowMs) =>
      guarded(async () => {
        const reply = await run("tsInternalKeyAddressTake", [
          addressBucketKey(address.id),
          ms(nowMs),
          address.policy.capacity,
          ms(address.policy.refillMs),
          0,
        ]);
        const wait = Number(reply);
        if (!Number.isFinite(wait)) throw new Error(`unexpected reply: ${JSON.stringify(reply)}`);
        return wait;
      }),

    addressRetryAfter: (address, nowMs) =>
      guarded(async () => {
        const reply = await run("tsAddressBucketWait", [
          addressBucketKey(address.id),
          ms(nowMs),
          address.policy.capacity,
          ms(address.policy.refillMs),
        ]);
        const wait = Number(reply);
        if (!Number.isFinite(wait)) throw new Error(`unexpected reply: ${JSON.stringify(reply)}`);
        return wait;
      }),
  };
}
