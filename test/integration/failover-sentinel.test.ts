// A failover under Redis Sentinel (SPEC §7 "Sentinel", "Replica acknowledgement"): three
// Sentinels (quorum 2) watch a master and its replica, both behind passwords, as do the
// Sentinels; the replica's link stalls, the master dies and the Sentinels promote the
// replica by themselves. The service (REDIS_SENTINELS, REDIS_SENTINEL_NAME) must follow
// the new master without a restart, within 15 s, and every answer of 200 before the
// failover must still hold after it.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { userKeys } from "../../src/store/redis-keys.js";
import { assertFailoverInvariant, runFailoverScenario } from "../support/failover-scenario.js";
import {
  enrolledUser,
  freshCode,
  issueMfaToken,
  otpGrantParams,
  postTokenForm,
  uniqueUserId,
} from "../support/flows.js";
import { waitUntil } from "../support/redis-process.js";
import { startReplicationPair, startSentinels } from "../support/redis-replication.js";
import { startTestService } from "../support/test-service.js";

const NAME = "token-service-failover";
// Small enough for a quick failover, large enough that a busy test machine (a master slow to
// answer a PING through the relay) does not make the Sentinels fail over in the healthy phase.
const DOWN_AFTER_MS = 2000;
const REDIS_PASSWORD = "redis-password-for-the-failover-suite";
const SENTINEL_PASSWORD = "sentinel-password-for-the-failover-suite";

// A healthy replica acknowledges on loopback in a few ms; 500 ms (not the default 200)
// keeps a busy test machine from turning a healthy write into a 503.
const ACK = { REDIS_ACK_TIMEOUT_MS: "500" };

describe("failover: Redis Sentinel promotes the replica", () => {
  test("every 200 before the failover holds after it; stalled writes answer 503", async (t) => {
    const pair = await startReplicationPair({ password: REDIS_PASSWORD });
    t.after(() => pair.stop());
    // The Sentinels reach the master where its replica does (the relay), so
    // they never "fix" the replica's configuration behind the test's back.
    const sentinels = await startSentinels(3, {
      name: NAME,
      master: { host: "127.0.0.1", port: pair.link.port },
      quorum: 2,
      masterPassword: REDIS_PASSWORD,
      password: SENTINEL_PASSWORD,
      downAfterMs: DOWN_AFTER_MS,
      failoverTimeoutMs: 5000,
      replicas: 1,
    });
    t.after(() => sentinels.stop());
    const service = await startTestService({
      store: "config",
      env: {
        REDIS_SENTINELS: sentinels.env,
        REDIS_SENTINEL_NAME: NAME,
        REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
        REDIS_PASSWORD,
        ...ACK,
      },
    });
    t.after(() => service.close());

    const counts = await runFailoverScenario({
      service,
      newUserId: () => uniqueUserId("failover-sentinel"),
      freezeReplication: () => pair.link.freezeReplication(),
      async failover() {
        await pair.killMaster();
        // No REPLICAOF here: the Sentinels notice and promote on their own.
        // 30 s: should the Sentinels' first election split, they retry after
        // twice the failover-timeout.
        await waitUntil(
          "every Sentinel to name the promoted replica",
          async () => (await sentinels.masterPorts()).every((port) => port === pair.replica.port),
          30_000,
        );
      },
      async attachReplica() {
        await pair.attachReplica(pair.replica.port);
      },
    });
    t.diagnostic(`failover figures ${JSON.stringify(counts)}`);
    assertFailoverInvariant(counts);
  });

  test("a switch-over with the old master still up is followed: writes go to the new one", async (t) => {
    const pair = await startReplicationPair({ password: REDIS_PASSWORD });
    t.after(() => pair.stop());
    const sentinels = await startSentinels(3, {
      name: NAME,
      master: { host: "127.0.0.1", port: pair.link.port },
      quorum: 2,
      masterPassword: REDIS_PASSWORD,
      password: SENTINEL_PASSWORD,
      downAfterMs: DOWN_AFTER_MS,
      failoverTimeoutMs: 5000,
      replicas: 1,
    });
    t.after(() => sentinels.stop());
    const service = await startTestService({
      store: "config",
      env: {
        REDIS_SENTINELS: sentinels.env,
        REDIS_SENTINEL_NAME: NAME,
        REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
        REDIS_PASSWORD,
        ...ACK,
      },
    });
    t.after(() => service.close());
    const { userId, secret } = await enrolledUser(service);
    const before = otpGrantParams(await issueMfaToken(service, userId), freshCode(service, secret));
    const beforeAt = service.clock.nowMs();
    assert.equal((await postTokenForm(service, before)).status, 200);

    // The Sentinels promote the replica and turn the old master, still
    // running, into its replica: the service's connection to it now leads
    // to a server that refuses writes (READONLY), or is closed by Sentinel.
    await sentinels.processes[0]?.command("SENTINEL", "FAILOVER", NAME);
    await waitUntil("every Sentinel to name the promoted replica", async () =>
      (await sentinels.masterPorts()).every((port) => port === pair.replica.port),
    );
    // Sentinel turns the old master into a replica only when it next reads
    // its INFO (up to 10 s); a fresh replica lets the new master acknowledge
    // writes sooner. Until then the old master is still a master, without
    // replicas: a write there could not be acknowledged either.
    await pair.attachReplica(pair.replica.port);
    const statuses: number[] = [];
    await waitUntil("a login on the new master", async () => {
      const { status } = await postTokenForm(
        service,
        otpGrantParams(await issueMfaToken(service, userId), freshCode(service, secret)),
      );
      statuses.push(status);
      return status === 200;
    });
    assert.deepEqual(
      statuses.filter((status) => status !== 200 && status !== 503),
      [],
      "nothing but 200 or 503 while the service follows",
    );
    // The last login's time step is recorded on the new master.
    const lastStep = String(Math.floor(service.clock.nowMs() / 30_000));
    const otpKey = userKeys(userId).otp;
    assert.equal(await pair.replica.command("HGET", otpKey, "last_step"), lastStep);
    // The login before the switch-over still holds on the new master.
    const resumeAt = service.clock.nowMs();
    service.clock.set(beforeAt);
    assert.equal((await postTokenForm(service, before)).status, 400);
    service.clock.set(resumeAt);
    t.diagnostic(`switch-over followed after ${statuses.length} attempt(s): ${statuses.join(",")}`);
  });
});
