// SPEC §7 "Fail closed": a lost authenticator must never silently become an
// open enrollment. A master whose dataset marker is missing (restarted empty,
// flushed, evicted, restored from an older snapshot, replaced by an empty
// replica) refuses every write with row 12 until the operator runs
// `token-service redis accept-dataset` (docs/operations.md "Restoring Redis").
// Real redis-server processes; REDIS_DATASET_CHECK=on (the production default).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { runCli } from "../../src/cli/run-cli.js";
import { associateRest, issueMfaToken, uniqueUserId } from "../support/flows.js";
import { assertOAuthError, type RestResult } from "../support/oauth-assertions.js";
import { type RedisClusterHandle, startRedisCluster } from "../support/redis-cluster.js";
import { startReplicationPair, startSentinels } from "../support/redis-replication.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import { runMain } from "../support/run-process.js";
import {
  FIXTURE_CLIENTS_FILE,
  startTestService,
  TEST_INTERNAL_API_KEY,
  TEST_SECRETS_KEY,
  type TestService,
} from "../support/test-service.js";

function assertRow12(result: RestResult<unknown>): void {
  assertOAuthError(result, 503, "temporarily_unavailable", "Service temporarily unavailable");
  assert.equal(result.headers.get("retry-after"), "1");
}

/** `token-service <args>` in-process; resolves with its exit status and output. */
async function cli(args: string[], env: Record<string, string>) {
  let out = "";
  let err = "";
  const code = await runCli(args, {
    out: (text) => {
      out += text;
    },
    err: (text) => {
      err += text;
    },
    env,
  });
  return { code, out, err };
}

/** The 2-second check, now; then readiness reads it. */
async function checkNow(service: TestService): Promise<void> {
  await service.app.redisSafety?.refresh();
  await service.app.storeHealth.refresh();
}

async function assertEnrolls(service: TestService): Promise<void> {
  const result = await associateRest(service, await issueMfaToken(service, uniqueUserId()));
  assert.equal(result.status, 200, JSON.stringify(result.body));
}

async function assertRefused(service: TestService): Promise<void> {
  assertRow12(await associateRest(service, await issueMfaToken(service, uniqueUserId())));
  const readyz = await fetch(`${service.baseUrl}/readyz`);
  assert.equal(readyz.status, 503);
  assert.equal(readyz.headers.get("retry-after"), "1");
}

const missingLine = (node: string) =>
  `Redis ${node} holds no accepted token-service dataset (restarted empty, evicted, restored or failed over to a replica that missed writes?): writes are refused until an operator checks it and runs \`token-service redis accept-dataset\` (docs/operations.md "Restoring Redis")`;

describe("standalone Redis", () => {
  let redis: RedisServerHandle;
  let admin: Redis;
  let service: TestService | undefined;
  const env = () => ({
    PORT: "0",
    MANAGEMENT_PORT: "0",
    REDIS_URL: redis.url,
    SECRETS_KEY: TEST_SECRETS_KEY,
    CLIENTS_FILE: FIXTURE_CLIENTS_FILE,
    INTERNAL_API_KEY: TEST_INTERNAL_API_KEY,
    REDIS_DURABILITY_CHECK: "on",
    REDIS_DATASET_CHECK: "on",
  });
  before(async () => {
    redis = await startRedisServer({ args: ["--appendonly", "yes"] });
    admin = new Redis(redis.url);
  });
  after(async () => {
    await service?.close();
    admin.disconnect();
    await redis.stop();
  });

  test("no marker: the start is refused with one line naming the command", async () => {
    const result = await runMain(env());
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `token-service: start-up failed: ${missingLine(`127.0.0.1:${redis.port}`)}\n`,
    );
  });

  test("accept-dataset, then the service starts and writes", async () => {
    const accepted = await cli(["redis", "accept-dataset"], { REDIS_URL: redis.url });
    assert.deepEqual(accepted, {
      code: 0,
      out: "dataset accepted (1 marker key written): writes resume within seconds\n",
      err: "",
    });
    service = await startTestService({ store: "config", env: env() });
    await assertEnrolls(service);
  });

  test("the data is lost (FLUSHALL): writes refused, one line; accepted again: writes resume", async () => {
    assert.ok(service);
    await admin.flushall();
    await checkNow(service);
    await assertRefused(service);
    const refusals = service.logs.filter((line) => line.includes('"event":"redis_writes_refused"'));
    assert.equal(refusals.length, 1);
    assert.ok(refusals[0]?.includes(JSON.stringify(missingLine(`127.0.0.1:${redis.port}`))));

    await cli(["redis", "accept-dataset"], { REDIS_URL: redis.url });
    await checkNow(service);
    assert.equal((await fetch(`${service.baseUrl}/readyz`)).status, 200);
    await assertEnrolls(service);
  });

  test("hold-dataset stops writes on purpose until accept-dataset", async () => {
    assert.ok(service);
    const held = await cli(["redis", "hold-dataset"], { REDIS_URL: redis.url });
    assert.deepEqual(held, {
      code: 0,
      out: "dataset held: writes are refused until `token-service redis accept-dataset`\n",
      err: "",
    });
    await checkNow(service);
    await assertRefused(service);
    await cli(["redis", "accept-dataset"], { REDIS_URL: redis.url });
    await checkNow(service);
    await assertEnrolls(service);
  });
});

describe("Redis Cluster: one marker per slot, checked on every master", () => {
  let cluster: RedisClusterHandle;
  let service: TestService;
  before(async () => {
    cluster = await startRedisCluster({ dedicated: true });
    const accepted = await cli(["redis", "accept-dataset"], {
      REDIS_CLUSTER_NODES: cluster.nodesEnv,
    });
    assert.equal(
      accepted.out,
      "dataset accepted (16384 marker keys written): writes resume within seconds\n",
    );
    service = await startTestService({
      store: "config",
      // The test cluster runs without AOF: only the marker is checked here.
      env: { REDIS_CLUSTER_NODES: cluster.nodesEnv, REDIS_DATASET_CHECK: "on" },
    });
  });
  after(async () => {
    await service?.close();
    await cluster?.stop();
  });

  test("one master flushed: writes refused; accept-dataset: writes resume", async () => {
    await assertEnrolls(service);
    const [first] = cluster.nodes;
    assert.ok(first);
    const admin = new Redis(first.port, first.host);
    try {
      await admin.flushall();
    } finally {
      admin.disconnect();
    }
    await checkNow(service);
    await assertRefused(service);
    await cli(["redis", "accept-dataset"], { REDIS_CLUSTER_NODES: cluster.nodesEnv });
    await checkNow(service);
    assert.equal((await fetch(`${service.baseUrl}/readyz`)).status, 200);
    await assertEnrolls(service);
  });
});

describe("Redis Sentinel: the commands act on the master the Sentinels name", () => {
  test("hold-dataset, then accept-dataset, through REDIS_SENTINELS", async (t) => {
    const pair = await startReplicationPair({});
    t.after(() => pair.stop());
    const sentinels = await startSentinels(1, {
      name: "dataset-marker",
      master: { host: "127.0.0.1", port: pair.link.port },
      quorum: 1,
      downAfterMs: 5000,
      failoverTimeoutMs: 10_000,
      replicas: 1,
    });
    t.after(() => sentinels.stop());
    const env = { REDIS_SENTINELS: sentinels.env, REDIS_SENTINEL_NAME: "dataset-marker" };

    const accepted = await cli(["redis", "accept-dataset"], env);
    assert.deepEqual(
      [accepted.code, accepted.out, accepted.err],
      [0, "dataset accepted (1 marker key written): writes resume within seconds\n", ""],
    );
    assert.equal(await pair.master.command("EXISTS", "ts:dataset"), 1);

    const held = await cli(["redis", "hold-dataset"], env);
    assert.deepEqual(
      [held.code, held.out, held.err],
      [0, "dataset held: writes are refused until `token-service redis accept-dataset`\n", ""],
    );
    assert.equal(await pair.master.command("EXISTS", "ts:dataset"), 0);

    // Without the master group's name: the same one line as the service's refusal.
    const unnamed = await cli(["redis", "accept-dataset"], { REDIS_SENTINELS: sentinels.env });
    assert.equal(unnamed.code, 78);
    assert.match(
      unnamed.err,
      /^token-service: redis accept-dataset: REDIS_SENTINEL_NAME is required with REDIS_SENTINELS/,
    );
  });
});
