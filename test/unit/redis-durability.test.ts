// What a master's INFO must show (SPEC §7 "Redis durability, checked"), and
// the one line that names the setting and the fix.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  connectedReplicas,
  durabilityProblem,
  parseInfo,
} from "../../src/store/redis-durability.js";

const info = (fields: string) => parseInfo(`# Memory\r\n${fields}\r\n\r\n# Persistence\r\n`);

test("noeviction and AOF on: no problem; replicas counted", () => {
  const fields = info("maxmemory_policy:noeviction\r\naof_enabled:1\r\nconnected_slaves:2");
  assert.equal(durabilityProblem("10.0.0.5:6379", fields), undefined);
  assert.equal(connectedReplicas(fields), 2);
  assert.equal(connectedReplicas(info("role:master")), 0);
});

test("each evicting policy and appendonly no is named with its fix", () => {
  for (const policy of ["allkeys-lru", "volatile-ttl"]) {
    assert.equal(
      durabilityProblem("h:1", info(`maxmemory_policy:${policy}\r\naof_enabled:1`)),
      `Redis h:1 runs with maxmemory-policy ${policy}, which evicts authenticators and single-use markers under memory pressure: set maxmemory-policy noeviction (redis.conf, or CONFIG SET maxmemory-policy noeviction)`,
    );
  }
  assert.match(
    durabilityProblem("h:1", info("maxmemory_policy:noeviction\r\naof_enabled:0")) ?? "",
    /runs with appendonly no, .*set appendonly yes/,
  );
});

test("hidden fields name REDIS_DURABILITY_CHECK", () => {
  assert.match(
    durabilityProblem("h:1", info("aof_enabled:1")) ?? "",
    /does not report maxmemory_policy and aof_enabled in INFO .*REDIS_DURABILITY_CHECK=off/,
  );
  assert.match(durabilityProblem("h:1", parseInfo("")) ?? "", /REDIS_DURABILITY_CHECK/);
});
