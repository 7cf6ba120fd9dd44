/**
 * An attacker that holds connections: `count` connections of one kind from
 * one source address, each reopened (after `reopenDelayMs`) whenever the
 * server closes or refuses it, until `stop()`. Loopback only, bounded in
 * count and time. What it observed comes back from `stop()`; the tests
 * assert on the other address's probes and report these figures.
 */
import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { connectH2Raw, headerBlock, openStreams, postWithoutBody } from "./h2-raw.js";

/**
 * - `keep-alive`: one `GET /healthz` answered, then the connection left idle;
 * - `silent`: a TCP connection that never sends a byte;
 * - `headers`: half of a request's headers, never finished;
 * - `body`: headers announcing 1,000 bytes of body, 10 sent;
 * - `h2-idle`: an h2c session (preface, SETTINGS), then nothing;
 * - `h2-headers`: an h2c session with a header block never finished (no END_HEADERS);
 * - `h2-streams`: an h2c session with `streamsPerConnection` POST streams whose body never comes;
 * - `watch`: an h2c session with `streamsPerConnection` grpc.health.v1.Health/Watch
 *   streams, each reopened when the server ends it (a refused one after 10 s).
 */
export type HeldKind =
  | "keep-alive"
  | "silent"
  | "headers"
  | "body"
  | "h2-idle"
  | "h2-headers"
  | "h2-streams"
  | "watch";

export interface HoldOptions {
  port: number;
  kind: HeldKind;
  count: number;
  /** The attacker's source address (default 127.0.0.1). */
  localAddress?: string;
  /** Wait before reopening what the server closed (default 1 s). */
  reopenDelayMs?: number;
  /** `h2-streams` and `watch` (default 100). */
  streamsPerConnection?: number;
}

export interface HoldResult {
  kind: HeldKind;
  /** Connections established (reopened ones included). */
  opened: number;
  /** Connections the server closed (or refused after accepting). */
  closedByServer: number;
  /** Connection attempts that failed outright (refused, reset before connecting). */
  connectErrors: number;
  /** Connections open when `stop()` was called, and the most open at once. */
  heldAtEnd: number;
  peakHeld: number;
  /** `watch` only: Watch streams answered, ended by the server with grpc-status 0, refused with 8. */
  watch?: { answered: number; endedOk: number; resourceExhausted: number; otherStatus: number };
}

export interface Holder {
  /** Connections open now. */
  held(): number;
  /** Resolves once `n` connections are open at the same time (or after `timeoutMs`). */
  waitForHeld(n: number, timeoutMs: number): Promise<number>;
  stop(): Promise<HoldResult>;
}

/** How long a refused (or failed) Watch waits before the attacker tries it again. */
const REFUSED_WATCH_RETRY_MS = 10_000;
const FIRST_REQUEST = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
const HALF_HEADERS = "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: appl";
const HALF_BODY =
  "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type";

/**
 * Whether `emitter` connected before it closed. (events.once alone would wait
 * forever for a connection destroyed while connecting: no 'error' comes.)
 */
async function connected(
  emitter: net.Socket | http2.ClientHttp2Session,
  event: string,
  closed: Promise<void>,
): Promise<boolean> {
  return Promise.race([
    once(emitter, event).then(
      () => true,
      () => false,
    ),
    closed.then(() => false),
  ]);
}

/** Resolves on 'close' (events.once would reject on an earlier 'error'). */
function closeOf(emitter: net.Socket | http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => emitter.once("close", () => resolve()));
}

export function holdConnections(options: HoldOptions): Holder {
  const localAddress = options.localAddress ?? "127.0.0.1";
  const reopenDelayMs = options.reopenDelayMs ?? 1_000;
  const streams = options.streamsPerConnection ?? 100;
  const result: HoldResult = {
    kind: options.kind,
    opened: 0,
    closedByServer: 0,
    connectErrors: 0,
    heldAtEnd: 0,
    peakHeld: 0,
    ...(options.kind === "watch"
      ? { watch: { answered: 0, endedOk: 0, resourceExhausted: 0, otherStatus: 0 } }
      : {}),
  };
  let stopped = false;
  /** Connected handles (what `held()` counts). */
  const live = new Set<{ destroy(): void }>();
  /** Every handle not yet closed, connecting ones too (a SYN the server has not accepted can wait a minute). */
  const pending = new Set<{ destroy(): void }>();
  const waiters = new Set<() => void>();
  const noteOpen = (handle: { destroy(): void }) => {
    live.add(handle);
    result.opened++;
    result.peakHeld = Math.max(result.peakHeld, live.size);
    for (const wake of waiters) wake();
  };

  /** One connection of the kind; resolves when it closes. */
  async function holdOne(): Promise<void> {
    if (options.kind === "watch") return holdWatch();
    if (options.kind.startsWith("h2-")) return holdH2Raw();
    const socket = net.connect({ port: options.port, host: "127.0.0.1", localAddress });
    socket.on("error", () => {});
    socket.on("data", () => {});
    const closed = closeOf(socket);
    pending.add(socket);
    void closed.then(() => pending.delete(socket));
    if (!(await connected(socket, "connect", closed))) {
      result.connectErrors++;
      return;
    }
    const handle = { destroy: () => socket.destroy() };
    noteOpen(handle);
    if (options.kind === "keep-alive") socket.write(FIRST_REQUEST);
    else if (options.kind === "headers") socket.write(HALF_HEADERS);
    else if (options.kind === "body") socket.write(HALF_BODY);
    await closed;
    live.delete(handle);
    if (!stopped) result.closedByServer++;
  }

  async function holdH2Raw(): Promise<void> {
    let connection: Awaited<ReturnType<typeof connectH2Raw>>;
    try {
      connection = await connectH2Raw(options.port, "127.0.0.1", localAddress, (socket) => {
        pending.add(socket);
        socket.once("close", () => pending.delete(socket));
      });
    } catch {
      result.connectErrors++;
      return;
    }
    noteOpen(connection);
    connection.start();
    if (options.kind === "h2-headers") {
      const block = headerBlock({ ":method": "POST", ":scheme": "http", ":path": "/oauth/token" });
      connection.write(connection.headers(1, block.subarray(0, 10), { endHeaders: false }));
    } else if (options.kind === "h2-streams") {
      void openStreams(connection, streams, postWithoutBody());
    }
    await connection.closed;
    live.delete(connection);
    if (!stopped) result.closedByServer++;
  }

  async function holdWatch(): Promise<void> {
    const watch = result.watch as NonNullable<HoldResult["watch"]>;
    const session = http2.connect(`http://127.0.0.1:${options.port}`, {
      createConnection: () => net.connect({ port: options.port, host: "127.0.0.1", localAddress }),
    });
    session.on("error", () => {});
    const closed = closeOf(session);
    pending.add(session);
    void closed.then(() => pending.delete(session));
    if (!(await connected(session, "connect", closed))) {
      result.connectErrors++;
      return;
    }
    const handle = { destroy: () => session.destroy() };
    noteOpen(handle);
    const openWatch = (): void => {
      if (stopped || session.closed || session.destroyed) return;
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request({
          ":method": "POST",
          ":path": "/grpc.health.v1.Health/Watch",
          "content-type": "application/grpc",
          te: "trailers",
        });
      } catch {
        return;
      }
      let status: string | undefined;
      stream.on("error", () => {});
      stream.once("response", (headers) => {
        watch.answered++;
        // A trailers-only answer (an error before any message) carries grpc-status here.
        if (headers["grpc-status"] !== undefined) status = String(headers["grpc-status"]);
      });
      stream.once("trailers", (trailers) => {
        status = String(trailers["grpc-status"]);
      });
      stream.resume();
      stream.once("close", () => {
        if (stopped) return;
        if (status === "0") watch.endedOk++;
        else if (status === "8") watch.resourceExhausted++;
        else watch.otherStatus++;
        // Holding, not flooding: a refused Watch is retried after a backoff, as
        // gRPC clients do; one the server ended is re-opened at once.
        setTimeout(openWatch, status === "0" ? 0 : REFUSED_WATCH_RETRY_MS).unref();
      });
      // An empty HealthCheckRequest in one uncompressed gRPC envelope.
      stream.end(Buffer.alloc(5));
    };
    for (let i = 0; i < streams; i++) openWatch();
    await closed;
    live.delete(handle);
    if (!stopped) result.closedByServer++;
  }

  const slots = Array.from({ length: options.count }, async () => {
    while (!stopped) {
      await holdOne();
      if (!stopped) await sleep(reopenDelayMs);
    }
  });

  return {
    held: () => live.size,
    waitForHeld(n, timeoutMs) {
      return new Promise((resolve) => {
        const done = () => {
          if (live.size < n) return;
          waiters.delete(done);
          clearTimeout(timer);
          resolve(live.size);
        };
        const timer = setTimeout(() => {
          waiters.delete(done);
          resolve(live.size);
        }, timeoutMs);
        waiters.add(done);
        done();
      });
    },
    async stop() {
      result.heldAtEnd = live.size;
      stopped = true;
      for (const handle of live) handle.destroy();
      for (const handle of pending) handle.destroy();
      await Promise.all(slots);
      return result;
    },
  };
}
