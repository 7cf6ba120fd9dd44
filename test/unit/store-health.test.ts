// The background store health state that readiness reads (no sockets).

import assert from "node:assert/strict";
import { test } from "node:test";
import { createStoreHealth } from "../../src/observability/store-health.js";

test("not ready before the first ping; ready after a ping that answers", async () => {
  const health = createStoreHealth({ ping: async () => {} }, { intervalMs: 60_000 });
  assert.equal(health.ready, false);
  await health.start();
  assert.equal(health.ready, true);
  health.stop();
  assert.equal(health.ready, false, "stopped (shutdown) is never ready");
});

test("a failing or too slow ping turns it unready; listeners hear each change once", async () => {
  let mode: "ok" | "fail" | "hang" = "ok";
  const health = createStoreHealth(
    {
      ping: () =>
        mode === "ok"
          ? Promise.resolve()
          : mode === "fail"
            ? Promise.reject(new Error("down"))
            : new Promise<void>(() => {}),
    },
    { intervalMs: 60_000, timeoutMs: 50 },
  );
  const changes: boolean[] = [];
  health.onChange((ready) => changes.push(ready));
  await health.start();
  mode = "fail";
  assert.equal(await health.refresh(), false);
  assert.equal(await health.refresh(), false);
  mode = "ok";
  assert.equal(await health.refresh(), true);
  mode = "hang";
  assert.equal(await health.refresh(), false);
  assert.deepEqual(changes, [true, false, true, false]);
  health.stop();
});

test("concurrent refreshes share one ping", async () => {
  let pings = 0;
  const health = createStoreHealth({
    ping: async () => {
      pings += 1;
    },
  });
  await Promise.all([health.refresh(), health.refresh(), health.refresh()]);
  assert.equal(pings, 1);
  health.stop();
});
