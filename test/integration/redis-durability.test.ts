// SPEC §7 "Redis durability, checked": a master whose INFO does not show
// `maxmemory_policy:noeviction` and `aof_enabled:1` refuses the start with one
// line naming the setting; at run time it turns readiness 503 / NOT_SERVING
// and every write into row 12 (with Retry-After) until it complies again.
// Real redis-server processes; the tests run outside production, so the check
// is switched on with REDIS_DURABILITY_CHECK=on.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClient } from "@connectrpc/connect";
import { grpcHealthV1 } from "@token-service/client";
import { Redis } from "ioredis";
import {
  associateRest,
  issueMfaToken,
  transportFor,
  uniqueUserId,
  verifyOtp,
} from "../support/flows.js";
import { assertOAuthError } from "../support/oauth-assertions.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import { runMain } from "../support/run-process.js";
import {
  FIXTURE_CLIENTS_FILE,
  startTestService,
  TEST_INTERNAL_API_KEY,
  TEST_SECRETS_KEY,
  type TestService,
} from "../support/test-service.js";

const { Health, HealthCheckResponse_ServingStatus: ServingStatus } = grpcHealthV1;

/** A Redis as production must run it: AOF on, noeviction (the default policy). */
const DURABLE = ["--appendonly", "yes", "--maxmemory-policy", "noeviction"];

const serviceEnv = (redisUrl: string, extra: Record<string, string> = {}) => ({
  PORT: "0",
  MANAGEMENT_PORT: "0",
  REDIS_URL: redisUrl,
  SECRETS_KEY: TEST_SECRETS_KEY,
  CLIENTS_FILE: FIXTURE_CLIENTS_FILE,
  INTERNAL_API_KEY: TEST_INTERNAL_API_KEY,
  REDIS_DURABILITY_CHECK: "on",
  ...extra,
});

/** Row 12 exactly: status, body, Cache-Control and Retry-After. */
function assertRow12(result: { status: number; body: unknown; headers: Headers }): void {
  assertOAuthError(result, 503, "temporarily_unavailable", "Service temporarily unavailable");
  assert.equal(result.headers.get("retry-after"), "1");
}

describe("start-up refused: one line naming the setting", () => {
  let redis: RedisServerHandle;
  let admin: Redis;
  before(async () => {
    redis = await startRedisServer({ args: DURABLE });
    admin = new Redis(redis.url);
  });
  after(async () => {
    admin.disconnect();
    await redis.stop();
  });

  const policies = [
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
  ];
  for (const policy of policies) {
    test(`maxmemory-policy ${policy}`, async () => {
      await admin.config("SET", "maxmemory-policy", policy);
      const result = await runMain(serviceEnv(redis.url));
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `token-service: start-up failed: Redis 127.0.0.1:${redis.port} runs with maxmemory-policy ${policy}, which evicts authenticators and single-use markers under memory pressure: set maxmemory-policy noeviction (redis.conf, or CONFIG SET maxmemory-policy noeviction)\n`,
      );
    });
  }

  test("appendonly no", async () => {
    await admin.config("SET", "maxmemory-policy", "noeviction");
    await admin.config("SET", "appendonly", "no");
    try {
      const result = await runMain(serviceEnv(redis.url));
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `token-service: start-up failed: Redis 127.0.0.1:${redis.port} runs with appendonly no, so a restart loses every write since the last snapshot: set appendonly yes (redis.conf, or CONFIG SET appendonly yes; appendfsync everysec or always)\n`,
      );
    } finally {
      await admin.config("SET", "appendonly", "yes");
    }
  });

  test("INFO refused (as a hosted Redis may): the line names REDIS_DURABILITY_CHECK", async () => {
    // The service's user may run everything but INFO.
    await admin.acl("SETUSER", "service", "on", ">service-password", "~*", "&*", "+@all", "-info");
    const url = `redis://service:service-password@127.0.0.1:${redis.port}`;
    const result = await runMain(serviceEnv(url));
    assert.equal(result.code, 1);
    // ioredis itself warns on stderr that its ready check cannot run INFO.
    const ours = result.stderr
      .split(/(?<=\n)/)
      .filter((line) => !line.startsWith("Skipping the ready check"));
    assert.equal(
      ours.join(""),
      `token-service: start-up failed: Redis 127.0.0.1:${redis.port} does not report maxmemory_policy and aof_enabled in INFO (a hosted Redis may hide them): set REDIS_DURABILITY_CHECK=off only once you know it runs with maxmemory-policy noeviction and appendonly yes\n`,
    );
  });

  test("REDIS_DURABILITY_CHECK=off starts on any Redis, with a warning", async () => {
    await admin.config("SET", "maxmemory-policy", "allkeys-lru");
    try {
      const service = await startTestService({
        store: "config",
        env: serviceEnv(redis.url, { REDIS_DURABILITY_CHECK: "off" }),
      });
      try {
        const warnings = service.logs.filter((line) =>
          line.includes('"event":"redis_durability_check_off"'),
        );
        assert.equal(warnings.length, 1);
        assert.match(warnings[0] ?? "", /"level":40/);
        assert.equal((await fetch(`${service.baseUrl}/readyz`)).status, 200);
      } finally {
        await service.close();
      }
    } finally {
      await admin.config("SET", "maxmemory-policy", "noeviction");
    }
  });
});

describe("run time: a master stops complying, then complies again", () => {
  let redis: RedisServerHandle;
  let admin: Redis;
  let service: TestService;
  before(async () => {
    redis = await startRedisServer({ args: DURABLE });
    admin = new Redis(redis.url);
    service = await startTestService({ store: "config", env: serviceEnv(redis.url) });
  });
  after(async () => {
    await service?.close();
    admin.disconnect();
    await redis.stop();
  });

  /** What the 30-second check would find, now; then readiness reads it. */
  async function checkNow(): Promise<void> {
    await service.app.redisSafety?.refresh();
    await service.app.storeHealth.refresh();
  }

  test("allkeys-lru at run time → 503 everywhere that writes → noeviction → served again", async () => {
    const userId = uniqueUserId("durability");
    const mfaToken = await issueMfaToken(service, userId);
    assert.equal((await fetch(`${service.baseUrl}/readyz`)).status, 200);

    await admin.config("SET", "maxmemory-policy", "allkeys-lru");
    await checkNow();

    const readyz = await fetch(`${service.baseUrl}/readyz`);
    assert.equal(readyz.status, 503);
    assert.equal(readyz.headers.get("retry-after"), "1");
    const health = createClient(Health, transportFor(service.baseUrl, "grpc"));
    assert.equal((await health.check({})).status, ServingStatus.NOT_SERVING);
    assertRow12(await associateRest(service, mfaToken));
    assertRow12(await verifyOtp(service, mfaToken, "123456"));
    const refusals = service.logs.filter((line) => line.includes('"event":"redis_writes_refused"'));
    assert.equal(refusals.length, 1);

    await admin.config("SET", "maxmemory-policy", "noeviction");
    await checkNow();
    assert.equal((await fetch(`${service.baseUrl}/readyz`)).status, 200);
    assert.equal((await health.check({})).status, ServingStatus.SERVING);
    // Nothing was written while refused: the same mfa_token enrolls now.
    const enrolled = await associateRest(service, mfaToken);
    assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
  });
});
