// One TCP port serving HTTP/1.1 and cleartext HTTP/2 (h2c, "prior knowledge") with
// one request handler (docs/api.md: Connect, gRPC, gRPC-Web and the REST routes all on
// `PORT`).
//
// Why not `http2.createServer({ allowHTTP1: true })`: that fallback is chosen by TLS
// ALPN only; on cleartext an HTTP/1.1 client gets HTTP/2 frames. Instead a plain `net.Server` accepts every
// connection, looks at its first bytes and hands the socket to an `http2` server when
// they are the HTTP/2 client connection preface, to an `http` server otherwise.
//
// RFC 9113 §3.4: a client using prior knowledge starts the connection with the
// 24-octet preface `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (followed by a SETTINGS frame).
// No HTTP/1.x request can start with those 24 bytes (`PRI` is reserved as a method
// for exactly that reason, RFC 9113 §11.6), so the sniff is unambiguous. Clients that
// ask for h2c with `Upgrade: h2c` (e.g. `curl --http2`) are simply served HTTP/1.1,
// which RFC 9113 §3.2 allows (the h2c upgrade token is deprecated).
//
// Hot path notes: per connection we add one Set entry and four listeners (data once,
// timeout once, error, close once); all listeners are shared functions that use
// `this` (the socket), so no closure is allocated per connection.

import { Buffer } from "node:buffer";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { type ConnectionLimits, createConnectionLimits } from "./connection-limits.js";
import { createHttp2Limits, type Http2Limits } from "./http2-limits.js";

export type OnePortRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type OnePortResponse = http.ServerResponse | http2.Http2ServerResponse;
export type OnePortHandler = (req: OnePortRequest, res: OnePortResponse) => void;

export interface OnePortServerOptions {
  /** Destroy a connection that has not sent enough bytes to be classified within this time (default 10 000 ms). */
  sniffTimeoutMs?: number;
  /** HTTP/1.1: time allowed to receive the request headers (Node's `headersTimeout`, default 10 000 ms). */
  headersTimeoutMs?: number;
  /**
   * Time allowed to receive a whole request, headers and body: HTTP/1.1's
   * `requestTimeout`, and the same bound per HTTP/2 stream (http2-limits.ts).
   * Default 10 000 ms.
   */
  requestTimeoutMs?: number;
  /**
   * Idle time before a connection is closed: HTTP/1.1 keep-alive
   * (`keepAliveTimeout`), an HTTP/2 session without open streams. Default 65 000 ms.
   */
  idleTimeoutMs?: number;
  /**
   * Open connections; at the cap a new one first closes the connection idle
   * the longest and is refused only when none is idle (connection-limits.ts).
   * Default 1 000.
   */
  maxConnections?: number;
  /**
   * Open connections per peer address, with the same idle-first rule; 0 turns
   * it off (behind a proxy). Default 0. While it is on, one address may also
   * hold at most a tenth of the process's incomplete HTTP/2 requests.
   */
  maxConnectionsPerAddress?: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (default 100). */
  http2MaxConcurrentStreams?: number;
  /** HTTP/2: incomplete requests per session; more are refused (default 100). */
  http2MaxStreamsAwaitingBody?: number;
  /** HTTP/2: incomplete requests in the process; more are refused (default 5 000). */
  http2MaxStreamsAwaitingBodyTotal?: number;
  /** Period of the deadline checks (default: a quarter of the shortest timeout, 50 ms to 1 s). */
  checkIntervalMs?: number;
}

export interface OnePortServer {
  /** Listens on `host:port` (port 0 picks a free port) and resolves with the actual port. */
  listen(port: number, host: string): Promise<{ port: number }>;
  /**
   * The first step of a graceful stop (SPEC §6 "Stopping"): keep accepting
   * and serving, but every answer closes its connection gracefully — an
   * HTTP/1.1 response says `Connection: close`, a request on an HTTP/2
   * session sends GOAWAY (the session ends once its open streams are done).
   * Idle connections are left alone: a client may still send on them, and is
   * answered. Idempotent; `close()` follows.
   */
  closeAfterEachAnswer(): void;
  /**
   * Graceful shutdown: stop accepting, close idle HTTP/1.1 keep-alive connections and
   * connections not yet classified, send GOAWAY to HTTP/2 sessions, let in-flight
   * requests finish for up to `graceMs` (default 10 000 ms), then destroy what is left.
   * Resolves once every connection is closed. Idempotent. A closed server cannot
   * listen again.
   */
  close(graceMs?: number): Promise<void>;
  /** The listening address of the underlying `net.Server` (null while not listening). */
  address(): net.AddressInfo | null;
  /** HTTP/2 requests whose body has not ended yet (tests, metrics). */
  awaitingBody(): number;
  /** What the limits did so far (tests, metrics). */
  readonly counts: {
    /** Connections refused on accept (a cap reached and no idle connection to close). */
    droppedConnections: number;
    /** Idle connections closed to make room for a new one. */
    evictedConnections: number;
  } & Http2Limits["counts"];
}

/** RFC 9113 §3.4 client connection preface. */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const PREFACE_LENGTH = H2_PREFACE.length; // 24

const DEFAULT_SNIFF_TIMEOUT_MS = 10_000;
const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS = 65_000;
const DEFAULT_MAX_CONNECTIONS = 1_000;
const DEFAULT_MAX_CONCURRENT_STREAMS = 100;
/**
 * HTTP/2 header lists are capped at HTTP/1.1's default header size (16 KiB,
 * node's --max-http-header-size), so a held stream costs at most what a held
 * HTTP/1.1 request costs.
 */
const MAX_HEADER_LIST_BYTES = 16 * 1024;
const DEFAULT_GRACE_MS = 10_000;
/** How often idle HTTP/1.1 connections are reaped while draining. */
const DRAIN_POLL_MS = 25;

/** Bytes of a connection whose first chunk(s) matched only a prefix of the preface. */
const kSniffed = Symbol("onePortServer.sniffed");
type SniffSocket = net.Socket & { [kSniffed]?: Buffer };
/** The socket of an HTTP/1.1 response (`res.socket` is gone by its 'close' event). */
const kSocket = Symbol("onePortServer.socket");
type TrackedResponse = http.ServerResponse & { [kSocket]?: net.Socket };

export function createOnePortServer(
  handler: OnePortHandler,
  options: OnePortServerOptions = {},
): OnePortServer {
  const sniffTimeoutMs = options.sniffTimeoutMs ?? DEFAULT_SNIFF_TIMEOUT_MS;
  const headersTimeoutMs = options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const maxStreamsAwaitingBody =
    options.http2MaxStreamsAwaitingBody ?? DEFAULT_MAX_CONCURRENT_STREAMS;
  const maxStreamsAwaitingBodyTotal = options.http2MaxStreamsAwaitingBodyTotal ?? 5_000;
  const maxConnectionsPerAddress = options.maxConnectionsPerAddress ?? 0;
  const limits = createHttp2Limits({
    idleTimeoutMs,
    requestTimeoutMs,
    maxStreamsAwaitingBody,
    maxStreamsAwaitingBodyTotal,
    // One address's share of the incomplete requests, while addresses are counted.
    maxStreamsAwaitingBodyPerAddress:
      maxConnectionsPerAddress > 0
        ? Math.max(
            Math.min(maxStreamsAwaitingBody, maxStreamsAwaitingBodyTotal),
            Math.floor(maxStreamsAwaitingBodyTotal / 10),
          )
        : 0,
    onSessionIdle: (session) => connections.sessionIdle(session),
    checkIntervalMs: options.checkIntervalMs,
  });
  const connections: ConnectionLimits = createConnectionLimits({
    maxConnections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    maxConnectionsPerAddress,
    sessionIsIdle: (session) => limits.isIdle(session),
  });
  // Node checks HTTP/1.1 header and request deadlines every 30 s by default,
  // which let a slow body live ~330 s; check as often as HTTP/2's sweep.
  const checkIntervalMs =
    options.checkIntervalMs ??
    Math.min(1_000, Math.max(50, Math.floor(Math.min(headersTimeoutMs, requestTimeoutMs) / 4)));

  const h1 = http.createServer({
    headersTimeout: headersTimeoutMs,
    requestTimeout: requestTimeoutMs,
    connectionsCheckingInterval: checkIntervalMs,
  });
  h1.keepAliveTimeout = idleTimeoutMs;
  // Before the handler: the connection is busy until this response ends.
  h1.on("request", onHttp1Request);
  h1.on("request", handler);

  const h2 = http2.createServer({
    settings: {
      maxConcurrentStreams: options.http2MaxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS,
      maxHeaderListSize: MAX_HEADER_LIST_BYTES,
    },
  });
  h2.on("request", (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    if (!limits.admit(req, res)) return;
    // Stopping: GOAWAY names this stream as the last one processed; the client
    // opens a new connection for its next request (RFC 9113 §6.8).
    if (draining) req.stream.session?.close();
    handler(req, res);
  });

  // allowHalfOpen stays false (net's default) while sniffing, so a client that sends
  // FIN before classifying is closed right away; the HTTP/1 path switches it on
  // (as http.Server does) and lets the http server handle the end of input.
  // No `maxConnections` here: net.Server would refuse at its cap whatever is
  // idle; connection-limits.ts decides instead, as each connection is accepted.
  const outer = net.createServer({ noDelay: true });
  const counts = Object.defineProperties(limits.counts, {
    droppedConnections: { enumerable: true, get: () => connections.counts.refusedConnections },
    evictedConnections: { enumerable: true, get: () => connections.counts.evictedConnections },
  }) as OnePortServer["counts"];

  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  /** The socket being handed to the HTTP/2 server (its 'session' event comes synchronously). */
  let handingOff: net.Socket | undefined;
  let closing = false;
  /** Set by closeAfterEachAnswer(): every answer closes its connection. */
  let draining = false;
  let closed: Promise<void> | undefined;

  function onSocketClose(this: net.Socket): void {
    sockets.delete(this);
  }

  function onSniffTimeout(this: net.Socket): void {
    // Sent nothing (or only part of the preface) in time: not worth a slot.
    this.destroy();
  }

  function onSniffError(this: net.Socket): void {
    // ECONNRESET and friends before classification: the socket is already being
    // destroyed; this listener only keeps the error from crashing the process.
    this.destroy();
  }

  function onHttp1Request(req: http.IncomingMessage, res: http.ServerResponse): void {
    connections.requestStarted(req.socket);
    (res as TrackedResponse)[kSocket] = req.socket;
    res.once("close", onHttp1ResponseClose);
  }

  function onHttp1ResponseClose(this: TrackedResponse): void {
    const socket = this[kSocket];
    if (socket !== undefined) connections.responseEnded(socket);
  }

  function handOff(socket: SniffSocket, bytes: Buffer, isH2: boolean): void {
    // Stop flowing before anything else: more chunks may already sit in the socket's
    // buffer and must not be emitted while nobody listens.
    socket.pause();
    socket.setTimeout(0);
    socket.removeListener("timeout", onSniffTimeout);
    socket.removeListener("error", onSniffError);
    if (socket[kSniffed] !== undefined) socket[kSniffed] = undefined;
    // Put the sniffed bytes back so the real server parses them first.
    socket.unshift(bytes);
    if (isH2) {
      // Do NOT resume: http2 consumes the native handle and, on the next tick, drains
      // what is buffered in the JS stream (our unshifted bytes) with socket.read().
      // Resuming would emit those bytes as 'data' events with no listener: lost.
      // The server creates the session and emits 'session' synchronously.
      handingOff = socket;
      h2.emit("connection", socket);
      handingOff = undefined;
    } else {
      connections.servedAsHttp1(socket);
      socket.allowHalfOpen = true;
      h1.emit("connection", socket);
      // http reads the native handle directly from now on; the unshifted bytes reach
      // its parser through a 'data' event, which needs the stream flowing. resume()
      // flushes them on the next tick, before any further I/O is read.
      socket.resume();
    }
  }

  function onFirstData(this: SniffSocket, chunk: Buffer): void {
    const previous = this[kSniffed];
    const bytes = previous === undefined ? chunk : Buffer.concat([previous, chunk]);
    const n = Math.min(bytes.length, PREFACE_LENGTH);
    if (bytes.compare(H2_PREFACE, 0, n, 0, n) !== 0) {
      handOff(this, bytes, false);
    } else if (n === PREFACE_LENGTH) {
      handOff(this, bytes, true);
    } else {
      // A prefix of the preface (e.g. a client writing it in small pieces): wait for
      // more before deciding. The sniff timeout keeps running.
      this[kSniffed] = bytes;
      this.once("data", onFirstData);
    }
  }

  outer.on("connection", (socket: net.Socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    if (!connections.admit(socket)) return;
    sockets.add(socket);
    socket.once("close", onSocketClose);
    socket.on("error", onSniffError);
    socket.setTimeout(sniffTimeoutMs);
    socket.once("timeout", onSniffTimeout);
    socket.once("data", onFirstData);
  });

  // http.Server starts its connection tracking (needed by closeIdleConnections and
  // closeAllConnections) and the checker enforcing headersTimeout/requestTimeout on
  // its own 'listening' event (setupConnectionsTracking in Node's _http_server.js).
  // It never listens itself, so forward the outer server's event. This must happen
  // before the first connection is handed over: a connection's parser registers
  // with the tracking list only when it is created.
  outer.once("listening", () => {
    h1.emit("listening");
  });

  function onSessionClose(this: http2.ServerHttp2Session): void {
    sessions.delete(this);
  }
  h2.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    const socket = handingOff;
    if (socket !== undefined) connections.servedAsHttp2(socket, session);
    limits.addSession(session, socket === undefined ? undefined : connections.addressOf(socket));
    session.once("close", onSessionClose);
    if (closing) session.close();
  });

  function markConnectionClose(_req: http.IncomingMessage, res: http.ServerResponse): void {
    // During shutdown every HTTP/1.1 response announces `Connection: close`.
    res.shouldKeepAlive = false;
  }

  function isSniffing(socket: net.Socket): boolean {
    return socket.listeners("timeout").includes(onSniffTimeout);
  }

  return {
    counts,
    awaitingBody: limits.awaitingBody,

    listen(port: number, host: string): Promise<{ port: number }> {
      return new Promise((resolve, reject) => {
        const onError = (error: Error): void => reject(error);
        outer.once("error", onError);
        outer.listen(port, host, () => {
          outer.removeListener("error", onError);
          resolve({ port: (outer.address() as net.AddressInfo).port });
        });
      });
    },

    closeAfterEachAnswer(): void {
      if (draining) return;
      draining = true;
      h1.prependListener("request", markConnectionClose);
    },

    close(graceMs: number = DEFAULT_GRACE_MS): Promise<void> {
      if (closed !== undefined) return closed;
      closing = true;
      closed = new Promise<void>((resolve) => {
        let poll: NodeJS.Timeout | undefined;
        let grace: NodeJS.Timeout | undefined;
        // The callback runs once the listening socket is closed and every accepted
        // connection has closed (net.Server counts them; handing a socket to the
        // inner servers does not change that). Called with an error when the server
        // was not listening: nothing to wait for then.
        outer.close(() => {
          clearInterval(poll);
          limits.stop();
          clearTimeout(grace);
          resolve();
        });

        if (!draining) {
          draining = true;
          h1.prependListener("request", markConnectionClose);
        }
        // Closes idle keep-alive connections and stops the timeout checker.
        h1.close();
        h2.close();
        for (const socket of sockets) if (isSniffing(socket)) socket.destroy();
        // GOAWAY; each session closes once its open streams are done.
        for (const session of sessions) session.close();

        // A request in flight at close time keeps its connection; when it completes
        // the connection turns idle and is reaped here.
        poll = setInterval(() => h1.closeIdleConnections(), DRAIN_POLL_MS).unref();
        grace = setTimeout(() => {
          clearInterval(poll);
          limits.stop();
          for (const session of sessions) session.destroy();
          for (const socket of sockets) socket.destroy();
        }, graceMs).unref();
      });
      return closed;
    },

    address(): net.AddressInfo | null {
      const address = outer.address();
      return address !== null && typeof address === "object" ? address : null;
    },
  };
}
