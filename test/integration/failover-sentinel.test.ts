// A failover under Redis Sentinel (SPEC §7 "Sentinel", "Replica acknowledgement"): three
// Sentinels (quorum 2) watch a master and its replica, both behind passwords, as do the
// Sentinels; the replica's link stalls, the master dies and the Sentinels promote the
// replica by themselves. The service (REDIS_SENTINELS, REDIS_SENTINEL_NAME) must follow
// the new master without a restart, within 15 s, and every answer of 200 before the
// failover must still hold after it.

import { describe, test } from "node:test";
import { assertFailoverInvariant, runFailoverScenario } from "../support/failover-scenario.js";
import { uniqueUserId } from "../support/flows.js";
import { waitUntil } from "../support/redis-process.js";
import { startReplicationPair, startSentinels } from "../support/redis-replication.js";
import { startTestService } from "../support/test-service.js";

const NAME = "token-service-failover";
const REDIS_PASSWORD = "redis-password-for-the-failover-suite";
const SENTINEL_PASSWORD = "sentinel-password-for-the-failover-suite";

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
      downAfterMs: 1000,
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
        await waitUntil("every Sentinel to name the promoted replica", async () =>
          (await sentinels.masterPorts()).every((port) => port === pair.replica.port),
        );
      },
      async attachReplica() {
        await pair.attachReplica(pair.replica.port);
      },
    });
    t.diagnostic(`failover figures ${JSON.stringify(counts)}`);
    assertFailoverInvariant(counts);
  });
});
