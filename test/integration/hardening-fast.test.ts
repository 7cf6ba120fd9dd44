// The fast subset of the hardening suite (npm run test:hardening has the long
// attacks): HTTP/2 and HTTP/1.1 limits with timeouts of one second, the
// connection cap, the management listener, the 413 race, and the parsing rules
// on every surface. Real sockets on loopback, in-process services.

import assert from "node:assert/strict";
import http2 from "node:http2";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { grpcHealthV1 } from "@token-service/client";
import { createMemoryStore } from "../../src/store/memory-store.js";
import type { Store } from "../../src/store/store.js";
import {
  halfSentH2Headers,
  idleH2Sessions,
  openTcpConnections,
  pipelinedGets,
  slowH1Requests,
} from "../hardening/support/attacks.js";
import {
  connectH2Raw,
  ErrorCode,
  openStreams,
  postWithoutBody,
} from "../hardening/support/h2-raw.js";
import { timedRequest } from "../hardening/support/probe.js";
import { transportFor } from "../support/flows.js";
import { h1Request, h2cRequest, jsonOf, type RawResponse } from "../support/http-clients.js";
import { OVERSIZED_FORM_ANSWER, postOversizedForm } from "../support/oversized-form.js";
import { CLIENTS, startTestService, type TestService } from "../support/test-service.js";

const ONE_SECOND_LIMITS = {
  HTTP_REQUEST_TIMEOUT_SECONDS: "1",
  HTTP_HEADERS_TIMEOUT_SECONDS: "1",
  HTTP_IDLE_TIMEOUT_SECONDS: "1",
  HTTP2_MAX_CONCURRENT_STREAMS: "20",
  HTTP2_MAX_STREAMS_AWAITING_BODY: "5",
};

/** A memory store whose ping fails while `healthy` is false. */
function flakyStore(): Store & { healthy: boolean } {
  const store = createMemoryStore();
  const flaky = Object.assign(Object.create(store) as Store, { healthy: true });
  flaky.ping = async () => {
    if (!flaky.healthy) throw new Error("store down");
  };
  return flaky;
}

describe("HTTP/2 limits", () => {
  let service: TestService;
  let store: Store & { healthy: boolean };
  before(async () => {
    store = flakyStore();
    service = await startTestService({ env: ONE_SECOND_LIMITS, storeOverride: store });
  });
  after(() => service.close());

  test("SETTINGS_MAX_CONCURRENT_STREAMS is advertised", async () => {
    const session = http2.connect(service.baseUrl);
    try {
      await new Promise((resolve) => session.once("remoteSettings", resolve));
      assert.equal(session.remoteSettings.maxConcurrentStreams, 20);
    } finally {
      session.close();
    }
  });

  test("streams awaiting their body beyond the cap are refused; the held ones get 408 after the request timeout", async () => {
    const connection = await connectH2Raw(service.port);
    connection.start();
    const started = Date.now();
    await openStreams(connection, 15, postWithoutBody());
    await sleep(300);
    const { stats } = connection;
    // Streams 6..15 refused at once (RFC 9113 §8.7: not processed, safe to retry).
    assert.equal(stats.resets.get(ErrorCode.REFUSED_STREAM), 10);
    assert.equal(stats.answered.size, 0);
    for (let i = 5; i < 15; i++) assert.ok(stats.reset.has(2 * i + 1), `stream ${2 * i + 1}`);
    // The first five: 408, then RST_STREAM NO_ERROR, within the timeout plus a sweep.
    while (stats.answered.size < 5 && Date.now() - started < 5_000) await sleep(50);
    const elapsed = Date.now() - started;
    assert.deepEqual(
      [...stats.answered].sort((a, b) => a - b),
      [1, 3, 5, 7, 9],
    );
    assert.ok(elapsed >= 900 && elapsed < 3_000, `408 after ${elapsed} ms`);
    await sleep(100);
    assert.equal(stats.resets.get(ErrorCode.NO_ERROR), 5);
    assert.equal(stats.closedAfterMs, undefined, "the session itself lives on");
    connection.destroy();
  });

  test("the 408 is a real answer to a client that never sends its body", async () => {
    const session = http2.connect(service.baseUrl);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": "/oauth/token",
        "content-type": "application/x-www-form-urlencoded",
      });
      stream.write("grant_type=");
      const [headers] = (await Promise.race([
        new Promise((resolve) => stream.once("response", (h) => resolve([h]))),
        sleep(5_000).then(() => [{}]),
      ])) as [http2.IncomingHttpHeaders];
      assert.equal(headers[":status"], 408);
      stream.destroy();
    } finally {
      session.destroy();
    }
  });

  test("a client exceeding the advertised concurrent streams loses its session", async () => {
    const connection = await connectH2Raw(service.port);
    connection.start();
    await sleep(50);
    await openStreams(connection, 30, postWithoutBody());
    await Promise.race([connection.closed, sleep(3_000)]);
    assert.ok(connection.stats.goaway !== undefined, "GOAWAY sent");
    assert.ok(connection.stats.closedAfterMs !== undefined, "connection closed");
    // The service still answers everyone else.
    const res = await h2cRequest(service.baseUrl, { method: "GET", path: "/healthz" });
    assert.equal(res.status, 200);
  });

  test("idle sessions and unfinished header blocks are closed after the idle timeout", async () => {
    const [idle, half] = await Promise.all([
      idleH2Sessions(service.port, 20, 5_000),
      halfSentH2Headers(service.port, 20, 5_000),
    ]);
    idle.release();
    half.release();
    assert.equal(idle.closed, 20);
    assert.equal(half.closed, 20);
    assert.ok(idle.slowestCloseMs < 3_000, `idle closed after ${idle.slowestCloseMs} ms`);
    assert.ok(half.slowestCloseMs < 3_000, `half-sent closed after ${half.slowestCloseMs} ms`);
  });

  test("a Watch stream (request complete) outlives the request and idle timeouts", async () => {
    store.healthy = true;
    await service.app.storeHealth.refresh();
    const health = createClient(grpcHealthV1.Health, transportFor(service.baseUrl, "grpc"));
    const abort = new AbortController();
    const seen: number[] = [];
    const started = Date.now();
    try {
      for await (const response of health.watch({}, { signal: abort.signal })) {
        seen.push(response.status);
        if (seen.length === 1) {
          // Three seconds: past both one-second timeouts, then a change must still arrive.
          await sleep(3_000);
          store.healthy = false;
          await service.app.storeHealth.refresh();
        }
        if (seen.length === 2) break;
      }
    } finally {
      abort.abort();
      store.healthy = true;
      await service.app.storeHealth.refresh();
    }
    const { SERVING, NOT_SERVING } = grpcHealthV1.HealthCheckResponse_ServingStatus;
    assert.deepEqual(seen, [SERVING, NOT_SERVING]);
    assert.ok(Date.now() - started >= 3_000);
  });
});

describe("HTTP/2: incomplete requests in the whole process, and legitimate bursts", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({
      // The process-wide cap alone: every connection here comes from one
      // address, whose share (connection-limits.test.ts) is tested apart.
      env: {
        ...ONE_SECOND_LIMITS,
        HTTP2_MAX_STREAMS_AWAITING_BODY_TOTAL: "8",
        MAX_CONNECTIONS_PER_ADDRESS: "0",
      },
    });
  });
  after(() => service.close());

  test("HTTP2_MAX_STREAMS_AWAITING_BODY_TOTAL bounds held streams across sessions", async () => {
    const connections = [await connectH2Raw(service.port), await connectH2Raw(service.port)];
    for (const connection of connections) connection.start();
    await sleep(50);
    await openStreams(connections[0] as (typeof connections)[0], 5, postWithoutBody());
    await sleep(100);
    await openStreams(connections[1] as (typeof connections)[0], 5, postWithoutBody());
    await sleep(200);
    assert.equal(service.app.server.counts.refused, 2);
    assert.equal(connections[1]?.stats.resets.get(ErrorCode.REFUSED_STREAM), 2);
    // The held ones time out and the process-wide count returns to zero.
    await sleep(2_000);
    assert.equal(
      connections.reduce((n, c) => n + c.stats.answered.size, 0),
      8,
    );
    for (const connection of connections) connection.destroy();
    await sleep(100);
    assert.equal(service.app.server.awaitingBody(), 0);
  });

  test("a burst of 100 concurrent calls on one session (all HEADERS before the bodies) is served", async () => {
    const fresh = await startTestService();
    const session = http2.connect(fresh.baseUrl);
    try {
      await new Promise((resolve) => session.once("remoteSettings", resolve));
      const statuses = await Promise.all(
        Array.from(
          { length: 100 },
          () =>
            new Promise<number>((resolve) => {
              const stream = session.request({
                ":method": "POST",
                ":path": "/oauth/token",
                "content-type": "application/x-www-form-urlencoded",
              });
              let status = 0;
              stream.on("response", (h) => {
                status = Number(h[":status"]);
              });
              stream.on("error", () => {});
              stream.on("close", () => resolve(status));
              stream.resume();
              stream.end(`grant_type=x&pad=${"a".repeat(8_000)}`);
            }),
        ),
      );
      assert.deepEqual(statuses, Array(100).fill(400));
      assert.equal(fresh.app.server.counts.refused, 0);
    } finally {
      session.close();
      await fresh.close();
    }
  });
});

describe("HTTP/1.1 limits and the connection cap", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({
      env: { ...ONE_SECOND_LIMITS, MAX_CONNECTIONS: "10", MAX_CONNECTIONS_PER_ADDRESS: "0" },
    });
  });
  after(() => service.close());

  test("half-sent headers and slow bodies get 408 and are closed after a second", async () => {
    const [headers, body] = await Promise.all([
      slowH1Requests(service.port, 3, 5_000, "headers"),
      slowH1Requests(service.port, 3, 5_000, "body"),
    ]);
    headers.release();
    body.release();
    for (const result of [headers, body]) {
      assert.equal(result.closed, 3);
      assert.deepEqual(result.statuses, ["408", "408", "408"]);
      assert.ok(result.slowestCloseMs < 3_000, `closed after ${result.slowestCloseMs} ms`);
    }
  });

  test("at MAX_CONNECTIONS, connections that sent nothing are closed to make room, oldest first", async () => {
    const { evictedConnections, droppedConnections } = service.app.server.counts;
    const sockets = [];
    for (let i = 0; i < 15; i++) {
      sockets.push(...(await openTcpConnections(service.port, 1)).sockets);
      await sleep(20);
    }
    await Promise.race([Promise.all(sockets.slice(0, 5).map((s) => s.closed)), sleep(2_000)]);
    const closed = sockets.map((s) => s.closedAfterMs !== undefined);
    assert.deepEqual(closed, [...Array(5).fill(true), ...Array(10).fill(false)]);
    for (const s of sockets) assert.equal(Buffer.concat(s.received).length, 0);
    assert.equal(service.app.server.counts.evictedConnections - evictedConnections, 5);
    assert.equal(service.app.server.counts.droppedConnections - droppedConnections, 0);
    // A client still gets in: the oldest silent one makes room.
    const [status] = await timedRequest({ port: service.port, path: "/healthz" });
    assert.equal(status, 200);
    for (const s of sockets) s.socket.destroy();
  });
});

describe("management listener", () => {
  let service: TestService;
  let publicMetrics: TestService;
  before(async () => {
    service = await startTestService();
    publicMetrics = await startTestService({ env: { PUBLIC_METRICS: "true" } });
  });
  after(() => Promise.all([service.close(), publicMetrics.close()]));

  test("serves /metrics, /healthz and /readyz; 404 elsewhere, 405 for another method", async () => {
    assert.notEqual(service.app.managementPort, service.port);
    const metrics = await fetch(`${service.managementUrl}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    assert.match(await metrics.text(), /^# HELP token_service_requests_total /m);
    const healthz = await fetch(`${service.managementUrl}/healthz`);
    assert.deepEqual([healthz.status, await healthz.json()], [200, { status: "ok" }]);
    const readyz = await fetch(`${service.managementUrl}/readyz`);
    assert.deepEqual([readyz.status, await readyz.json()], [200, { status: "ready" }]);
    const unknown = await fetch(`${service.managementUrl}/oauth/token`);
    assert.equal(unknown.status, 404);
    const post = await fetch(`${service.managementUrl}/metrics`, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET");
  });

  test("the public port keeps /healthz and /readyz, and serves /metrics only with PUBLIC_METRICS=true", async () => {
    assert.equal((await fetch(`${service.baseUrl}/healthz`)).status, 200);
    assert.equal((await fetch(`${service.baseUrl}/readyz`)).status, 200);
    assert.equal((await fetch(`${service.baseUrl}/metrics`)).status, 404);
    const open = await fetch(`${publicMetrics.baseUrl}/metrics`);
    assert.equal(open.status, 200);
    assert.match(await open.text(), /token_service_requests_total/);
  });

  test("/metrics is rendered at most once a second: a flood of scrapes leaves readiness and requests alone", async () => {
    const first = await (await fetch(`${service.managementUrl}/metrics`)).text();
    const second = await (await fetch(`${service.managementUrl}/metrics`)).text();
    assert.equal(second, first, "two scrapes within the second share one rendering");
    const flood = pipelinedGets(service.app.managementPort as number, "/metrics", 1_000, 20_000);
    const ready: number[] = [];
    const latencies: number[] = [];
    for (let i = 0; i < 10; i++) {
      const [status, ms] = await timedRequest({ port: service.port, path: "/readyz" });
      ready.push(status);
      latencies.push(ms);
      await sleep(20);
    }
    const { responses } = await flood;
    assert.equal(responses, 1_000);
    assert.deepEqual(ready, Array(10).fill(200));
    assert.ok(Math.max(...latencies) < 1_000, `readyz took up to ${Math.max(...latencies)} ms`);
  });
});

describe("413 with Connection: close", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService();
  });
  after(() => service.close());

  test("every client sending an oversized body among concurrent ones reads the 413", async () => {
    const outcomes: string[] = [];
    for (let round = 0; round < 5; round++) {
      outcomes.push(
        ...(await Promise.all(Array.from({ length: 20 }, () => postOversizedForm(service.port)))),
      );
    }
    assert.deepEqual(
      outcomes.filter((o) => o !== OVERSIZED_FORM_ANSWER),
      [],
    );
  });

  test("over h2c the 413 is followed by RST_STREAM NO_ERROR and the session serves on", async () => {
    const session = http2.connect(service.baseUrl);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": "/oauth/token",
        "content-type": "application/x-www-form-urlencoded",
      });
      stream.on("error", () => {});
      stream.resume();
      const status = new Promise((resolve) =>
        stream.once("response", (h) => resolve(h[":status"])),
      );
      const closed = new Promise<number>((resolve) =>
        stream.once("close", () => resolve(stream.rstCode as number)),
      );
      stream.write(Buffer.alloc(100 * 1024, "a"));
      assert.equal(await status, 413);
      assert.equal(await closed, http2.constants.NGHTTP2_NO_ERROR);
      const next = session.request({ ":method": "GET", ":path": "/healthz" });
      const nextStatus = await new Promise((resolve) =>
        next.once("response", (h) => resolve(h[":status"])),
      );
      next.resume();
      assert.equal(nextStatus, 200);
    } finally {
      session.close();
    }
  });
});

describe("parsing rules on every surface", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService();
  });
  after(() => service.close());

  const VERIFY = "/token.v1.TokenService/VerifyMfaOtp";
  const DUPLICATE = { error: "invalid_request", error_description: "Duplicate parameter: otp" };
  const clientFields = `"clientId":"${CLIENTS.post.id}","clientSecret":"${CLIENTS.post.secret}"`;

  function assertConnectDuplicate(response: RawResponse, name: string): void {
    assert.equal(response.status, 400, response.text);
    const body = jsonOf(response) as { code: string; message: string; details: unknown[] };
    assert.equal(body.code, "invalid_argument");
    assert.equal(body.message, `Duplicate parameter: ${name}`);
    assert.equal(body.details.length, 1);
    assert.equal(response.headers["cache-control"], "no-store");
  }

  test("REST form and REST JSON: 400 invalid_request 'Duplicate parameter: otp'", async () => {
    for (const [type, body] of [
      ["application/x-www-form-urlencoded", "grant_type=x&otp=1&otp=2"],
      ["application/json", '{"grant_type":"x","otp":"1","otp":"2"}'],
    ]) {
      for (const send of [h1Request, h2cRequest]) {
        const response = await send(service.baseUrl, {
          method: "POST",
          path: "/oauth/token",
          headers: { "content-type": type as string },
          body,
        });
        assert.equal(response.status, 400);
        assert.deepEqual(jsonOf(response), DUPLICATE);
      }
    }
  });

  test("Connect JSON (fast path and connect-es, HTTP/1.1 and h2c): the same description, with the detail", async () => {
    const body = `{"mfaToken":"t","otp":"1","otp":"2",${clientFields}}`;
    for (const path of [VERIFY, "/token.v1.MfaService/ListAuthenticators"]) {
      for (const send of [h1Request, h2cRequest]) {
        const response = await send(service.baseUrl, {
          method: "POST",
          path,
          headers: { "content-type": "application/json" },
          body: path === VERIFY ? body : '{"mfaToken":"a","mfaToken":"b"}',
        });
        assertConnectDuplicate(response, path === VERIFY ? "otp" : "mfaToken");
      }
    }
    // One field by both its JSON and its proto name is a duplicate too.
    const alias = await h1Request(service.baseUrl, {
      method: "POST",
      path: VERIFY,
      headers: { "content-type": "application/json" },
      body: `{"mfaToken":"a","mfa_token":"b","otp":"1",${clientFields}}`,
    });
    assertConnectDuplicate(alias, "mfa_token");
  });

  test("gRPC with the JSON codec: InvalidArgument with the detail", async () => {
    const json = Buffer.from(`{"mfaToken":"t","otp":"1","otp":"2",${clientFields}}`);
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, json.length]), json]);
    const response = await h2cRequest(service.baseUrl, {
      method: "POST",
      path: VERIFY,
      headers: { "content-type": "application/grpc+json", te: "trailers" },
      body: frame,
    });
    assert.equal(response.trailers["grpc-status"], "3");
    assert.equal(
      decodeURIComponent(response.trailers["grpc-message"] ?? ""),
      "Duplicate parameter: otp",
    );
    assert.ok(response.trailers["grpc-status-details-bin"], "typed detail present");
  });

  test("a leading UTF-8 BOM is ignored on REST form, REST JSON and Connect JSON", async () => {
    const bom = "\ufeff";
    for (const [type, body] of [
      ["application/x-www-form-urlencoded", `${bom}grant_type=x`],
      ["application/json", `${bom}{"grant_type":"x"}`],
    ]) {
      const response = await h1Request(service.baseUrl, {
        method: "POST",
        path: "/oauth/token",
        headers: { "content-type": type as string },
        body,
      });
      assert.deepEqual(jsonOf(response), {
        error: "unsupported_grant_type",
        error_description: "Unsupported grant type: x",
      });
    }
    const connect = await h1Request(service.baseUrl, {
      method: "POST",
      path: VERIFY,
      headers: { "content-type": "application/json" },
      body: `${bom}{"mfaToken":"not-a-token","otp":"123456",${clientFields}}`,
    });
    assert.equal((jsonOf(connect) as { message: string }).message, "Malformed mfa_token");
  });

  test("gRPC and gRPC-Web: a compressed envelope without grpc-encoding is invalid_argument", async () => {
    const envelope = Buffer.from([1, 0, 0, 0, 2, 1, 2]);
    const grpc = await h2cRequest(service.baseUrl, {
      method: "POST",
      path: VERIFY,
      headers: { "content-type": "application/grpc", te: "trailers" },
      body: envelope,
    });
    assert.equal(grpc.trailers["grpc-status"], "3");
    const grpcWeb = await h1Request(service.baseUrl, {
      method: "POST",
      path: VERIFY,
      headers: { "content-type": "application/grpc-web+proto" },
      body: envelope,
    });
    assert.match(grpcWeb.bytes.subarray(5).toString("latin1"), /grpc-status: 3\r\n/);
    assert.equal(grpcWeb.bytes[0], 0x80);
  });

  test("JSON nested 17 deep is refused before parsing: REST, Connect (fast path and connect-es), gRPC-Web", async () => {
    const deep = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
    const rest = await h1Request(service.baseUrl, {
      method: "POST",
      path: "/oauth/token",
      headers: { "content-type": "application/json" },
      body: deep(17),
    });
    assert.deepEqual(jsonOf(rest), {
      error: "invalid_request",
      error_description: "JSON body nests too deeply",
    });
    for (const path of [VERIFY, "/token.v1.MfaService/Challenge"]) {
      const connect = await h1Request(service.baseUrl, {
        method: "POST",
        path,
        headers: { "content-type": "application/json" },
        body: `{${clientFields},"x":${deep(16)}}`,
      });
      assert.equal(connect.status, 400, connect.text);
      const body = jsonOf(connect) as { code: string; message: string };
      assert.deepEqual([body.code, body.message], ["invalid_argument", "JSON nests too deeply"]);
    }
    const message = Buffer.from(`{${clientFields},"x":${deep(16)}}`);
    const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), message]);
    envelope.writeUInt32BE(message.length, 1);
    const grpcWeb = await h1Request(service.baseUrl, {
      method: "POST",
      path: VERIFY,
      headers: { "content-type": "application/grpc-web+json" },
      body: envelope,
    });
    assert.match(grpcWeb.bytes.toString("latin1"), /grpc-status: 3\r\n/);
    assert.match(grpcWeb.bytes.toString("latin1"), /grpc-message: JSON%20nests%20too%20deeply/);
    // 15 levels inside the message (16 with it) are within the bound: another answer.
    const within = await h1Request(service.baseUrl, {
      method: "POST",
      path: VERIFY,
      headers: { "content-type": "application/json" },
      body: `{${clientFields},"x":${deep(15)}}`,
    });
    assert.notEqual((jsonOf(within) as { message?: string }).message, "JSON nests too deeply");
  });
});
