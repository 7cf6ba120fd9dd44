// Issue 18 / SPEC §6–7: one store budget per request (STORE_DEADLINE_MS). A
// paused Redis (CLIENT PAUSE WRITE, shorter than the 2 s command timeout) makes
// a verify answer row 12 once the request's budget is spent, while the pause is
// still in force — not when the paused command finally runs.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { issueMfaToken, uniqueUserId, verifyOtp } from "../support/flows.js";
import { assertOAuthError } from "../support/oauth-assertions.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import { startTestService, type TestService } from "../support/test-service.js";

describe("the per-request store deadline (Redis)", () => {
  let redis: RedisServerHandle;
  let admin: Redis;
  let probe: Redis;
  let service: TestService;
  before(async () => {
    redis = await startRedisServer({ dedicated: true });
    admin = new Redis(redis.url);
    probe = new Redis(redis.url);
    service = await startTestService({
      store: "config",
      env: { REDIS_URL: redis.url, STORE_DEADLINE_MS: "200" },
    });
  });
  after(async () => {
    await service?.close();
    admin.disconnect();
    probe.disconnect();
    await redis.stop();
  });

  test("a paused store: 503 row 12 with Retry-After before the pause ends; then served again", async () => {
    const mfaToken = await issueMfaToken(service, uniqueUserId("deadline"));
    // 1.5 s: shorter than the client's 2 s command timeout, so only the
    // request's 200 ms budget can end the request while the pause lasts.
    await admin.client("PAUSE", 1500, "WRITE");
    let pauseOver = false;
    // A write from another client runs only once the pause is over.
    const pauseEnds = probe.set("deadline-probe", "1").then(() => {
      pauseOver = true;
    });
    const answer = await verifyOtp(service, mfaToken, "123456");
    assert.equal(pauseOver, false, "the answer came before the pause ended");
    assertOAuthError(answer, 503, "temporarily_unavailable", "Service temporarily unavailable");
    assert.equal(answer.headers.get("retry-after"), "1");
    await pauseEnds;
    // The store works again: the same wrong code is now judged (row 9), not refused.
    const judged = await verifyOtp(
      service,
      await issueMfaToken(service, uniqueUserId("after")),
      "123456",
    );
    assert.equal(judged.status, 400);
  });
});
