/**
 * What revoking every session of one user with 100,000 families costs
 * (SessionStore.revokeUserFamilies), on a real redis-server and a real
 * PostgreSQL server: the whole call, and the longest single step — on Redis
 * the longest script (SLOWLOG, µs as Redis measured it), during which Redis
 * serves nobody else; on PostgreSQL the first statement (the revocation
 * itself; the batches that follow hold only this user's lock). On Redis the
 * old single-script revocation (every family deleted by one script) is
 * measured beside it for comparison.
 *
 *   node --conditions=@token-service/source --import tsx bench/revoke-all-cost.ts [families]
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { createPostgresStores } from "../src/store/postgres-stores.js";
import { createRedisSessionStore } from "../src/store/redis-session-store.js";
import { sessionKeys } from "../src/store/session-keys.js";
import { startPostgresServer, withClient } from "../test/support/postgres-server.js";
import { startRedisServer } from "../test/support/redis-server.js";

const FAMILIES = Number(process.argv[2] ?? 100_000);
const DAY = 86_400_000;

/** The families of one user, written straight into Redis (as createFamily leaves them). */
async function loadRedis(client: Redis, userId: string, now: number): Promise<void> {
  const keys = sessionKeys(userId);
  for (let start = 0; start < FAMILIES; start += 5_000) {
    const pipeline = client.pipeline();
    for (let i = start; i < Math.min(FAMILIES, start + 5_000); i++) {
      const id = `f${i}`;
      pipeline.hset(keys.family(id), "l", "h".repeat(43), "s", now, "u", now);
      pipeline.pexpire(keys.family(id), 30 * DAY);
      pipeline.zadd(keys.index, now + 30 * DAY, id);
    }
    await pipeline.exec();
  }
  await client.pexpire(keys.index, 30 * DAY);
}

/** The revocation as it was before: one script deleting every family. */
const OLD_REVOKE_ALL = `
local revoked = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  revoked = revoked + redis.call('DEL', ARGV[1] .. id)
end
redis.call('DEL', KEYS[1])
return revoked
`;

async function longestScriptUs(client: Redis): Promise<number> {
  const entries = (await client.call("SLOWLOG", "GET", "100000")) as [
    number,
    number,
    number,
    string[],
  ][];
  return Math.max(
    0,
    ...entries.filter(([, , , command]) => /^eval/i.test(command[0] ?? "")).map(([, , us]) => us),
  );
}

async function redisFigures(): Promise<void> {
  const server = await startRedisServer({ dedicated: true });
  const client = new Redis(server.url);
  try {
    await client.config("SET", "slowlog-log-slower-than", "0");
    await client.config("SET", "slowlog-max-len", "100000");
    const sessions = createRedisSessionStore(client);
    const now = Date.now();

    const user = `bench|${randomUUID()}`;
    await loadRedis(client, user, now);
    await client.slowlog("RESET");
    let started = process.hrtime.bigint();
    const revoked = await sessions.revokeUserFamilies(user, now);
    const totalMs = Number(process.hrtime.bigint() - started) / 1e6;
    const longest = await longestScriptUs(client);
    const left = await client.dbsize();

    const old = `bench|${randomUUID()}`;
    await loadRedis(client, old, now);
    await client.slowlog("RESET");
    const keys = sessionKeys(old);
    started = process.hrtime.bigint();
    await client.eval(OLD_REVOKE_ALL, 1, keys.index, keys.familyPrefix);
    const oldMs = Number(process.hrtime.bigint() - started) / 1e6;
    const oldLongest = await longestScriptUs(client);

    console.log(
      `redis: ${revoked} families revoked in ${totalMs.toFixed(0)} ms in all; longest script ${(longest / 1000).toFixed(2)} ms; keys left ${left}`,
    );
    console.log(
      `redis, one script for all (before): ${oldMs.toFixed(0)} ms in all; that script ${(oldLongest / 1000).toFixed(2)} ms`,
    );
  } finally {
    client.disconnect();
    await server.stop();
  }
}

async function postgresFigures(): Promise<void> {
  const server = await startPostgresServer();
  try {
    const url = await server.freshDatabase();
    const user = `bench|${randomUUID()}`;
    const now = Date.now();
    await withClient(url, (client) =>
      client.query(
        `INSERT INTO refresh_token_families
           (user_id, family_id, live, started_at, last_used_at, expires_at)
         SELECT $1, 'f' || i, ARRAY[repeat('h', 43)], $2::bigint, $2::bigint, $2::bigint + $3::bigint
         FROM generate_series(1, $4::integer) AS i`,
        [user, now, 30 * DAY, FAMILIES],
      ),
    );
    await withClient(url, (client) => client.query("ANALYZE refresh_token_families"));
    const first = await withClient(url, async (client) => {
      const started = process.hrtime.bigint();
      const { rows } = await client.query("SELECT * FROM ts_revoke_user_families($1, $2, 500)", [
        user,
        now,
      ]);
      return { ms: Number(process.hrtime.bigint() - started) / 1e6, row: rows[0] };
    });
    const stores = createPostgresStores(
      { url, poolSize: 2, statementTimeoutMs: 2000, connectTimeoutMs: 2000 },
      { clock: { nowMs: () => now }, sweeper: false },
    );
    const started = process.hrtime.bigint();
    await stores.sessions.revokeUserFamilies(user, now);
    const restMs = Number(process.hrtime.bigint() - started) / 1e6;
    const left = await withClient(url, async (client) => {
      const { rows } = await client.query<{ n: string }>(
        "SELECT count(*) AS n FROM refresh_token_families WHERE user_id = $1",
        [user],
      );
      return rows[0]?.n;
    });
    await stores.store.close();
    console.log(
      `postgres: ${first.row.revoked} families revoked by one statement of ${first.ms.toFixed(0)} ms; the remaining rows deleted in batches of 500 in ${restMs.toFixed(0)} ms in all; rows left ${left}`,
    );
  } finally {
    await server.stop();
  }
}

await redisFigures();
await postgresFigures();
