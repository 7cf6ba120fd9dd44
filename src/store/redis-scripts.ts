/**
 * Lua sources of the Redis store. Each Store method that checks and changes
 * state is one of these scripts, so it is one atomic step and one round trip
 * (docs/architecture.md). Every key a script touches is passed in KEYS[] and shares the
 * user's hash tag (see redis-keys.ts), so each script runs on one cluster slot.
 * The two global keys (a DPoP proof mark, the client address's failure
 * bucket) join a user's script on standalone Redis only; on a cluster the
 * script gets a same-slot placeholder and redis-store.ts handles them apart.
 *
 * Conventions:
 * - Times are integer milliseconds passed in ARGV (`now` comes from the
 *   caller's clock, so tests can drive a fake one). Redis TTLs are set as
 *   durations (`PX`) derived from them.
 * - Numbers are written with `%.0f`: Lua numbers are doubles, and the default
 *   number-to-string conversion (`%.14g`) would print large values in
 *   exponent form.
 * - Results are small arrays whose first element names the outcome.
 */

/**
 * Failure bucket (docs/api.md) as GCRA with one stored value, `fullAt`: the time
 * at which the bucket is full again. With C = capacity and T = refill period,
 * tokens(now) = C - max(0, fullAt - now) / T; a missing key is a full bucket.
 * The key expires exactly when the bucket would be full again, so a user who
 * stops failing leaves nothing behind.
 */
const BUCKET_FUNCTIONS = `
local function num(s) return string.format('%.0f', s) end

-- A DPoP proof is used once (RFC 9449 §11.1): recorded with its TTL, or
-- false when already recorded. ttl 0 means "no proof in this request".
local function proof_first_use(key, ttl)
  if tonumber(ttl) == 0 then return true end
  return redis.call('SET', key, '1', 'NX', 'PX', ttl) ~= false
end

-- Stored fullAt, never earlier than now (a past fullAt means "full").
local function bucket_full_at(key, now)
  local stored = tonumber(redis.call('GET', key))
  if stored == nil or stored < now then return now end
  return stored
end

-- Empty when fewer than one token is left: fullAt - now > (C - 1) * T.
-- Returns the whole seconds until one attempt refills (at least 1), or 0.
local function bucket_retry_after(full_at, now, capacity, refill)
  local excess = (full_at - now) - (capacity - 1) * refill
  if excess > 0 then return math.max(1, math.ceil(excess / 1000)) end
  return 0
end

-- Takes one attempt: fullAt moves one period later.
local function bucket_take(key, full_at, now, refill)
  local next_full = full_at + refill
  redis.call('SET', key, num(next_full), 'PX', num(next_full - now))
end

-- Gives one attempt back (a success does not drain the bucket).
local function bucket_give_back(key, now, refill)
  local stored = tonumber(redis.call('GET', key))
  if stored == nil then return end
  local next_full = stored - refill
  if next_full <= now then
    redis.call('DEL', key)
  else
    redis.call('SET', key, num(next_full), 'PX', num(next_full - now))
  end
end

-- The user's bucket and the client address's, checked together. The
-- address's is in this script when addr_capacity > 0 (standalone Redis);
-- on a cluster it was checked and charged before the script, which then
-- gets its wait (0: an attempt was taken) as addr_wait.
-- Returns the 'locked' reply (nothing taken: the longer wait, and which
-- bucket when the address's is empty), or nil and a function that takes one
-- attempt from each bucket this script holds.
local function buckets_check(now, key, capacity, refill, addr_key, addr_capacity, addr_refill, addr_wait)
  local full_at = bucket_full_at(key, now)
  local user_wait = bucket_retry_after(full_at, now, capacity, refill)
  local addr_full_at = now
  if addr_capacity > 0 then
    addr_full_at = bucket_full_at(addr_key, now)
    addr_wait = bucket_retry_after(addr_full_at, now, addr_capacity, addr_refill)
  end
  if addr_wait > 0 then
    local by = 'address'
    if user_wait > 0 then by = 'both' end
    return {'locked', math.max(user_wait, addr_wait), by}
  end
  if user_wait > 0 then return {'locked', user_wait} end
  return nil, function()
    bucket_take(key, full_at, now, refill)
    if addr_capacity > 0 then bucket_take(addr_key, addr_full_at, now, addr_refill) end
  end
end
`;

/**
 * A pending authenticator past its expiry is gone. Its hash holds `x`, the
 * absolute expiry in ms from the writer's clock (the caller's `now` decides,
 * as everywhere in these scripts, so tests drive a fake clock); the key's
 * TTL is the ceiling that frees the memory. Deleted here when found expired.
 */
const OTP_FUNCTIONS = `
local function otp_expired(key, now)
  local x = tonumber(redis.call('HGET', key, 'x'))
  if x ~= nil and x <= now then
    redis.call('DEL', key)
    return true
  end
  return false
end
`;

/**
 * Store.beginVerify — round trip 1 of a verify ("charge first").
 * KEYS: 1 mfa_token marker, 2 failure bucket, 3 authenticator hash, 4 DPoP proof,
 *       5 address bucket.
 * ARGV: 1 now, 2 capacity, 3 refillMs, 4 proof TTL ms (0: no proof),
 *       5 address capacity (0: the address bucket is not in this script),
 *       6 address refillMs, 7 address wait found before the script (cluster).
 * Returns {'proof_replayed'} | {'used'} | {'locked', retryAfterSeconds[, by]} |
 *         {'ready'} (no authenticator) | {'ready', id, secret, active, last_step}.
 */
export const BEGIN_VERIFY_LUA = `${BUCKET_FUNCTIONS}${OTP_FUNCTIONS}
local now, capacity, refill = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

-- 0. A replayed DPoP proof (error row 11 comes before rows 6 and 8).
if not proof_first_use(KEYS[4], ARGV[4]) then return {'proof_replayed'} end

-- 1. A consumed mfa_token stays consumed (docs/api.md: first success wins).
if redis.call('EXISTS', KEYS[1]) == 1 then return {'used'} end

-- 2. An empty bucket (the user's or the address's) refuses every code, the
--    right one too; nothing changes.
local locked, take = buckets_check(now, KEYS[2], capacity, refill,
  KEYS[5], tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
if locked then return locked end

-- 3. Take one attempt now; commitOtp gives it back on success, so a wrong
--    code needs no second round trip.
take()

-- 4. The authenticator (active, or the latest pending one that has not
--    expired), if any.
if otp_expired(KEYS[3], now) then return {'ready'} end
local a = redis.call('HMGET', KEYS[3], 'id', 'secret', 'active', 'last_step')
if not a[1] then return {'ready'} end
return {'ready', a[1], a[2], a[3], a[4]}
`;

/**
 * Store.commitOtp — round trip 2 of a successful verify; all-or-nothing.
 * KEYS: 1 mfa_token marker, 2 authenticator hash, 3 failure bucket, 4 address bucket.
 * ARGV: 1 authenticator id, 2 step, 3 now, 4 marker TTL ms, 5 refillMs,
 *       6 address refillMs (0: the address bucket is not in this script).
 * Returns 'committed' | 'used' | 'changed' | 'replayed'.
 */
export const COMMIT_OTP_LUA = `${BUCKET_FUNCTIONS}${OTP_FUNCTIONS}
local id, step, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local marker_ttl, refill = tonumber(ARGV[4]), tonumber(ARGV[5])

-- 1. Concurrent successes with one mfa_token: only the first one commits.
if redis.call('EXISTS', KEYS[1]) == 1 then return 'used' end

-- 2. The authenticator checked in beginVerify must still be the same one
--    (not deleted, not replaced by a new pending enrollment, not expired).
if otp_expired(KEYS[2], now) then return 'changed' end
local a = redis.call('HMGET', KEYS[2], 'id', 'last_step')
if not a[1] or a[1] ~= id then return 'changed' end

-- 3. Replay guard (RFC 6238 §5.2): accept only a strictly greater step, so
--    one code yields one token even across mfa_tokens.
if step <= (tonumber(a[2]) or -1) then return 'replayed' end

-- 4. Commit: consume the mfa_token until it expires, remember the step,
--    activate a pending authenticator, give back the attempts taken earlier.
redis.call('SET', KEYS[1], '1', 'PX', num(marker_ttl))
redis.call('HSET', KEYS[2], 'last_step', num(step), 'active', '1')
-- An activated authenticator is durable (the pending one expired).
redis.call('HDEL', KEYS[2], 'x')
redis.call('PERSIST', KEYS[2])
bucket_give_back(KEYS[3], now, refill)
local addr_refill = tonumber(ARGV[6])
if addr_refill > 0 then bucket_give_back(KEYS[4], now, addr_refill) end
return 'committed'
`;

/**
 * Store.associatePending — enrollment.
 * KEYS: 1 authenticator hash, 2 recovery-code hash.
 * ARGV: 1 id, 2 encrypted secret, 3 recovery-code hash, 4 now,
 *       5 pending TTL ms (0: no expiry).
 * Returns {outcome, replaced}: outcome 0 (already enrolled) | 1 (pending
 * created) | 2 (pending created and recovery code stored); replaced 1 when a
 * live pending authenticator was replaced (an expired one does not count).
 */
export const ASSOCIATE_PENDING_LUA = `${OTP_FUNCTIONS}
local now, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
otp_expired(KEYS[1], now)

-- 1. Refused while an active authenticator exists (docs/api.md Enrollment).
if redis.call('HGET', KEYS[1], 'active') == '1' then return {0, 0} end

-- 2. Replace any earlier pending authenticator (DEL first: no stale fields);
--    the pending one expires unless a verified code activates it first.
local replaced = redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'secret', ARGV[2], 'active', '0', 'last_step', '-1')
if ttl > 0 then
  redis.call('HSET', KEYS[1], 'x', string.format('%.0f', now + ttl))
  redis.call('PEXPIRE', KEYS[1], ttl)
end

-- 3. The recovery code is stored only on the user's first association.
if redis.call('SET', KEYS[2], ARGV[3], 'NX') then return {2, replaced} end
return {1, replaced}
`;

/**
 * Store.deleteAuthenticator — delete only if the id still matches, so a
 * stale delete never removes a newer enrollment (nor an expired pending
 * one: it is already gone). The recovery code is kept.
 * KEYS: 1 authenticator hash. ARGV: 1 id, 2 now. Returns 1 (deleted) | 0.
 */
export const DELETE_AUTHENTICATOR_LUA = `${OTP_FUNCTIONS}
if otp_expired(KEYS[1], tonumber(ARGV[2])) then return 0 end
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

/**
 * Store.redeemRecoveryCode — the recovery grant in one step.
 * KEYS: 1 mfa_token marker, 2 failure bucket, 3 recovery-code hash,
 *       4 DPoP proof, 5 address bucket.
 * ARGV: 1 now, 2 capacity, 3 refillMs, 4 code hash, 5 new code hash,
 *       6 marker TTL ms, 7 proof TTL ms (0: no proof), 8–10 the address
 *       bucket as ARGV 5–7 of beginVerify.
 * Returns {'proof_replayed'} | {'used'} | {'locked', retryAfterSeconds[, by]} |
 *         {'invalid'} | {'redeemed'}.
 */
export const REDEEM_RECOVERY_CODE_LUA = `${BUCKET_FUNCTIONS}
local now, capacity, refill = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

-- 0. A replayed DPoP proof, as in beginVerify.
if not proof_first_use(KEYS[4], ARGV[7]) then return {'proof_replayed'} end

-- 1. A consumed mfa_token stays consumed.
if redis.call('EXISTS', KEYS[1]) == 1 then return {'used'} end

-- 2. The failure buckets are shared with OTP verification (per user, and
--    per client address).
local locked, take = buckets_check(now, KEYS[2], capacity, refill,
  KEYS[5], tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]))
if locked then return locked end

-- 3. Compare hashes (never codes in clear). A mismatch, or no code at all,
--    costs one attempt (from each bucket).
local stored = redis.call('GET', KEYS[3])
if not stored or stored ~= ARGV[4] then
  take()
  return {'invalid'}
end

-- 4. Match: consume the mfa_token and rotate the code (plain SET: durable).
redis.call('SET', KEYS[1], '1', 'PX', num(tonumber(ARGV[6])))
redis.call('SET', KEYS[3], ARGV[5])
return {'redeemed'}
`;

/**
 * Store.getFactors — the user's OTP authenticator and recovery-code presence
 * in one round trip (both keys share the user's slot).
 * KEYS: 1 authenticator hash, 2 recovery-code hash. ARGV: 1 now (an expired
 * pending authenticator is absent).
 * Returns {id, secret, active, last_step, has_recovery_code (0|1)}.
 */
export const GET_FACTORS_LUA = `${OTP_FUNCTIONS}
otp_expired(KEYS[1], tonumber(ARGV[1]))
local a = redis.call('HMGET', KEYS[1], 'id', 'secret', 'active', 'last_step')
return {a[1], a[2], a[3], a[4], redis.call('EXISTS', KEYS[2])}
`;

/**
 * The client address's bucket on its own, for Redis Cluster, where its key
 * lives on another slot than the user's (redis-store.ts): checked and
 * charged before the user's script, given back after a success.
 * KEYS: 1 address bucket. ARGV: 1 now, 2 capacity, 3 refillMs,
 * 4 '1' to take an attempt even when empty (re-charging one given back too early).
 * Returns 0 (one attempt taken) or the whole seconds to wait (nothing taken).
 */
export const ADDRESS_BUCKET_TAKE_LUA = `${BUCKET_FUNCTIONS}
local now, capacity, refill = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local full_at = bucket_full_at(KEYS[1], now)
local wait = bucket_retry_after(full_at, now, capacity, refill)
if wait > 0 and ARGV[4] ~= '1' then return wait end
bucket_take(KEYS[1], full_at, now, refill)
return 0
`;

/**
 * Gives one attempt back to the address bucket (cluster; see above).
 * KEYS: 1 address bucket. ARGV: 1 now, 2 refillMs. Returns 1.
 */
export const ADDRESS_BUCKET_GIVE_BACK_LUA = `${BUCKET_FUNCTIONS}
bucket_give_back(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
return 1
`;

export interface ScriptDefinition {
  lua: string;
  numberOfKeys: number;
  /**
   * True for a script that writes nothing. Every other script is a write:
   * refused while the store cannot be trusted and confirmed by the key's
   * replicas (redis-write-guard.ts), so a new script is covered by default.
   */
  readOnly?: boolean;
}

/** Registered with ioredis `defineCommand` under these names. */
export const STORE_SCRIPTS = {
  tsBeginVerify: { lua: BEGIN_VERIFY_LUA, numberOfKeys: 5 },
  tsCommitOtp: { lua: COMMIT_OTP_LUA, numberOfKeys: 4 },
  tsAssociatePending: { lua: ASSOCIATE_PENDING_LUA, numberOfKeys: 2 },
  tsDeleteAuthenticator: { lua: DELETE_AUTHENTICATOR_LUA, numberOfKeys: 1 },
  tsRedeemRecoveryCode: { lua: REDEEM_RECOVERY_CODE_LUA, numberOfKeys: 5 },
  // Read-only for the write guard (IssueMfaToken writes nothing and waits for
  // nothing): its one write, deleting a pending authenticator whose expiry
  // has passed, is cleanup that every script repeats, so losing it in a
  // failover changes no answer.
  tsGetFactors: { lua: GET_FACTORS_LUA, numberOfKeys: 2, readOnly: true },
  tsAddressBucketTake: { lua: ADDRESS_BUCKET_TAKE_LUA, numberOfKeys: 1 },
  tsAddressBucketGiveBack: { lua: ADDRESS_BUCKET_GIVE_BACK_LUA, numberOfKeys: 1 },
} as const satisfies Record<string, ScriptDefinition>;

export type StoreScriptName = keyof typeof STORE_SCRIPTS;
