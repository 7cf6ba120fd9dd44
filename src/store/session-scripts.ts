/**
 * Lua sources of the Redis SessionStore (session-store.ts). Each method is
 * one of these scripts: one atomic step, one round trip. Keys are in KEYS[]
 * and share the user's hash tag (session-keys.ts), so each script runs on one
 * cluster slot; `createFamily` (the cap) and the batches of
 * `revokeUserFamilies` also delete family keys an index names, which share
 * that tag, so they are on the same slot.
 *
 * Conventions as redis-scripts.ts: times are integer milliseconds from the
 * caller's clock in ARGV; numbers are written with `%.0f`; lifetimes of 0
 * mean "no limit".
 *
 * The memory twin (memory-session-store.ts) follows these scripts line by
 * line; the contract suite keeps them in lockstep.
 */
import { MAX_LIVE_TOKENS, REVOKED_PER_LOGIN } from "./session-store.js";

const SESSION_FUNCTIONS = `
local function num(s) return string.format('%.0f', s) end

-- A DPoP proof is used once (RFC 9449 §11.1); ttl 0: no proof in this request.
local function proof_first_use(key, ttl)
  if tonumber(ttl) == 0 then return true end
  return redis.call('SET', key, '1', 'NX', 'PX', ttl) ~= false
end

-- The earlier of start + absolute and last exchange + idle; nil: no limit.
local function family_deadline(started, last, absolute, idle)
  local deadline = nil
  if absolute > 0 then deadline = started + absolute end
  if idle > 0 and (deadline == nil or last + idle < deadline) then deadline = last + idle end
  return deadline
end

-- The index lives as long as its longest-lived family (no TTL while one has no limit).
local function index_ttl(index, now)
  local top = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  if not top[2] then return end
  if top[2] == 'inf' then
    redis.call('PERSIST', index)
  else
    redis.call('PEXPIRE', index, num(math.max(1, tonumber(top[2]) - now)))
  end
end

-- The family key and its index entry expire at the family's deadline.
local function keep_until(family, index, id, deadline, now)
  if deadline == nil then
    redis.call('PERSIST', family)
    redis.call('ZADD', index, '+inf', id)
  else
    redis.call('PEXPIRE', family, num(deadline - now))
    redis.call('ZADD', index, num(deadline), id)
  end
  index_ttl(index, now)
end

-- Revocation and expiry alike: the family is gone and answers as unknown.
local function forget(family, index, id, now)
  local existed = redis.call('DEL', family)
  redis.call('ZREM', index, id)
  index_ttl(index, now)
  return existed
end
`;

/**
 * SessionStore.createFamily.
 * KEYS: 1 family hash, 2 user's family index.
 * ARGV: 1 now, 2 token hash, 3 absolute lifetime ms, 4 idle lifetime ms, 5 family id,
 *       6 most live families per user (0: no cap), 7 family key prefix (same hash tag).
 * Drops index entries whose deadline has passed (their families are gone), so
 * the index holds live families only; then, at the cap, revokes the families
 * that end first (lowest deadlines; at most ${REVOKED_PER_LOGIN}). Returns how many it revoked.
 */
export const CREATE_FAMILY_LUA = `${SESSION_FUNCTIONS}
local now, cap = tonumber(ARGV[1]), tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', num(now))
local revoked = 0
if cap > 0 then
  local excess = math.min(redis.call('ZCARD', KEYS[2]) - cap + 1, ${REVOKED_PER_LOGIN})
  if excess > 0 then
    for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess - 1)) do
      redis.call('DEL', ARGV[7] .. id)
      redis.call('ZREM', KEYS[2], id)
      revoked = revoked + 1
    end
  end
end
redis.call('HSET', KEYS[1], 'l', ARGV[2], 's', num(now), 'u', num(now))
keep_until(KEYS[1], KEYS[2], ARGV[5],
  family_deadline(now, now, tonumber(ARGV[3]), tonumber(ARGV[4])), now)
return revoked
`;

/**
 * SessionStore.exchange — what a presented token means, in one step.
 * KEYS: 1 family hash, 2 user's family index, 3 DPoP proof once-key (a
 *       same-slot placeholder when there is no proof or on a cluster).
 * ARGV: 1 now, 2 presented hash, 3 successor hash, 4 rotating '1'|'0',
 *       5 leeway ms, 6 absolute lifetime ms, 7 idle lifetime ms,
 *       8 proof TTL ms (0: none), 9 family id.
 * Returns 'proof_replayed' | 'invalid' | 'rotated' | 'reissued' | 'kept' | 'reused'.
 *
 * The reuse rule (rotating clients): a live token is exchanged once — it
 * becomes the previous token, first exchanged now, and its successor the only
 * live token. The previous token presented again within leeway (> 0) of that
 * first exchange gets another successor, added to the live tokens (at most
 * ${MAX_LIVE_TOKENS}, oldest dropped); the first-exchange time does not move,
 * so the window never extends itself. Any other token of the family — the
 * previous one after the leeway or with leeway 0, an older one, a successor
 * dropped by a later rotation — is a reuse: the whole family is deleted, the
 * newest token included. N concurrent exchanges of one token with leeway 0
 * therefore give one 'rotated', one 'reused' and N-2 'invalid'.
 * Non-rotating clients have one live token, exchanged any number of times;
 * no reuse detection applies to them.
 */
export const EXCHANGE_LUA = `${SESSION_FUNCTIONS}
local now, presented, successor = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local rotating, leeway = ARGV[4] == '1', tonumber(ARGV[5])
local absolute, idle, id = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[9]

-- 0. A replayed DPoP proof changes nothing.
if not proof_first_use(KEYS[3], ARGV[8]) then return 'proof_replayed' end

-- 1. The family: unknown and revoked ones are gone; an expired one is
--    deleted now (its TTL is a ceiling, the lifetimes may have shrunk since).
local f = redis.call('HMGET', KEYS[1], 'l', 'p', 'pf', 's', 'u')
local live, previous, previous_at = f[1], f[2], tonumber(f[3])
local started, last = tonumber(f[4]), tonumber(f[5])
if not live then return 'invalid' end
-- A family its user's index no longer names was revoked with all the user's
-- families (REVOKE_USER_FAMILIES_LUA) and waits for its batch: it is gone.
if not redis.call('ZSCORE', KEYS[2], id) then
  redis.call('DEL', KEYS[1])
  return 'invalid'
end
local deadline = family_deadline(started, last, absolute, idle)
if deadline ~= nil and now >= deadline then
  forget(KEYS[1], KEYS[2], id, now)
  return 'invalid'
end

-- Live hashes are concatenated; every hash has the same length.
local function is_live(hash)
  local size = #hash
  if size == 0 then return false end
  for i = 1, #live, size do
    if string.sub(live, i, i + size - 1) == hash then return true end
  end
  return false
end

-- 2. What the presented token is.
local outcome
if rotating then
  if is_live(presented) then
    redis.call('HSET', KEYS[1], 'l', successor, 'p', presented, 'pf', num(now), 'u', num(now))
    outcome = 'rotated'
  elseif previous == presented and leeway > 0 and now - previous_at <= leeway then
    local keep = (${MAX_LIVE_TOKENS} - 1) * #successor
    if #live > keep then live = string.sub(live, #live - keep + 1) end
    redis.call('HSET', KEYS[1], 'l', live .. successor, 'u', num(now))
    outcome = 'reissued'
  else
    forget(KEYS[1], KEYS[2], id, now)
    return 'reused'
  end
elseif is_live(presented) then
  redis.call('HSET', KEYS[1], 'u', num(now))
  outcome = 'kept'
else
  return 'invalid'
end

-- 3. The idle clock restarted: both keys expire at the new deadline.
keep_until(KEYS[1], KEYS[2], id, family_deadline(started, now, absolute, idle), now)
return outcome
`;

/**
 * SessionStore.revokeFamilyByToken.
 * KEYS: 1 family hash, 2 user's family index. ARGV: 1 now, 2 family id.
 * Returns 1 when a live family was deleted (one the index still names), else 0.
 */
export const REVOKE_FAMILY_LUA = `${SESSION_FUNCTIONS}
local listed = redis.call('ZSCORE', KEYS[2], ARGV[2])
local existed = forget(KEYS[1], KEYS[2], ARGV[2], tonumber(ARGV[1]))
if listed then return existed end
return 0
`;

/**
 * SessionStore.revokeUserFamilies, the batches — at most ARGV[2] family keys
 * named by a revoked index deleted per call (a short script: Redis serves
 * other clients between batches). Returns the number of entries left (0:
 * done; the revoked index is gone).
 */
const DROP_REVOKED_FUNCTION = `
local function drop_revoked(revoked_index, prefix, batch)
  local popped = redis.call('ZPOPMIN', revoked_index, batch)
  for i = 1, #popped, 2 do redis.call('DEL', prefix .. popped[i]) end
  return redis.call('ZCARD', revoked_index)
end
`;

/**
 * SessionStore.revokeUserFamilies, step 1 — every family of the user revoked
 * at once, in O(1) whatever their number: the index is renamed to a revoked
 * index of the same hash tag (its TTL goes with it), so an exchange of any of
 * those families finds its id missing from the index and answers 'invalid'.
 * A login afterwards starts a new index. The first batch of family keys is
 * deleted in the same script (a user with few sessions needs no other).
 * KEYS: 1 user's family index, 2 revoked index (unique per call, same hash tag).
 * ARGV: 1 now, 2 family key prefix (same hash tag), 3 batch size.
 * Returns {live families revoked (ZCOUNT: O(log n)), entries left}.
 */
export const REVOKE_USER_FAMILIES_LUA = `${DROP_REVOKED_FUNCTION}
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
local revoked = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
redis.call('RENAME', KEYS[1], KEYS[2])
return {revoked, drop_revoked(KEYS[2], ARGV[2], tonumber(ARGV[3]))}
`;

/**
 * SessionStore.revokeUserFamilies, the following steps: one more batch.
 * KEYS: 1 revoked index. ARGV: 1 family key prefix (same hash tag), 2 batch size.
 * Returns the number of entries left.
 */
export const DROP_REVOKED_FAMILIES_LUA = `${DROP_REVOKED_FUNCTION}
return drop_revoked(KEYS[1], ARGV[1], tonumber(ARGV[2]))
`;

/** Registered with ioredis `defineCommand` under these names (distinct from STORE_SCRIPTS). */
export const SESSION_SCRIPTS = {
  tsCreateFamily: { lua: CREATE_FAMILY_LUA, numberOfKeys: 2 },
  tsExchangeRefreshToken: { lua: EXCHANGE_LUA, numberOfKeys: 3 },
  tsRevokeFamily: { lua: REVOKE_FAMILY_LUA, numberOfKeys: 2 },
  tsRevokeUserFamilies: { lua: REVOKE_USER_FAMILIES_LUA, numberOfKeys: 2 },
  tsDropRevokedFamilies: { lua: DROP_REVOKED_FAMILIES_LUA, numberOfKeys: 1 },
} as const;

export type SessionScriptName = keyof typeof SESSION_SCRIPTS;
