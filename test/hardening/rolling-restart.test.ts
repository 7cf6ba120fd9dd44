// SPEC §6 "Stopping", as a rolling deploy sees it: 8 clients send requests
// back to back on pooled keep-alive connections through a "load balancer"
// that polls /readyz every 200 ms and, 500 ms after it first sees 503, sends
// new requests to the other instance. The old instance gets SIGTERM
// mid-traffic (SHUTDOWN_DELAY_SECONDS=3). Asserted: no request fails (no
// reset, no refused connection), the first /readyz after the `draining` line
// is 503, the old instance logs `stopped` and exits 0. Also with WORKERS=2 on
// Redis (the primary passes the signal on).

import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { generateSigningJwk } from "../../src/cli/keys-generate.js";
import { fixtureEnv } from "../support/process-flows.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import { type ServiceProcess, startServiceProcess } from "../support/service-process.js";
import { percentile } from "./support/probe.js";

const CLIENTS = 8;

function post(port: number, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: "/oauth/token",
        method: "POST",
        agent,
        headers: { "content-type": "application/x-www-form-urlencoded" },
        timeout: 5_000,
      },
      (res) => {
        res.resume();
        res.once("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.once("timeout", () => req.destroy(new Error("timeout")));
    req.once("error", reject);
    req.end("grant_type=x");
  });
}

function readyz(port: number): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/readyz", agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once("error", (error: Error & { code?: string }) => resolve(error.code ?? error.message));
  });
}

const dir = mkdtempSync(join(tmpdir(), "rolling-"));
let redis: RedisServerHandle | undefined;
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await redis?.stop();
});

async function envFor(workers: number): Promise<Record<string, string>> {
  const env: Record<string, string> = { SHUTDOWN_DELAY_SECONDS: "3" };
  if (workers === 1) return fixtureEnv(env);
  redis ??= await startRedisServer({ dedicated: true });
  const keysFile = join(dir, "keys.json");
  const keys = [await generateSigningJwk("ES256", "es"), await generateSigningJwk("RS256", "rs")];
  writeFileSync(keysFile, JSON.stringify({ keys }));
  return fixtureEnv({
    ...env,
    REDIS_URL: redis.url,
    SIGNING_KEYS_FILE: keysFile,
    WORKERS: String(workers),
  });
}

for (const workers of [1, 2]) {
  test(`rolling restart, WORKERS=${workers}: ${CLIENTS} keep-alive clients, 0 failed requests, readiness 503 at once, exit 0`, async (t) => {
    const env = await envFor(workers);
    const old: ServiceProcess = await startServiceProcess(env, { listeningLines: workers });
    const next: ServiceProcess = await startServiceProcess(env, { listeningLines: workers });
    const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
    let target = old.port;
    let running = true;
    const outcomes: Record<string, number> = {};
    const latencies: number[] = [];
    const onOld = { sent: 0, answered: 0 };
    try {
      const clients = Array.from({ length: CLIENTS }, async () => {
        while (running) {
          const port = target;
          const started = performance.now();
          if (port === old.port) onOld.sent++;
          let outcome: string;
          try {
            outcome = String(await post(port, agent));
            latencies.push(performance.now() - started);
            if (port === old.port) onOld.answered++;
          } catch (error) {
            outcome = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
          }
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        }
      });
      // The load balancer: polls readiness, drains the old instance 500 ms after a 503.
      const balancer = (async () => {
        while (running && target === old.port) {
          const status = await readyz(old.port);
          if (status !== 200) {
            await sleep(500);
            target = next.port;
            return;
          }
          await sleep(200);
        }
      })();

      await sleep(1_000);
      const exited = once(old.child, "exit");
      const signalled = performance.now();
      old.child.kill("SIGTERM");
      await old.waitForLine((line) => line.event === "draining");
      const firstReadyz = await readyz(old.port);
      const readyzAfterMs = performance.now() - signalled;
      await balancer;
      const switchedAfterMs = performance.now() - signalled;
      const [exitCode] = await exited;
      const exitedAfterMs = performance.now() - signalled;
      await sleep(500);
      running = false;
      await Promise.all(clients);
      const sorted = [...latencies].sort((a, b) => a - b);
      t.diagnostic(
        `outcomes ${JSON.stringify(outcomes)}; on the old instance ${onOld.answered}/${onOld.sent} answered; ` +
          `first /readyz after SIGTERM: ${firstReadyz} at ${readyzAfterMs.toFixed(0)} ms; ` +
          `switched at ${switchedAfterMs.toFixed(0)} ms; exit ${exitCode} at ${exitedAfterMs.toFixed(0)} ms; ` +
          `latency p50 ${percentile(sorted, 0.5).toFixed(1)} ms, p95 ${percentile(sorted, 0.95).toFixed(1)} ms`,
      );
      assert.deepEqual(Object.keys(outcomes), ["400"]);
      assert.equal(firstReadyz, 503);
      assert.equal(exitCode, 0);
      const stopped = old.lines().filter((line) => line.event === "stopped");
      assert.equal(stopped.length, 1);
      assert.equal(
        old.lines().filter((line) => line.event === "worker_stopped").length,
        workers > 1 ? workers : 0,
      );
    } finally {
      running = false;
      agent.destroy();
      await Promise.all([old.stop(), next.stop()]);
    }
  });
}
