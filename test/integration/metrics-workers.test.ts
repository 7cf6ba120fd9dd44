// WORKERS=2 (SPEC §6): the management listener lives in the primary and one
// scrape of /metrics answers the sum over both workers, so consecutive scrapes
// never go back and the count equals every request answered, whichever worker
// answered it. The primary deals new connections to the workers in turn, so
// with one worker sampled the count would be about half. The public port's
// /metrics (PUBLIC_METRICS=true) relays the same sum; /readyz is the workers'.

import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { h1Request } from "../support/http-clients.js";
import { fixtureEnv } from "../support/process-flows.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import { type ServiceProcess, startServiceProcess } from "../support/service-process.js";

const ROUTE = "/.well-known/jwks.json";

/** The answered-request count of ROUTE in a Prometheus text (summed over outcomes). */
function countOf(text: string): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith("token_service_request_duration_seconds_count{")) continue;
    if (!line.includes(`route="${ROUTE}"`) || !line.includes('surface="rest"')) continue;
    total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

async function scrape(url: string): Promise<string> {
  const response = await fetch(url, { headers: { connection: "close" } });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
  return response.text();
}

function signingKeys() {
  const jwk = (alg: string, key: ReturnType<typeof generateKeyPairSync>["privateKey"]) => ({
    ...key.export({ format: "jwk" }),
    kid: `${alg.toLowerCase()}-workers`,
    alg,
    use: "sig",
  });
  return {
    keys: [
      jwk("ES256", generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey),
      jwk("RS256", generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey),
    ],
  };
}

describe("metrics with WORKERS=2", () => {
  let redis: RedisServerHandle;
  let service: ServiceProcess;
  let dir: string;
  let metricsUrl: string;
  let primaryPid: number;

  before(async () => {
    redis = await startRedisServer();
    dir = await mkdtemp(join(tmpdir(), "token-service-workers-"));
    const keysFile = join(dir, "keys.json");
    await writeFile(keysFile, JSON.stringify(signingKeys()), { mode: 0o600 });
    service = await startServiceProcess(
      fixtureEnv({
        REDIS_URL: redis.url,
        SIGNING_KEYS_FILE: keysFile,
        WORKERS: "2",
        PUBLIC_METRICS: "true",
      }),
      { listeningLines: 2 },
    );
    const management = await service.waitForLine((line) => line.event === "management_listening");
    metricsUrl = `http://127.0.0.1:${management.managementPort}/metrics`;
    primaryPid = Number(management.pid);
  });
  after(async () => {
    await service?.stop();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("the primary serves the management listener; the workers do not", () => {
    const workers = service.lines().filter((line) => line.event === "listening");
    assert.equal(workers.length, 2);
    const pids = new Set(workers.map((line) => line.pid));
    assert.equal(pids.size, 2);
    assert.equal(pids.has(primaryPid), false);
    for (const worker of workers) assert.equal(worker.managementPort, undefined);
  });

  test("/healthz, and /readyz once every worker's store answers", async () => {
    const base = metricsUrl.replace(/\/metrics$/, "");
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: "ok" });
    let ready = await fetch(`${base}/readyz`);
    for (let i = 0; i < 50 && ready.status !== 200; i++) {
      await sleep(100);
      ready = await fetch(`${base}/readyz`);
    }
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: "ready" });
  });

  test("consecutive scrapes never decrease and end at the sum of both workers' answers", async () => {
    const start = countOf(await scrape(metricsUrl));
    let previous = start;
    let sent = 0;
    const seen: number[] = [];
    for (let round = 0; round < 5; round++) {
      // A new connection per request: the primary deals them to the workers in turn.
      for (let i = 0; i < 4; i++) {
        const answer = await h1Request(service.baseUrl, {
          method: "GET",
          path: ROUTE,
          headers: { connection: "close" },
        });
        assert.equal(answer.status, 200);
        sent += 1;
      }
      const now = countOf(await scrape(metricsUrl));
      seen.push(now);
      assert.ok(now >= previous, `scrapes went back: ${seen.join(", ")}`);
      assert.ok(now <= start + sent, `more than was sent: ${now} > ${start + sent}`);
      previous = now;
    }
    // Scrapes are rendered at most once a second: wait for the last requests to show.
    let final = previous;
    for (let i = 0; i < 40 && final !== start + sent; i++) {
      await sleep(250);
      final = countOf(await scrape(metricsUrl));
      assert.ok(final >= previous, `scrapes went back: ${[...seen, final].join(", ")}`);
      previous = final;
    }
    assert.equal(final, start + sent);

    // The public port relays the same sum (whichever worker takes the scrape).
    for (let i = 0; i < 4; i++) {
      const relayed = countOf(await scrape(`${service.baseUrl}/metrics`));
      assert.ok(relayed >= start + sent, `the public port saw ${relayed}`);
    }
  });
});
