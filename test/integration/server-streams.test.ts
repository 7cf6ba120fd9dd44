// SPEC §6: long-lived server streams (grpc.health.v1.Health/Watch) end after
// WATCH_MAX_SECONDS and at most MAX_WATCH_STREAMS are open per process
// (beyond: ResourceExhausted); one address gets a tenth of the budget while
// addresses are counted. Real h2c streams from two loopback addresses.

import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startTestService, type TestService } from "../support/test-service.js";

interface Watch {
  /** The first status reported ("1" SERVING), or `grpc-status <n>` when refused first. */
  first: Promise<string>;
  /** The grpc-status the stream ended with. */
  ended: Promise<string>;
  cancel(): void;
}

function openWatch(port: number, localAddress = "127.0.0.1"): Watch {
  const session = http2.connect(`http://127.0.0.1:${port}`, {
    createConnection: () => net.connect({ port, host: "127.0.0.1", localAddress }),
  });
  session.on("error", () => {});
  const stream = session.request({
    ":method": "POST",
    ":path": "/grpc.health.v1.Health/Watch",
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.on("error", () => {});
  let status: string | undefined;
  const first = new Promise<string>((resolve) => {
    stream.once("data", (chunk: Buffer) => resolve(String(chunk[6])));
    stream.once("trailers", (trailers) => resolve(`grpc-status ${trailers["grpc-status"]}`));
    stream.once("response", (headers) => {
      if (headers["grpc-status"] !== undefined) {
        status = String(headers["grpc-status"]);
        resolve(`grpc-status ${status}`);
      }
    });
  });
  const ended = new Promise<string>((resolve) => {
    stream.once("trailers", (trailers) => {
      status = String(trailers["grpc-status"]);
    });
    stream.once("close", () => {
      session.close();
      resolve(status ?? "reset");
    });
  });
  stream.resume();
  stream.end(Buffer.alloc(5));
  return { first, ended, cancel: () => session.destroy() };
}

describe("Watch streams end after WATCH_MAX_SECONDS", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({ env: { WATCH_MAX_SECONDS: "1" } });
  });
  after(() => service.close());

  test("a Watch reports SERVING, then ends with status OK (the client re-opens it)", async () => {
    const watch = openWatch(service.port);
    assert.equal(await watch.first, "1");
    assert.equal(await watch.ended, "0");
    assert.equal(service.app.serverStreams.open(), 0);
    assert.ok(service.app.serverStreams.counts.ended >= 1);
  });
});

describe("MAX_WATCH_STREAMS", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({
      env: { MAX_WATCH_STREAMS: "3", MAX_CONNECTIONS_PER_ADDRESS: "0" },
    });
  });
  after(() => service.close());

  test("beyond the budget a Watch is ResourceExhausted; a slot given back is used again; Check is not counted", async () => {
    const held = [openWatch(service.port), openWatch(service.port), openWatch(service.port)];
    assert.deepEqual(await Promise.all(held.map((w) => w.first)), ["1", "1", "1"]);
    assert.equal(service.app.serverStreams.open(), 3);
    const refused = openWatch(service.port);
    assert.equal(await refused.first, "grpc-status 8");
    assert.equal(await refused.ended, "8");
    // A unary call is not a server stream.
    const check = await fetch(`${service.baseUrl}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    assert.deepEqual(await check.json(), { status: "SERVING" });
    // The client leaves: its slot comes back.
    held[0]?.cancel();
    for (let i = 0; i < 100 && service.app.serverStreams.open() > 2; i++) await sleep(10);
    assert.equal(service.app.serverStreams.open(), 2);
    const next = openWatch(service.port);
    assert.equal(await next.first, "1");
    for (const watch of [...held, next]) watch.cancel();
  });
});

describe("one address's share of the Watch budget", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({ env: { MAX_WATCH_STREAMS: "20" } });
  });
  after(() => service.close());

  test("an address gets a tenth (2 of 20); another address is still served", async () => {
    const mine = [openWatch(service.port), openWatch(service.port)];
    assert.deepEqual(await Promise.all(mine.map((w) => w.first)), ["1", "1"]);
    const third = openWatch(service.port);
    assert.equal(await third.first, "grpc-status 8");
    const other = openWatch(service.port, "127.0.0.2");
    assert.equal(await other.first, "1");
    for (const watch of [...mine, other]) watch.cancel();
  });
});
