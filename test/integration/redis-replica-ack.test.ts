// SPEC §7 "Replica acknowledgement": every write that consumes something
// single-use or changes an authenticator is followed by WAIT on its master;
// unless REDIS_MIN_REPLICAS_ACK replicas acknowledged (default 1 when the
// master had a replica at start-up), nothing is issued and the answer is
// row 12. Real processes: a master and a replica whose link the test breaks
// (the replica SIGSTOPped: it sends no REPLCONF ACK) and then removes.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import {
  associateRest,
  codeAt,
  enrolledUser,
  freshCode,
  issueMfaToken,
  uniqueUserId,
  verifyOtp,
} from "../support/flows.js";
import { assertOAuthError, type RestResult } from "../support/oauth-assertions.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import { startTestService, type TestService } from "../support/test-service.js";

function assertRow12(result: RestResult<unknown>): void {
  assertOAuthError(result, 503, "temporarily_unavailable", "Service temporarily unavailable");
  assert.equal(result.headers.get("retry-after"), "1");
}

/** Polls the master's INFO until it reports `count` replicas in sync (not a timed assertion). */
async function waitForReplicas(admin: Redis, count: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const info = await admin.info("replication");
    const online = (info.match(/^slave\d+:.*state=online/gm) ?? []).length;
    if (online === count && info.includes(`connected_slaves:${count}`)) return;
    if (Date.now() > deadline) throw new Error(`master never reported ${count} replicas`);
    await sleep(50);
  }
}

describe("a master with one replica", () => {
  let master: RedisServerHandle;
  let replica: RedisServerHandle;
  let admin: Redis;
  let service: TestService;
  before(async () => {
    master = await startRedisServer({ args: [] });
    replica = await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(master.port)] });
    admin = new Redis(master.url);
    await waitForReplicas(admin, 1);
    service = await startTestService({
      store: "config",
      // A loaded test machine can hold a healthy replica's acknowledgement
      // past the default 200 ms; the broken link still fails every write.
      env: { REDIS_URL: master.url, REDIS_ACK_TIMEOUT_MS: "1000" },
    });
  });
  after(async () => {
    await service?.close();
    admin?.disconnect();
    try {
      if (replica?.pid !== undefined) process.kill(replica.pid, "SIGCONT");
    } catch {
      // Already stopped by the last test.
    }
    await Promise.all([master?.stop(), replica?.stop()]);
  });

  test("REDIS_MIN_REPLICAS_ACK defaults to 1: the master had a replica at start-up", () => {
    const fixed = service.logs.filter((line) =>
      line.includes('"event":"redis_replica_acknowledgement"'),
    );
    assert.equal(fixed.length, 1);
    assert.match(fixed[0] ?? "", /"minReplicasAck":1/);
  });

  test("replica healthy: enrollment and a verify with the right code answer 200", async () => {
    const { userId, secret } = await enrolledUser(service);
    const mfaToken = await issueMfaToken(service, userId);
    const result = await verifyOtp(service, mfaToken, codeAt(service, secret));
    assert.equal(result.status, 200, JSON.stringify(result.body));
  });

  test("scripts flushed on a live connection: each resent write is confirmed by one more WAIT", async () => {
    const { userId, secret } = await enrolledUser(service);
    const mfaToken = await issueMfaToken(service, userId);
    const waits = async () =>
      Number(/^cmdstat_wait:calls=(\d+)/m.exec(await admin.info("commandstats"))?.[1] ?? 0);
    const before = await waits();
    // A verify's success is two writes, each followed by one WAIT.
    const ok = await verifyOtp(service, mfaToken, freshCode(service, secret));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal((await waits()) - before, 2);

    await admin.script("FLUSH");
    const again = await issueMfaToken(service, userId);
    const middle = await waits();
    const result = await verifyOtp(service, again, freshCode(service, secret));
    assert.equal(result.status, 200, JSON.stringify(result.body));
    // Both scripts answered NOSCRIPT and were resent after their WAIT: one more each.
    assert.equal((await waits()) - middle, 4);
  });

  test("replication link broken: the right code answers 503 and issues nothing; healed: 200", async () => {
    const { userId, secret } = await enrolledUser(service);
    const mfaToken = await issueMfaToken(service, userId);
    const pid = replica.pid;
    assert.ok(pid !== undefined);
    process.kill(pid, "SIGSTOP");
    try {
      const refused = await verifyOtp(service, mfaToken, codeAt(service, secret));
      assertRow12(refused);
      assert.equal("access_token" in (refused.body as object), false);
      // Enrollment too: a pending authenticator nobody can confirm is not created.
      assertRow12(await associateRest(service, await issueMfaToken(service, uniqueUserId())));
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await waitForReplicas(admin, 1);
    const again = await issueMfaToken(service, userId);
    // What the refused verify wrote on the master stays (the step may be
    // spent): the client starts again with a fresh code (docs/operations.md).
    const result = await verifyOtp(service, again, freshCode(service, secret));
    assert.equal(result.status, 200, JSON.stringify(result.body));
  });

  test("replica gone (after a failover, say): writes answer 503 until one re-attaches", async () => {
    const { userId, secret } = await enrolledUser(service);
    await replica.stop();
    await waitForReplicas(admin, 0);
    await service.app.redisSafety?.refresh();
    const mfaToken = await issueMfaToken(service, userId);
    assertRow12(await verifyOtp(service, mfaToken, codeAt(service, secret)));
  });
});
