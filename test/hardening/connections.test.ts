// Connection-level attacks against the service as a child process: idle HTTP/2
// sessions, unfinished header blocks, slow HTTP/1.1 headers and bodies, and more
// connections than MAX_CONNECTIONS. These measure the timeouts and the
// process-wide cap on their own, so the per-address cap is off here
// (MAX_CONNECTIONS_PER_ADDRESS=0; fairness.test.ts has it on, as by default).
const TIMEOUTS_ALONE = { MAX_CONNECTIONS_PER_ADDRESS: "0" };

import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fixtureEnv } from "../support/process-flows.js";
import { startServiceProcess } from "../support/service-process.js";
import {
  halfSentH2Headers,
  idleH2Sessions,
  openTcpConnections,
  slowH1Requests,
} from "./support/attacks.js";
import { startProbe, timedRequest } from "./support/probe.js";

const mib = (n: number) => `${n.toFixed(0)} MiB`;

test("500 idle h2c sessions and 200 unfinished header blocks are closed after the idle timeout (5 s)", async (t) => {
  const service = await startServiceProcess(
    fixtureEnv({ ...TIMEOUTS_ALONE, HTTP_IDLE_TIMEOUT_SECONDS: "5" }),
  );
  try {
    const probe = startProbe({ port: service.port, path: "/healthz" });
    const [idle, half] = await Promise.all([
      idleH2Sessions(service.port, 500, 15_000),
      halfSentH2Headers(service.port, 200, 15_000),
    ]);
    idle.release();
    half.release();
    const probed = await probe.stop();
    t.diagnostic(
      `idle: ${idle.closed}/${idle.opened} closed, slowest ${idle.slowestCloseMs} ms; ` +
        `half-sent headers: ${half.closed}/${half.opened} closed, slowest ${half.slowestCloseMs} ms; ` +
        `peak ${mib(service.peakRssMiB())}; normal requests max ${probed.max.toFixed(1)} ms`,
    );
    assert.equal(idle.closed, 500);
    assert.equal(half.closed, 200);
    assert.ok(idle.slowestCloseMs < 9_000, `idle closed after ${idle.slowestCloseMs} ms`);
    assert.ok(half.slowestCloseMs < 9_000, `half-sent closed after ${half.slowestCloseMs} ms`);
    assert.deepEqual(probed.failures, []);
    assert.ok(probed.max < 2_000, `a normal request took ${probed.max} ms`);
  } finally {
    await service.stop();
  }
});

test("300 slow HTTP/1.1 requests (half headers, half bodies) get 408 at 10 s", async (t) => {
  const service = await startServiceProcess(fixtureEnv(TIMEOUTS_ALONE));
  try {
    const probe = startProbe({ port: service.port, path: "/healthz" });
    const [headers, bodies] = await Promise.all([
      slowH1Requests(service.port, 150, 16_000, "headers"),
      slowH1Requests(service.port, 150, 16_000, "body"),
    ]);
    headers.release();
    bodies.release();
    const probed = await probe.stop();
    t.diagnostic(
      `headers: ${headers.closed}/150 closed, slowest ${headers.slowestCloseMs} ms; ` +
        `bodies: ${bodies.closed}/150 closed, slowest ${bodies.slowestCloseMs} ms; ` +
        `normal requests max ${probed.max.toFixed(1)} ms`,
    );
    for (const result of [headers, bodies]) {
      assert.equal(result.closed, 150);
      assert.deepEqual(new Set(result.statuses), new Set(["408"]));
      assert.ok(result.slowestCloseMs < 14_000, `closed after ${result.slowestCloseMs} ms`);
    }
    assert.deepEqual(probed.failures, []);
  } finally {
    await service.stop();
  }
});

test("MAX_CONNECTIONS=200: 400 silent connections, 200 closed to make room, the rest timed out; clients served throughout", async (t) => {
  const service = await startServiceProcess(
    fixtureEnv({ ...TIMEOUTS_ALONE, MAX_CONNECTIONS: "200" }),
  );
  try {
    const started = Date.now();
    const { sockets, release } = await openTcpConnections(service.port, 400);
    await sleep(1_000);
    const closedAtOnce = sockets.filter((s) => s.closedAfterMs !== undefined).length;
    // At the cap a silent connection (idle) makes room: a client is served at once.
    const [during, duringMs] = await timedRequest({ port: service.port, path: "/healthz" });
    // The rest send nothing: closed when the headers timeout (10 s) runs out.
    await Promise.race([Promise.all(sockets.map((s) => s.closed)), sleep(15_000)]);
    const allClosedAfter = Date.now() - started;
    const open = sockets.filter((s) => s.closedAfterMs === undefined).length;
    const [status, ms] = await timedRequest({ port: service.port, path: "/healthz" });
    release();
    t.diagnostic(
      `closed to make room ${closedAtOnce}/400 (a request meanwhile: ${during} in ${duringMs.toFixed(1)} ms); ` +
        `all closed after ${allClosedAfter} ms (still open ${open}); ` +
        `then a normal request ${status} in ${ms.toFixed(1)} ms; peak ${mib(service.peakRssMiB())}`,
    );
    assert.ok(closedAtOnce >= 200, `${closedAtOnce} closed`);
    assert.equal(sockets.filter((s) => Buffer.concat(s.received).length > 0).length, 0);
    assert.equal(during, 200);
    assert.equal(open, 0);
    assert.equal(status, 200);
  } finally {
    await service.stop();
  }
});
