// A failover on a plain REDIS_URL deployment (SPEC §7 "Fail closed", "Replica
// acknowledgement"): a master and a replica whose link stalls, then the master dies and the
// replica is promoted with REPLICAOF NO ONE; the service reaches Redis through an address
// that moves to the promoted replica (a VIP or DNS name: here a relay the test re-points).
// Every answer of 200 before the failover must still hold after it.

import { describe, test } from "node:test";
import { assertFailoverInvariant, runFailoverScenario } from "../support/failover-scenario.js";
import { uniqueUserId } from "../support/flows.js";
import { startReplicationPair } from "../support/redis-replication.js";
import { startTcpRelay } from "../support/tcp-relay.js";
import { startTestService } from "../support/test-service.js";

// A healthy replica acknowledges on loopback in a few ms; 500 ms (not the default 200)
// keeps a busy test machine from turning a healthy write into a 503.
const ACK = { REDIS_ACK_TIMEOUT_MS: "500" };

describe("failover: a master and a replica behind REDIS_URL", () => {
  test("every 200 before the failover holds after it; stalled writes answer 503", async (t) => {
    const pair = await startReplicationPair();
    // The service's address for Redis: moved to the promoted replica after the failover.
    const address = await startTcpRelay(pair.master.port);
    t.after(async () => {
      await address.close();
      await pair.stop();
    });
    const service = await startTestService({
      store: "config",
      env: { ...ACK, REDIS_URL: `redis://127.0.0.1:${address.port}` },
    });
    t.after(() => service.close());

    const counts = await runFailoverScenario({
      service,
      newUserId: () => uniqueUserId("failover-standalone"),
      freezeReplication: () => pair.link.freezeReplication(),
      async failover() {
        await pair.killMaster();
        await pair.promoteReplica();
        address.retarget(pair.replica.port);
      },
      async attachReplica() {
        await pair.attachReplica(pair.replica.port);
      },
    });
    t.diagnostic(`failover figures ${JSON.stringify(counts)}`);
    assertFailoverInvariant(counts);
  });
});
