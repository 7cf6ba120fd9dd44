// A failover on Redis Cluster with replicas (SPEC §7 "Replica acknowledgement"): 3 masters
// with a replica each; the replication link of the master that holds the test user's slot
// stalls, that master dies and the cluster promotes its replica by itself. The service
// (REDIS_CLUSTER_NODES) must follow the new slot owner, answer 503 — never 500 — meanwhile,
// and every answer of 200 before the failover must still hold after it.

import { describe, test } from "node:test";
import { userKeys } from "../../src/store/redis-keys.js";
import { assertFailoverInvariant, runFailoverScenario } from "../support/failover-scenario.js";
import { uniqueUserId } from "../support/flows.js";
import { startRedisClusterWithReplicas } from "../support/redis-cluster.js";
import { infoField, waitUntil } from "../support/redis-process.js";
import { startTestService } from "../support/test-service.js";

// A healthy replica acknowledges on loopback in a few ms; 500 ms (not the default 200)
// keeps a busy test machine from turning a healthy write into a 503.
const ACK = { REDIS_ACK_TIMEOUT_MS: "500" };

describe("failover: Redis Cluster promotes a replica", () => {
  test("every 200 before the failover holds after it; stalled writes answer 503", async (t) => {
    const cluster = await startRedisClusterWithReplicas();
    t.after(() => cluster.stop());
    const victim = cluster.masters[0];
    if (!victim) throw new Error("no master");
    const replica = cluster.replicaOf(victim);
    // Users whose keys (one hash tag per user) live on the master that will die.
    const users: string[] = [];
    while (users.length < 3) {
      const userId = uniqueUserId("failover-cluster");
      if ((await cluster.masterOf(userKeys(userId).otp)).id === victim.id) users.push(userId);
    }
    const service = await startTestService({
      store: "config",
      env: { ...ACK, REDIS_CLUSTER_NODES: cluster.nodesEnv },
    });
    t.after(() => service.close());

    const counts = await runFailoverScenario({
      service,
      newUserId: () => {
        const userId = users.shift();
        if (userId === undefined) throw new Error("no user left on the failing master");
        return userId;
      },
      freezeReplication: () => victim.relay?.freezeReplication(),
      async failover() {
        await victim.kill();
        // No command here: the other masters vote and the replica takes over.
        await waitUntil(
          "the replica to be promoted by the cluster",
          async () =>
            (await infoField(replica.port, undefined, "replication", "role")) === "master",
        );
      },
      async attachReplica() {
        await cluster.attachReplica(replica.id);
      },
    });
    t.diagnostic(`failover figures ${JSON.stringify(counts)}`);
    assertFailoverInvariant(counts);
  });
});
