// The Sentinel client never stays down by itself (src/store/redis-sentinel-client.ts):
// ioredis can end a Sentinel client for good when a failover announcement interrupts a
// reconnection; an ended client that the store did not close connects again, and one the
// store closed stays closed.

import assert from "node:assert/strict";
import { once } from "node:events";
import { describe, test } from "node:test";
import { createRedisSentinelClient } from "../../src/store/redis-sentinel-client.js";
import { spawnRedisServer, spawnSentinel, waitUntil } from "../support/redis-process.js";

describe("the Sentinel client", () => {
  test("an ended client connects again unless the store closed it", async (t) => {
    const master = await spawnRedisServer();
    t.after(() => master.kill());
    const sentinel = await spawnSentinel({
      name: "token-service-client",
      master: { host: "127.0.0.1", port: master.port },
      quorum: 1,
      downAfterMs: 5000,
      failoverTimeoutMs: 60_000,
    });
    t.after(() => sentinel.kill());
    const warnings: string[] = [];
    const client = createRedisSentinelClient(
      {
        sentinels: [{ host: "127.0.0.1", port: sentinel.port }],
        name: "token-service-client",
        tls: false,
        sentinelTls: false,
      },
      {
        onSentinelError: (err) => warnings.push(err.message),
        // Gives up at the first lost connection: stands in for the ioredis path that ends it.
        redis: { retryStrategy: () => null },
      },
    );
    t.after(() => client.disconnect());
    assert.equal(await client.ping(), "PONG");

    const ended = once(client, "end");
    await master.command("CLIENT", "KILL", "TYPE", "normal");
    await ended;
    await waitUntil("the client to be ready again", () => client.status === "ready");
    assert.equal(await client.ping(), "PONG");
    assert.deepEqual(warnings, ["the client had stopped reconnecting; connecting again"]);

    const closed = once(client, "end");
    await client.quit();
    await closed;
    // Nothing brings a client the store closed back: three times the restart delay later,
    // it is still ended (and the test process could not exit with a live connection).
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(client.status, "end");
  });
});
