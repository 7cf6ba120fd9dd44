/**
 * Lua sources of the administrator's steps on one user (SPEC §3:
 * ResetUserMfa, UnlockUser, DeleteUserData) and of the internal API key's
 * address bucket (SPEC §2). Conventions as in redis-scripts.ts: every key of
 * one call shares the user's hash tag (one cluster slot), each call is one
 * atomic step.
 */
import { ADDRESS_BUCKET_TAKE_LUA, type ScriptDefinition } from "./redis-scripts.js";

/**
 * Store.resetUserFactors — the authenticator (active or pending) and the
 * recovery code go together, so no login sees one without the other.
 * KEYS: 1 authenticator hash, 2 recovery-code hash.
 * Returns the number of authenticators removed (0 | 1).
 */
export const RESET_USER_FACTORS_LUA = `
local removed = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
return removed
`;

/**
 * Store.unlockUser — a missing bucket is a full one.
 * KEYS: 1 failure bucket. Returns 1.
 */
export const UNLOCK_USER_LUA = `
redis.call('DEL', KEYS[1])
return 1
`;

/**
 * Store.eraseUser, one batch: deletes the given keys of one user (found by
 * SCAN). KEYS[1] is one of the user's keys: it routes the call to the
 * user's slot, as tsRevokeUserFamilies' index does; the batch comes in ARGV
 * (at most ERASE_BATCH), every key in the same hash tag. Each must start
 * with the user's prefix (ARGV[1]), so no mistake can reach another user's
 * data. Returns the number of keys deleted.
 */
export const ERASE_USER_KEYS_LUA = `
local prefix = ARGV[1]
local deleted = 0
for i = 2, #ARGV do
  local key = ARGV[i]
  if string.sub(key, 1, #prefix) ~= prefix then
    return redis.error_reply('key outside the user prefix')
  end
  deleted = deleted + redis.call('DEL', key)
end
return deleted
`;

/**
 * The address bucket's wait, read only (the internal API key's right answer
 * still waits while the bucket is empty). KEYS: 1 address bucket.
 * ARGV: 1 now, 2 capacity, 3 refillMs. Returns the whole seconds to wait (0: not empty).
 */
export const ADDRESS_BUCKET_WAIT_LUA = `
local now, capacity, refill = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local full_at = tonumber(redis.call('GET', KEYS[1]))
if full_at == nil or full_at < now then return 0 end
local excess = (full_at - now) - (capacity - 1) * refill
if excess > 0 then return math.max(1, math.ceil(excess / 1000)) end
return 0
`;

/** Keys deleted per eraseUser script call: each call stays a short step. */
export const ERASE_BATCH = 500;

/** Registered under names distinct from the store's and the sessions'. */
export const ADMIN_SCRIPTS = {
  tsResetUserFactors: { lua: RESET_USER_FACTORS_LUA, numberOfKeys: 2 },
  tsUnlockUser: { lua: UNLOCK_USER_LUA, numberOfKeys: 1 },
  tsEraseUserKeys: { lua: ERASE_USER_KEYS_LUA, numberOfKeys: 1 },
  tsAddressBucketWait: { lua: ADDRESS_BUCKET_WAIT_LUA, numberOfKeys: 1 },
  tsInternalKeyAddressTake: { lua: ADDRESS_BUCKET_TAKE_LUA, numberOfKeys: 1 },
} as const satisfies Record<string, ScriptDefinition>;

export type AdminScriptName = keyof typeof ADMIN_SCRIPTS;
