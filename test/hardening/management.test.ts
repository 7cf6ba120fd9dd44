// Metrics floods against the service as a child process on Redis: 3 x 3,000
// pipelined GET /metrics on the management port, and on the public port with
// PUBLIC_METRICS=true, while /readyz and normal requests are probed.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fixtureEnv } from "../support/process-flows.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import { startServiceProcess } from "../support/service-process.js";
import { pipelinedGets } from "./support/attacks.js";
import { startProbe } from "./support/probe.js";

let redis: RedisServerHandle;
before(async () => {
  redis = await startRedisServer({ dedicated: true });
});
after(() => redis.stop());

for (const where of ["management", "public"] as const) {
  test(`3 x 3,000 pipelined GET /metrics on the ${where} port: readiness stays 200, requests stay fast`, async (t) => {
    const service = await startServiceProcess(
      fixtureEnv({ REDIS_URL: redis.url, PUBLIC_METRICS: where === "public" ? "true" : "false" }),
    );
    try {
      const target = where === "public" ? service.port : (service.managementPort as number);
      const normal = startProbe({
        port: service.port,
        path: "/oauth/token",
        method: "POST",
        body: "grant_type=x",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        expectStatus: 400,
      });
      const ready = startProbe({ port: service.port, path: "/readyz" });
      const floods = await Promise.all(
        [1, 2, 3].map(() => pipelinedGets(target, "/metrics", 3_000, 30_000)),
      );
      const [normalResult, readyResult] = await Promise.all([normal.stop(), ready.stop()]);
      t.diagnostic(
        `responses ${floods.map((f) => f.responses).join("/")} in ${floods.map((f) => f.elapsedMs).join("/")} ms; ` +
          `normal requests p50 ${normalResult.p50.toFixed(1)} ms, max ${normalResult.max.toFixed(1)} ms; ` +
          `readyz ${readyResult.latencies.length}/${readyResult.sent} ready, max ${readyResult.max.toFixed(1)} ms`,
      );
      assert.deepEqual(
        floods.map((f) => f.responses),
        [3_000, 3_000, 3_000],
      );
      assert.deepEqual(readyResult.failures, []);
      assert.deepEqual(normalResult.failures, []);
      assert.ok(normalResult.max < 1_000, `a normal request took ${normalResult.max} ms`);
      assert.ok(readyResult.max < 1_000, `readyz took ${readyResult.max} ms`);
    } finally {
      await service.stop();
    }
  });
}
