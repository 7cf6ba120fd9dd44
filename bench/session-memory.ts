/**
 * Redis memory per refresh-token session (docs/sessions.md "Storage"):
 * `MEMORY USAGE` of every key of one family, and `INFO memory` before and
 * after creating N sessions (default 100,000) through the use cases, each
 * exchanged once (the steady state: a live token and a previous one).
 *
 *   node --conditions=@token-service/source --import tsx bench/session-memory.ts [N]
 *
 * Starts its own redis-server (no persistence) and stops it at the end.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { exchangeRefreshToken } from "../src/oauth/sessions/exchange-refresh-token.js";
import { DEFAULT_REFRESH_TOKEN_SETTINGS } from "../src/oauth/sessions/refresh-token-settings.js";
import { createSessionDeps } from "../src/oauth/sessions/session-deps.js";
import { startSession } from "../src/oauth/sessions/start-session.js";
import { createRedisClient } from "../src/store/redis-client.js";
import { createRedisSessionStore } from "../src/store/redis-session-store.js";
import { sessionKeys } from "../src/store/session-keys.js";
import { startRedis } from "./processes.js";

const COUNT = Number(process.argv[2] ?? 100_000);
const BATCH = 500;
const CLIENT = {
  clientId: "web-app",
  authMethod: "client_secret_post" as const,
  grantTypes: ["refresh_token"],
  refreshToken: { ...DEFAULT_REFRESH_TOKEN_SETTINGS },
};
/** An Auth0-shaped user id: `auth0|` + 24 hex digits. */
const userIdOf = (index: number) => `auth0|${index.toString(16).padStart(24, "0")}`;

const usedMemory = async (raw: Redis): Promise<number> => {
  const info = await raw.info("memory");
  const match = /^used_memory:(\d+)/m.exec(info);
  if (!match?.[1]) throw new Error("no used_memory in INFO memory");
  return Number(match[1]);
};

const redis = await startRedis(undefined);
const client = createRedisClient(redis.url);
const raw = new Redis(redis.url);
try {
  const deps = createSessionDeps(randomBytes(32), createRedisSessionStore(client));
  const session = async (userId: string) => {
    const token = await startSession(deps, {
      client: CLIENT,
      userId,
      audience: "https://api.example.com/",
      scope: "openid profile email offline_access",
      amr: ["mfa", "otp"],
      nowMs: Date.now(),
    });
    if (token === undefined) throw new Error("no refresh token");
    const next = await exchangeRefreshToken(deps, {
      client: CLIENT,
      refreshToken: token,
      nowMs: Date.now(),
    });
    return { token, next: next.refreshToken ?? "" };
  };

  // One session, key by key.
  const probeUser = "auth0|0123456789abcdef01234567";
  const { next } = await session(probeUser);
  const keys = sessionKeys(probeUser);
  const [familyKey = ""] = await raw.keys(`${keys.familyPrefix}*`);
  const perKey = [
    { key: familyKey, bytes: (await raw.memory("USAGE", familyKey)) ?? 0 },
    { key: keys.index, bytes: (await raw.memory("USAGE", keys.index)) ?? 0 },
  ];
  const encodings = await Promise.all(
    [familyKey, keys.index].map((key) => raw.object("ENCODING", key)),
  );
  await raw.flushall();

  // N sessions, one user each.
  const before = await usedMemory(raw);
  const started = Date.now();
  for (let i = 0; i < COUNT; i += BATCH) {
    await Promise.all(
      Array.from({ length: Math.min(BATCH, COUNT - i) }, (_, j) => session(userIdOf(i + j))),
    );
  }
  const seconds = (Date.now() - started) / 1000;
  const after = await usedMemory(raw);
  const perSession = (after - before) / COUNT;

  console.log(`refresh token length: ${next.length} characters`);
  console.log("\n| key | MEMORY USAGE (bytes) | encoding |\n|---|---:|---|");
  for (const [i, { key, bytes }] of perKey.entries()) {
    console.log(`| \`${key}\` | ${bytes} | ${encodings[i]} |`);
  }
  console.log(`| total | ${perKey.reduce((sum, { bytes }) => sum + bytes, 0)} | |`);
  console.log(`\nINFO used_memory: ${before} → ${after} bytes for ${COUNT} sessions`);
  console.log(`per session: ${perSession.toFixed(0)} bytes`);
  console.log(`per million sessions: ${((perSession * 1e6) / 2 ** 20).toFixed(0)} MiB`);
  console.log(
    `keys: ${await raw.dbsize()}; ${(COUNT / seconds).toFixed(0)} sessions/s created+exchanged`,
  );
} finally {
  raw.disconnect();
  await client.quit();
  await redis.stop();
}
