// SPEC §7: a Redis error of any kind is row 12 — 503 `temporarily_unavailable`
// with Retry-After — never row 13. Each class is produced by a real
// redis-server: a paused server (command timeout), a replica (READONLY),
// maxmemory 1 (OOM), min-replicas-to-write (NOREPLICAS), a stopped server
// (connection lost), and on Redis Cluster a MOVED to a dead node.
// An outage is logged once, not once per request.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { userTag } from "../../src/store/redis-keys.js";
import { keySlot } from "../../src/store/redis-slots.js";
import { associateRest, issueMfaToken, uniqueUserId, verifyOtp } from "../support/flows.js";
import { assertOAuthError, type RestResult } from "../support/oauth-assertions.js";
import { type RedisClusterHandle, startRedisCluster } from "../support/redis-cluster.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import { startTestService, type TestService } from "../support/test-service.js";

/** Row 12 exactly: status, body, Cache-Control and Retry-After. */
function assertRow12(result: RestResult<unknown>): void {
  assertOAuthError(result, 503, "temporarily_unavailable", "Service temporarily unavailable");
  assert.equal(result.headers.get("retry-after"), "1");
}

/** A verify (begin-verify: a write script) and an associate (a write script), both row 12. */
async function assertWritesAnswer503(service: TestService, mfaToken: string): Promise<void> {
  assertRow12(await verifyOtp(service, mfaToken, "123456"));
  assertRow12(await associateRest(service, mfaToken));
}

describe("standalone Redis errors", () => {
  let redis: RedisServerHandle;
  let other: RedisServerHandle;
  let admin: Redis;
  let service: TestService;
  before(async () => {
    [redis, other] = await Promise.all([
      startRedisServer({ dedicated: true }),
      startRedisServer({ dedicated: true }),
    ]);
    admin = new Redis(redis.url);
    admin.on("error", () => {}); // the last test stops the server under it
    service = await startTestService({ store: "config", env: { REDIS_URL: redis.url } });
  });
  after(async () => {
    await service?.close();
    admin.disconnect();
    await Promise.all([redis.stop(), other.stop()]);
  });

  test("command timeout (CLIENT PAUSE WRITE outlasts the 2 s command timeout)", async () => {
    const mfaToken = await issueMfaToken(service, uniqueUserId("timeout"));
    await admin.client("PAUSE", 5000, "WRITE");
    try {
      assertRow12(await verifyOtp(service, mfaToken, "123456"));
    } finally {
      await admin.client("UNPAUSE");
    }
  });

  test("READONLY (the server became a replica)", async () => {
    const mfaToken = await issueMfaToken(service, uniqueUserId("readonly"));
    await admin.replicaof("127.0.0.1", other.port);
    try {
      await assertWritesAnswer503(service, mfaToken);
    } finally {
      await admin.replicaof("NO", "ONE");
    }
  });

  test("OOM (maxmemory 1 with noeviction)", async () => {
    const mfaToken = await issueMfaToken(service, uniqueUserId("oom"));
    await admin.config("SET", "maxmemory", "1");
    try {
      // Redis checks OOM at a script's first write; a script whose first
      // write is a DEL (associate) runs on, so only the verify is asked here.
      assertRow12(await verifyOtp(service, mfaToken, "123456"));
    } finally {
      await admin.config("SET", "maxmemory", "0");
    }
  });

  test("NOREPLICAS (min-replicas-to-write 1, no replica)", async () => {
    const mfaToken = await issueMfaToken(service, uniqueUserId("noreplicas"));
    await admin.config("SET", "min-replicas-to-write", "1");
    try {
      await assertWritesAnswer503(service, mfaToken);
    } finally {
      await admin.config("SET", "min-replicas-to-write", "0");
    }
  });

  test("served again once Redis is itself again; the recovery is one line", async () => {
    const mfaToken = await issueMfaToken(service, uniqueUserId("after-errors"));
    const result = await associateRest(service, mfaToken);
    assert.equal(result.status, 200, JSON.stringify(result.body));
    // Two pings: the outage ends at a ping with no failure since the previous one.
    assert.equal(await service.app.storeHealth.refresh(), true);
    assert.equal(await service.app.storeHealth.refresh(), true);
    const events = service.logs
      .map((line) => /"event":"(store_(?:un)?available)"/.exec(line)?.[1])
      .filter((event) => event !== undefined);
    // The errors above were one outage (the paused server), logged once each way.
    assert.deepEqual(events, ["store_unavailable", "store_available"]);
  });

  test("connection lost (server stopped): 503s, one outage line for all of them", async () => {
    const mfaToken = await issueMfaToken(service, uniqueUserId("lost"));
    const before = service.logs.length;
    await redis.stop();
    await assertWritesAnswer503(service, mfaToken);
    await assertWritesAnswer503(service, mfaToken);
    await service.app.storeHealth.refresh();
    const lines = service.logs.slice(before);
    const outages = lines.filter((line) => line.includes('"event":"store_unavailable"'));
    assert.equal(outages.length, 1, outages.join(""));
    assert.equal(lines.filter((line) => line.includes('"event":"request_failed"')).length, 0);
  });
});

describe("Redis Cluster: MOVED to a dead master", () => {
  let cluster: RedisClusterHandle;
  let service: TestService;
  before(async () => {
    cluster = await startRedisCluster({ dedicated: true });
    service = await startTestService({
      store: "config",
      env: { REDIS_CLUSTER_NODES: cluster.nodesEnv },
    });
  });
  after(async () => {
    await service?.close();
    await cluster?.stop();
  });

  test("a slot pointed at a stopped master answers 503, never 500", async () => {
    const userId = uniqueUserId("moved");
    const mfaToken = await issueMfaToken(service, userId);
    const slot = keySlot(userTag(userId));
    // No retry: SHUTDOWN's connection closes without a reply.
    const admins = cluster.nodes.map(
      (node) =>
        new Redis(node.port, node.host, { maxRetriesPerRequest: 0, retryStrategy: () => null }),
    );
    for (const admin of admins) admin.on("error", () => {});
    try {
      const [owner, dead] = await ownerAndAnother(admins, slot);
      const deadId = String(await dead.cluster("MYID"));
      await dead.shutdown("NOSAVE").catch(() => {});
      // The owner now answers MOVED <slot> <dead master> for the user's keys.
      await owner.cluster("SETSLOT", slot, "NODE", deadId);
      await assertWritesAnswer503(service, mfaToken);
    } finally {
      for (const admin of admins) admin.disconnect();
    }
  });
});

/** The node serving `slot` and another master. */
async function ownerAndAnother(admins: Redis[], slot: number): Promise<[Redis, Redis]> {
  for (const admin of admins) {
    const ranges = (await admin.cluster("SLOTS")) as unknown as [
      number,
      number,
      [string, number],
    ][];
    const own = `${admin.options.port}`;
    const owns = ranges.some(
      ([from, to, [, port]]) => slot >= from && slot <= to && String(port) === own,
    );
    if (owns) {
      const another = admins.find((a) => a !== admin);
      if (another === undefined) throw new Error("one node only");
      return [admin, another];
    }
  }
  throw new Error(`no node serves slot ${slot}`);
}
