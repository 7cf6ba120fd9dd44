// Integration tests of the one-port HTTP/1.1 + h2c server (docs/api.md) over real loopback sockets.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { once } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { Duplex } from "node:stream";
import { after, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { TokenService } from "@token-service/client";
import {
  createOnePortServer,
  type OnePortRequest,
  type OnePortResponse,
  type OnePortServer,
  type OnePortServerOptions,
} from "../../src/server/one-port-server.js";

const HOST = "127.0.0.1";
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** Signals the tests can wait on: a slow request has reached the handler. */
const slowStarted: Array<() => void> = [];
function nextSlowStart(): Promise<void> {
  return new Promise((resolve) => slowStarted.push(resolve));
}

/**
 * Trivial handler: echoes method, url and httpVersion as JSON.
 * `/slow?ms=N` answers after N ms; `/stream` echoes the request body chunk by chunk
 * with gRPC-like headers and trailers.
 */
function echoHandler(req: OnePortRequest, res: OnePortResponse): void {
  // Both response types share this surface; one static type keeps the calls simple.
  const out = res as http.ServerResponse;
  const url = req.url ?? "";
  if (url === "/stream") {
    out.writeHead(200, { "content-type": "application/grpc" });
    req.on("data", (chunk: Buffer) => out.write(chunk));
    req.on("end", () => {
      out.addTrailers({ "grpc-status": "0" });
      out.end();
    });
    return;
  }
  const body = JSON.stringify({ method: req.method, url, httpVersion: req.httpVersion });
  const send = (): void => {
    out.writeHead(200, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
    });
    out.end(body);
  };
  // Drain any request body before answering.
  req.resume();
  if (url.startsWith("/slow")) {
    const ms = Number(new URL(url, "http://x").searchParams.get("ms") ?? "200");
    slowStarted.shift()?.();
    if (ms >= 0) setTimeout(send, ms);
    return;
  }
  req.on("end", send);
}

const servers: OnePortServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close(100)));
});

async function start(
  options?: OnePortServerOptions,
  handler = echoHandler,
): Promise<{ server: OnePortServer; port: number; origin: string }> {
  const server = createOnePortServer(handler, options);
  servers.push(server);
  const { port } = await server.listen(0, HOST);
  return { server, port, origin: `http://${HOST}:${port}` };
}

interface H1Result {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  reusedSocket: boolean;
}

function h1Request(
  port: number,
  path: string,
  options: { agent?: http.Agent; method?: string; body?: string } = {},
): Promise<H1Result> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: HOST, port, path, method: options.method ?? "GET", agent: options.agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            reusedSocket: req.reusedSocket,
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

interface H2Result {
  headers: http2.IncomingHttpHeaders;
  body: string;
  trailers: http2.IncomingHttpHeaders | undefined;
}

function h2Request(
  session: http2.ClientHttp2Session,
  path: string,
  method = "GET",
  body?: string,
): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": method, ":path": path });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      headers = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve({ headers, body: Buffer.concat(chunks).toString(), trailers }));
    stream.on("error", reject);
    stream.end(body);
  });
}

async function connectRaw(port: number): Promise<net.Socket> {
  const socket = net.connect(port, HOST);
  socket.setNoDelay(true);
  await once(socket, "connect");
  return socket;
}

/** Collects everything the server sends until it closes the connection. */
function readUntilClose(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => {
    socket.on("error", () => {});
    socket.on("close", () => resolve(Buffer.concat(chunks)));
  });
}

/** Writes `bytes` one byte per TCP segment (Nagle is off; a pause between writes). */
async function trickle(socket: net.Socket, bytes: Buffer, gapMs = 3): Promise<void> {
  for (let i = 0; i < bytes.length; i++) {
    socket.write(bytes.subarray(i, i + 1));
    await delay(gapMs);
  }
}

/**
 * A client transport for http2.connect whose first `trickleBytes` bytes go out one
 * byte at a time, so the server sees the preface in 24 separate pieces.
 */
function tricklingConnection(port: number, trickleBytes: number): Duplex {
  const socket = net.connect(port, HOST);
  socket.setNoDelay(true);
  const connected = once(socket, "connect");
  let remaining = trickleBytes;
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      (async () => {
        await connected;
        let offset = 0;
        while (remaining > 0 && offset < chunk.length) {
          socket.write(chunk.subarray(offset, offset + 1));
          offset++;
          remaining--;
          await delay(2);
        }
        if (offset < chunk.length) socket.write(chunk.subarray(offset));
      })().then(() => callback(), callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(error, callback) {
      socket.destroy();
      callback(error);
    },
  });
  socket.on("data", (c: Buffer) => {
    if (!duplex.push(c)) socket.pause();
  });
  socket.on("end", () => duplex.push(null));
  socket.on("error", (e) => duplex.destroy(e));
  return duplex;
}

function closeSession(session: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => session.close(() => resolve()));
}

describe("one-port server: HTTP/1.1", () => {
  test("fetch (HTTP/1.1) is echoed", async () => {
    const { origin } = await start();
    const res = await fetch(`${origin}/hello?x=1`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { method: "GET", url: "/hello?x=1", httpVersion: "1.1" });
  });

  test("http.request with keep-alive reuses one connection", async () => {
    const { port } = await start();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await h1Request(port, "/a", { agent });
      const second = await h1Request(port, "/b", { agent, method: "POST", body: "payload" });
      assert.equal(first.status, 200);
      assert.deepEqual(JSON.parse(first.body), { method: "GET", url: "/a", httpVersion: "1.1" });
      assert.deepEqual(JSON.parse(second.body), { method: "POST", url: "/b", httpVersion: "1.1" });
      assert.equal(first.headers.connection, "keep-alive");
      assert.equal(second.reusedSocket, true);
    } finally {
      agent.destroy();
    }
  });

  test("a request sent one byte per segment works (GET: decided on the first byte)", async () => {
    const { port } = await start();
    const socket = await connectRaw(port);
    const response = readUntilClose(socket);
    await trickle(
      socket,
      Buffer.from("GET /tiny HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    const text = (await response).toString();
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(text.endsWith('{"method":"GET","url":"/tiny","httpVersion":"1.1"}'), text);
  });

  test("a request sent one byte per segment works (POST: 'P' matches the preface's start)", async () => {
    const { port } = await start();
    const socket = await connectRaw(port);
    const response = readUntilClose(socket);
    await trickle(
      socket,
      Buffer.from(
        "POST /tiny HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
      ),
    );
    const text = (await response).toString();
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(text.endsWith('{"method":"POST","url":"/tiny","httpVersion":"1.1"}'), text);
  });

  test("pipelined requests in the first segment are all answered", async () => {
    const { port } = await start();
    const socket = await connectRaw(port);
    const response = readUntilClose(socket);
    socket.write(
      "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    const text = (await response).toString();
    assert.equal(text.match(/HTTP\/1\.1 200 OK/g)?.length, 2, text);
    assert.ok(text.includes('"url":"/one"') && text.includes('"url":"/two"'), text);
  });
});

describe("one-port server: h2c", () => {
  test("http2.connect (prior knowledge) is echoed as HTTP/2", async () => {
    const { origin } = await start();
    const session = http2.connect(origin);
    try {
      const res = await h2Request(session, "/h2?y=2");
      assert.equal(res.headers[":status"], 200);
      assert.deepEqual(JSON.parse(res.body), { method: "GET", url: "/h2?y=2", httpVersion: "2.0" });
      const res2 = await h2Request(session, "/again", "POST", "body");
      assert.deepEqual(JSON.parse(res2.body), {
        method: "POST",
        url: "/again",
        httpVersion: "2.0",
      });
    } finally {
      await closeSession(session);
    }
  });

  test("the preface sent one byte per segment still selects HTTP/2", async () => {
    const { origin, port } = await start();
    const session = http2.connect(origin, {
      createConnection: () => tricklingConnection(port, PREFACE.length),
    });
    try {
      const res = await h2Request(session, "/trickled");
      assert.equal(res.headers[":status"], 200);
      assert.deepEqual(JSON.parse(res.body), {
        method: "GET",
        url: "/trickled",
        httpVersion: "2.0",
      });
    } finally {
      await closeSession(session);
    }
  });

  test("raw preface in 1-byte pieces then SETTINGS gets the server's SETTINGS", async () => {
    const { port } = await start();
    const socket = await connectRaw(port);
    const received: Buffer[] = [];
    socket.on("data", (c: Buffer) => received.push(c));
    await trickle(socket, PREFACE, 2);
    // Empty SETTINGS frame: length 0, type 0x4, flags 0, stream 0.
    socket.write(Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]));
    for (let i = 0; i < 100 && Buffer.concat(received).length < 9; i++) await delay(10);
    const data = Buffer.concat(received);
    assert.ok(data.length >= 9, "expected a frame from the server");
    assert.equal(data[3], 0x4, "the server's first frame is SETTINGS");
    socket.destroy();
  });

  test("a gRPC-style POST streams its body both ways, with trailers", async () => {
    const { origin } = await start();
    const session = http2.connect(origin);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": "/stream",
        "content-type": "application/grpc",
        te: "trailers",
      });
      const [headers] = (await once(stream, "response")) as [http2.IncomingHttpHeaders];
      assert.equal(headers[":status"], 200);
      assert.equal(headers["content-type"], "application/grpc");
      const trailers = once(stream, "trailers") as Promise<[http2.IncomingHttpHeaders]>;
      const ended = once(stream, "end");
      // Each message comes back before the next one is sent: true streaming.
      for (const word of ["alpha", "beta", "gamma"]) {
        const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, word.length]), Buffer.from(word)]);
        stream.write(frame);
        const [echoed] = (await once(stream, "data")) as [Buffer];
        assert.deepEqual(echoed, frame);
      }
      stream.end();
      const [t] = await trailers;
      assert.equal(t["grpc-status"], "0");
      await ended;
    } finally {
      await closeSession(session);
    }
  });
});

describe("one-port server: robustness", () => {
  test("garbage bytes get a 400 and the server keeps serving", async () => {
    const { origin, port } = await start();

    const tls = await connectRaw(port);
    const tlsResponse = readUntilClose(tls);
    tls.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    assert.match((await tlsResponse).toString(), /^HTTP\/1\.1 400 Bad Request/);

    // Starts like the preface, differs at byte 18: HTTP/1 path, rejected there.
    const almost = await connectRaw(port);
    const almostResponse = readUntilClose(almost);
    almost.write("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
    assert.match((await almostResponse).toString(), /^HTTP\/1\.1 400 Bad Request/);

    // A valid preface followed by a garbage frame: HTTP/2 path, GOAWAY and close.
    const badFrames = await connectRaw(port);
    const badFramesClosed = readUntilClose(badFrames);
    badFrames.write(
      Buffer.concat([PREFACE, Buffer.from("\xff\xff\xff\xff\xff garbage garbage", "latin1")]),
    );
    await badFramesClosed;

    const res = await fetch(`${origin}/still-alive`);
    assert.equal(res.status, 200);
  });

  test("connection resets before and after classification do not crash", async () => {
    const { origin, port } = await start();
    const whileSniffing = await connectRaw(port);
    whileSniffing.write("PRI * HT");
    await delay(20);
    whileSniffing.resetAndDestroy();

    const afterH1 = await connectRaw(port);
    afterH1.write("GET /slow?ms=100 HTTP/1.1\r\nHost: x\r\n\r\n");
    await delay(20);
    afterH1.resetAndDestroy();

    const afterH2 = await connectRaw(port);
    afterH2.write(PREFACE);
    await delay(20);
    afterH2.resetAndDestroy();

    const halfClosed = await connectRaw(port);
    const halfClosedDone = readUntilClose(halfClosed);
    halfClosed.end("PRI");
    await halfClosedDone; // FIN while sniffing: closed at once, not after the sniff timeout

    await delay(150);
    const res = await fetch(`${origin}/after-resets`);
    assert.equal(res.status, 200);
  });

  test("a silent connection is closed after sniffTimeoutMs", async () => {
    const { port } = await start({ sniffTimeoutMs: 200 });
    const started = Date.now();
    const socket = await connectRaw(port);
    const closed = readUntilClose(socket);
    const received = await closed;
    const elapsed = Date.now() - started;
    assert.equal(received.length, 0);
    assert.ok(elapsed >= 150 && elapsed < 2000, `closed after ${elapsed} ms`);
  });

  test("a partial preface that stalls is closed after sniffTimeoutMs", async () => {
    const { port } = await start({ sniffTimeoutMs: 200 });
    const socket = await connectRaw(port);
    const closed = readUntilClose(socket);
    socket.write("PRI * HTTP/2.0\r\n");
    const started = Date.now();
    await closed;
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 150 && elapsed < 2000, `closed after ${elapsed} ms`);
  });

  test("HTTP/1.1 connection tracking runs: close() reaps an idle keep-alive connection", async () => {
    // Without the forwarded 'listening' event http.Server tracks no connection and
    // closeIdleConnections() is a no-op: close() would wait for the grace period.
    const { port } = await start({ headersTimeoutMs: 300, requestTimeoutMs: 600 });
    const socket = await connectRaw(port);
    const response = readUntilClose(socket);
    socket.write("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    await delay(50);
    const server = servers.at(-1);
    assert.ok(server);
    const started = Date.now();
    await server.close(5_000);
    assert.ok(Date.now() - started < 1_000, "idle keep-alive connection closed at once");
    assert.match((await response).toString(), /^HTTP\/1\.1 200 OK/);
  });
});

describe("one-port server: close()", () => {
  test("closes idle h1 keep-alive and h2 sessions, lets in-flight requests finish", async () => {
    const { server, port, origin } = await start();
    const agent = new http.Agent({ keepAlive: true });
    try {
      // Idle keep-alive HTTP/1.1 connection.
      const idle = await h1Request(port, "/idle", { agent });
      assert.equal(idle.status, 200);
      const idleSockets = Object.values(agent.freeSockets).flat();
      assert.equal(idleSockets.length, 1);
      const idleClosed = once(idleSockets[0] as net.Socket, "close");

      // Open HTTP/2 session (one request done, then idle) ...
      const session = http2.connect(origin);
      session.on("error", () => {});
      await h2Request(session, "/h2-idle");
      const goaway = once(session, "goaway");
      // ... and a second one with a slow stream in flight.
      const busy = http2.connect(origin);
      busy.on("error", () => {});
      const h2SlowStarted = nextSlowStart();
      const h2Slow = h2Request(busy, "/slow?ms=300");
      await h2SlowStarted;

      // Slow HTTP/1.1 request in flight.
      const h1SlowStarted = nextSlowStart();
      const h1Slow = h1Request(port, "/slow?ms=400");
      await h1SlowStarted;

      const started = Date.now();
      let closeResolvedAt = 0;
      const closing = server.close(5_000).then(() => {
        closeResolvedAt = Date.now();
      });

      await idleClosed; // reaped right away
      await goaway;
      const [h1Res, h2Res] = await Promise.all([h1Slow, h2Slow]);
      const slowDoneAt = Date.now();
      assert.equal(h1Res.status, 200);
      // (Its connection was keep-alive when the response started; it is reaped as
      // soon as it turns idle, which close() resolving below proves.)
      assert.deepEqual(JSON.parse(h1Res.body).url, "/slow?ms=400");
      assert.equal(h2Res.headers[":status"], 200);
      assert.deepEqual(JSON.parse(h2Res.body).url, "/slow?ms=300");

      await closing;
      assert.ok(closeResolvedAt >= slowDoneAt - 5, "close resolved after the in-flight requests");
      assert.ok(closeResolvedAt - started < 2_000, `close took ${closeResolvedAt - started} ms`);
      assert.equal(server.address(), null);
      await assert.rejects(fetch(`${origin}/after-close`));
      session.destroy();
      busy.destroy();
    } finally {
      agent.destroy();
    }
  });

  test("requests still running after graceMs are cut off", async () => {
    const { server, port } = await start();
    const stuckStarted = nextSlowStart();
    const stuck = h1Request(port, "/slow?ms=-1"); // never answers
    await stuckStarted;
    const started = Date.now();
    await server.close(300);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 250 && elapsed < 2_000, `close took ${elapsed} ms`);
    await assert.rejects(stuck, /socket hang up|ECONNRESET/);
  });

  test("close() on a server that never listened resolves", async () => {
    const server = createOnePortServer(echoHandler);
    await server.close(10);
  });
});

describe("one-port server: Connect end to end", () => {
  test("Connect (1.1 and h2c), gRPC (h2c) and gRPC-Web (1.1) share the port with REST", async () => {
    const handler = connectNodeAdapter({
      routes: (router) => {
        router.service(TokenService, {
          verifyMfaOtp: (req) => ({
            accessToken: `at-${req.otp}`,
            tokenType: "Bearer",
            expiresIn: 60,
          }),
        });
      },
      // connect-node's response type narrows `write`'s callback; same object at runtime.
      fallback: (req, res) => echoHandler(req, res as OnePortResponse),
    });
    // The adapter is passed as the server's handler as is: its type must fit.
    const { origin } = await start(undefined, handler);
    const transports = {
      connect11: createConnectTransport({ baseUrl: origin, httpVersion: "1.1" }),
      connect2: createConnectTransport({ baseUrl: origin, httpVersion: "2" }),
      grpc: createGrpcTransport({ baseUrl: origin }),
      grpcWeb: createGrpcWebTransport({ baseUrl: origin, httpVersion: "1.1" }),
    };
    for (const [name, transport] of Object.entries(transports)) {
      const client = createClient(TokenService, transport);
      const res = await client.verifyMfaOtp({ mfaToken: "t", otp: "123456" });
      assert.equal(res.accessToken, "at-123456", name);
      assert.equal(res.expiresIn, 60, name);
    }
    // Non-RPC paths fall through to the REST side, on both protocols.
    const rest = await fetch(`${origin}/healthz`);
    assert.deepEqual(await rest.json(), { method: "GET", url: "/healthz", httpVersion: "1.1" });
    const session = http2.connect(origin);
    try {
      const res = await h2Request(session, "/healthz");
      assert.equal(JSON.parse(res.body).httpVersion, "2.0");
    } finally {
      await closeSession(session);
    }
  });
});
