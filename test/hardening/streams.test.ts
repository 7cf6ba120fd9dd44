// HTTP/2 stream attacks against the service as a child process: thousands of
// streams per connection that never send their body, and held streams left to
// the request timeout. Memory from /proc/<pid>/status; a probe sends normal
// requests throughout.

import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fixtureEnv } from "../support/process-flows.js";
import { startServiceProcess } from "../support/service-process.js";
import { floodStreamsWithoutBodies } from "./support/attacks.js";
import { startProbe } from "./support/probe.js";

/** A normal REST request: answered 400 unsupported_grant_type without touching the store. */
const normalRequest = (port: number) => ({
  port,
  path: "/oauth/token",
  method: "POST",
  body: "grant_type=x",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  expectStatus: 400,
  intervalMs: 100,
});

const mib = (n: number) => `${n.toFixed(0)} MiB`;

test("10 connections x 10,000 streams without bodies: refused beyond the limit, memory bounded and returned", async (t) => {
  const service = await startServiceProcess(fixtureEnv());
  try {
    await sleep(1_000);
    const base = service.rssMiB();
    const probe = startProbe(normalRequest(service.port));
    const { result, release } = await floodStreamsWithoutBodies(service.port, 10, 10_000, 3_000);
    const during = service.rssMiB();
    const probed = await probe.stop();
    await release();
    await sleep(5_000);
    const afterRss = service.rssMiB();
    const peak = service.peakRssMiB();
    t.diagnostic(
      `written ${result.written}, refused ${result.refused}, other resets ${JSON.stringify(result.otherResets)}, ` +
        `held ${result.held}, connections closed ${result.connectionsClosed}/10; RSS base ${mib(base)}, ` +
        `during ${mib(during)}, peak ${mib(peak)}, 5 s after ${mib(afterRss)}; normal requests ` +
        `${probed.latencies.length}/${probed.sent} ok, p50 ${probed.p50.toFixed(1)} ms, max ${probed.max.toFixed(1)} ms`,
    );
    assert.ok(service.alive());
    // Each connection may hold at most HTTP2_MAX_CONCURRENT_STREAMS (100) streams; a client
    // that opens more has broken the advertised limit and loses its connection.
    assert.ok(result.held <= 1_000, `held ${result.held}`);
    assert.equal(result.connectionsClosed, 10);
    assert.ok(peak - base < 200, `peak ${mib(peak)} over a base of ${mib(base)}`);
    assert.ok(afterRss - base < 100, `after ${mib(afterRss)} over a base of ${mib(base)}`);
    assert.deepEqual(probed.failures, []);
    assert.ok(probed.max < 2_000, `a normal request took ${probed.max} ms`);
  } finally {
    await service.stop();
  }
});

test("held streams within the limits (10 x 100) get 408 at the request timeout and release their memory", async (t) => {
  // One address may hold only a tenth of the process's incomplete requests
  // (500); this measures the timeout, so that share is off.
  const service = await startServiceProcess(fixtureEnv({ MAX_CONNECTIONS_PER_ADDRESS: "0" }));
  try {
    await sleep(1_000);
    const base = service.rssMiB();
    const probe = startProbe(normalRequest(service.port));
    const started = Date.now();
    const { result: early, release: releaseEarly } = await floodStreamsWithoutBodies(
      service.port,
      10,
      100,
      2_000,
    );
    await releaseEarly();
    const { result, release } = await floodStreamsWithoutBodies(service.port, 10, 100, 12_500);
    const elapsed = Date.now() - started;
    const probed = await probe.stop();
    await release();
    await sleep(3_000);
    const afterRss = service.rssMiB();
    const peak = service.peakRssMiB();
    t.diagnostic(
      `held after 2 s ${early.held}; after 12.5 s: answered (408) ${result.answered}, held ${result.held}; ` +
        `RSS base ${mib(base)}, peak ${mib(peak)}, after ${mib(afterRss)}; normal requests ` +
        `p50 ${probed.p50.toFixed(1)} ms, max ${probed.max.toFixed(1)} ms (${elapsed} ms attack)`,
    );
    assert.equal(early.held, 1_000, "every stream is held before the timeout");
    assert.equal(result.answered, 1_000);
    assert.equal(result.held, 0);
    assert.ok(afterRss - base < 60, `after ${mib(afterRss)} over a base of ${mib(base)}`);
    assert.deepEqual(probed.failures, []);
    assert.ok(probed.max < 2_000, `a normal request took ${probed.max} ms`);
  } finally {
    await service.stop();
  }
});

test("under a 256 MiB heap, 10 x 10,000 streams without bodies do not kill the process", async (t) => {
  const service = await startServiceProcess(fixtureEnv(), {
    nodeFlags: ["--max-old-space-size=256"],
  });
  try {
    const probe = startProbe(normalRequest(service.port));
    const { result, release } = await floodStreamsWithoutBodies(service.port, 10, 10_000, 2_000);
    await release();
    const probed = await probe.stop();
    t.diagnostic(
      `alive ${service.alive()}, held ${result.held}, peak ${mib(service.peakRssMiB())}, ` +
        `normal requests ${probed.latencies.length}/${probed.sent} ok`,
    );
    assert.ok(service.alive(), "the process survived");
    assert.deepEqual(probed.failures, []);
  } finally {
    await service.stop();
  }
});

test("200 connections x 100 streams within the per-connection limits: the process-wide cap (5,000) holds", async (t) => {
  // The process-wide cap alone (from one address, the per-address limits would refuse first).
  const service = await startServiceProcess(fixtureEnv({ MAX_CONNECTIONS_PER_ADDRESS: "0" }));
  try {
    await sleep(1_000);
    const base = service.rssMiB();
    const probe = startProbe(normalRequest(service.port));
    const { result, release } = await floodStreamsWithoutBodies(service.port, 200, 100, 3_000);
    const peak = service.peakRssMiB();
    const probed = await probe.stop();
    await release();
    await sleep(5_000);
    const afterRss = service.rssMiB();
    t.diagnostic(
      `written ${result.written}, held ${result.held}, refused ${result.refused}; RSS base ${mib(base)}, ` +
        `peak ${mib(peak)}, 5 s after ${mib(afterRss)}; normal requests p50 ${probed.p50.toFixed(1)} ms, ` +
        `max ${probed.max.toFixed(1)} ms`,
    );
    assert.equal(result.held, 5_000);
    assert.equal(result.refused, 15_000);
    assert.ok(peak - base < 300, `peak ${mib(peak)} over a base of ${mib(base)}`);
    assert.deepEqual(probed.failures, []);
    assert.ok(probed.max < 2_000, `a normal request took ${probed.max} ms`);
  } finally {
    await service.stop();
  }
});
