// SPEC §6 "Availability under attack": the per-address cap and the
// process-wide cap close idle connections first (oldest first) and refuse a
// new connection only when none is idle, with a 503 carrying Retry-After.
// Real sockets from several loopback addresses (127.0.0.1 … 127.0.0.5) to an
// in-process service with MAX_CONNECTIONS=10, MAX_CONNECTIONS_PER_ADDRESS=4.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type RawSocket, rawSocket } from "../hardening/support/attacks.js";
import { connectH2Raw, postWithoutBody } from "../hardening/support/h2-raw.js";
import { timedRequest } from "../hardening/support/probe.js";
import { startTestService, type TestService } from "../support/test-service.js";

const text = (raw: RawSocket) => Buffer.concat(raw.received).toString("latin1");
const isOpen = (raw: RawSocket) => raw.closedAfterMs === undefined;

/** Waits until `check` holds (the server acts on its next turn), at most `ms`. */
async function eventually(check: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await sleep(10);
}

/** A connection that has sent nothing. */
const silent = (port: number, from: string) => rawSocket(port, from);

/** A connection whose request headers never end (busy: a request in progress). */
async function slowHeaders(port: number, from: string): Promise<RawSocket> {
  const raw = await rawSocket(port, from);
  raw.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  await sleep(20);
  return raw;
}

/** An HTTP/1.1 keep-alive connection whose first request was answered: idle. */
async function keepAlive(port: number, from: string): Promise<RawSocket> {
  const raw = await rawSocket(port, from);
  raw.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  await eventually(() => text(raw).includes('{"status":"ok"}'));
  return raw;
}

describe("connection limits", () => {
  let service: TestService;
  const open: Array<{ destroy(): void }> = [];
  const track = <T extends RawSocket>(raw: T): T => {
    open.push(raw.socket);
    return raw;
  };
  before(async () => {
    service = await startTestService({
      env: { MAX_CONNECTIONS: "10", MAX_CONNECTIONS_PER_ADDRESS: "4" },
    });
  });
  after(() => service.close());
  /** Each test starts with no connection open. */
  async function releaseAll(): Promise<void> {
    for (const handle of open.splice(0)) handle.destroy();
    await sleep(50);
  }

  test("per address: exactly 4 are allowed; a 5th closes that address's oldest idle one", async () => {
    const evicted = service.app.server.counts.evictedConnections;
    const first: RawSocket[] = [];
    for (let i = 0; i < 4; i++) first.push(track(await silent(service.port, "127.0.0.1")));
    const fifth = track(await silent(service.port, "127.0.0.1"));
    await eventually(() => !isOpen(first[0] as RawSocket));
    assert.deepEqual(first.map(isOpen), [false, true, true, true]);
    assert.ok(isOpen(fifth));
    assert.equal(text(first[0] as RawSocket), "");
    assert.equal(service.app.server.counts.evictedConnections - evicted, 1);
    await releaseAll();
  });

  test("per address: with none idle, a new one is refused with 503 and Retry-After; other addresses are served", async () => {
    const dropped = service.app.server.counts.droppedConnections;
    const busy: RawSocket[] = [];
    for (let i = 0; i < 4; i++) busy.push(track(await slowHeaders(service.port, "127.0.0.1")));
    const refused = track(await rawSocket(service.port, "127.0.0.1"));
    await eventually(() => !isOpen(refused));
    assert.match(text(refused), /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.match(text(refused), /\r\nRetry-After: 1\r\n/);
    assert.match(text(refused), /\r\nConnection: close\r\n/);
    assert.match(
      text(refused),
      /\r\n\r\n\{"error":"temporarily_unavailable","error_description":"Too many connections"\}$/,
    );
    assert.deepEqual(busy.map(isOpen), [true, true, true, true]);
    assert.equal(service.app.server.counts.droppedConnections - dropped, 1);
    const [status] = await timedRequest({ port: service.port, localAddress: "127.0.0.2" });
    assert.equal(status, 200);
    await releaseAll();
  });

  test("per address: an idle keep-alive is closed before an older one whose next request has begun", async () => {
    const started = track(await keepAlive(service.port, "127.0.0.1"));
    const idle = track(await keepAlive(service.port, "127.0.0.1"));
    // The older connection's next request has begun: it is no longer idle.
    started.socket.write("GET /heal");
    await sleep(50);
    const younger = [
      track(await slowHeaders(service.port, "127.0.0.1")),
      track(await slowHeaders(service.port, "127.0.0.1")),
    ];
    const fifth = track(await rawSocket(service.port, "127.0.0.1"));
    await eventually(() => !isOpen(idle));
    assert.equal(isOpen(idle), false);
    assert.equal(isOpen(started), true);
    assert.deepEqual(younger.map(isOpen), [true, true]);
    assert.ok(isOpen(fifth));
    // The request that had begun is still answered.
    started.socket.write("thz HTTP/1.1\r\nHost: x\r\n\r\n");
    await eventually(() => text(started).split('{"status":"ok"}').length === 3);
    assert.equal(text(started).split('{"status":"ok"}').length, 3);
    await releaseAll();
  });

  test("per address: an HTTP/2 session with an open stream is not idle; one without gets GOAWAY", async () => {
    const withStream = await connectH2Raw(service.port, "127.0.0.1", "127.0.0.1");
    withStream.start();
    withStream.write(withStream.headers(1, postWithoutBody()));
    await sleep(50);
    const idleSession = await connectH2Raw(service.port, "127.0.0.1", "127.0.0.1");
    idleSession.start();
    open.push(withStream, idleSession);
    await sleep(50);
    track(await slowHeaders(service.port, "127.0.0.1"));
    track(await slowHeaders(service.port, "127.0.0.1"));
    track(await rawSocket(service.port, "127.0.0.1"));
    await eventually(() => idleSession.stats.closedAfterMs !== undefined);
    assert.equal(idleSession.stats.goaway?.errorCode, 0);
    assert.notEqual(idleSession.stats.closedAfterMs, undefined);
    assert.equal(withStream.stats.closedAfterMs, undefined);
    assert.equal(withStream.stats.goaway, undefined);
    await releaseAll();
  });

  test("process-wide: at MAX_CONNECTIONS the oldest idle connection of any address makes room; refused only when none is idle", async () => {
    const busy: RawSocket[] = [];
    for (const from of ["127.0.0.1", "127.0.0.2"]) {
      for (let i = 0; i < 4; i++) busy.push(track(await slowHeaders(service.port, from)));
    }
    const idle = [
      track(await keepAlive(service.port, "127.0.0.3")),
      track(await keepAlive(service.port, "127.0.0.3")),
    ];
    // Ten open. A request from a fifth address is served: the oldest idle one goes.
    const [status] = await timedRequest({ port: service.port, localAddress: "127.0.0.4" });
    assert.equal(status, 200);
    assert.deepEqual(idle.map(isOpen), [false, true]);
    // Nine open after the answer; one more busy fills the cap, the next takes the last idle one.
    track(await slowHeaders(service.port, "127.0.0.5"));
    track(await slowHeaders(service.port, "127.0.0.5"));
    await eventually(() => !isOpen(idle[1] as RawSocket));
    assert.equal(isOpen(idle[1] as RawSocket), false);
    // Ten busy: now a new connection is refused.
    const refused = track(await rawSocket(service.port, "127.0.0.4"));
    await eventually(() => !isOpen(refused));
    assert.match(text(refused), /^HTTP\/1\.1 503 [\s\S]*\r\nRetry-After: 1\r\n/);
    assert.ok(busy.every(isOpen));
    await releaseAll();
  });

  test("the management listener is built by the same factory: the same per-address rule", async () => {
    const port = service.app.managementPort as number;
    const first: RawSocket[] = [];
    for (let i = 0; i < 4; i++) first.push(track(await silent(port, "127.0.0.1")));
    track(await silent(port, "127.0.0.1"));
    await eventually(() => !isOpen(first[0] as RawSocket));
    assert.deepEqual(first.map(isOpen), [false, true, true, true]);
    await releaseAll();
  });
});
