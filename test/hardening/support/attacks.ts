/**
 * The attacks of the hardening suite as reusable drivers (loopback only,
 * bounded in count and time): each returns what it observed, so the tests
 * assert on it and the figures in docs/limits.md come from the same code.
 */
import { once } from "node:events";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import {
  connectH2Raw,
  ErrorCode,
  FrameType,
  type H2RawConnection,
  headerBlock,
  openStreams,
  postWithoutBody,
} from "./h2-raw.js";

export interface StreamFloodResult {
  /** Streams written (HEADERS frames handed to the sockets). */
  written: number;
  /** Streams the server reset with REFUSED_STREAM. */
  refused: number;
  /** Streams reset with another code, by code. */
  otherResets: Record<string, number>;
  /** Streams the server answered with HEADERS (e.g. 408 after the request timeout). */
  answered: number;
  /** Streams neither answered nor reset when the flood ended: held by the server. */
  held: number;
  /** Connections the server closed (GOAWAY or close) during the flood. */
  connectionsClosed: number;
}

/**
 * `connections` h2c connections, each opening `streamsPerConnection`
 * `POST /oauth/token` streams whose body never comes; then waits `holdMs`
 * and counts the outcome per stream. The connections stay open until
 * `release()`.
 */
export async function floodStreamsWithoutBodies(
  port: number,
  connections: number,
  streamsPerConnection: number,
  holdMs: number,
): Promise<{ result: StreamFloodResult; release: () => Promise<void> }> {
  const block = postWithoutBody();
  const open: H2RawConnection[] = [];
  for (let i = 0; i < connections; i++) {
    const connection = await connectH2Raw(port);
    connection.start();
    open.push(connection);
  }
  const written = (
    await Promise.all(open.map((c) => openStreams(c, streamsPerConnection, block)))
  ).reduce((a, b) => a + b, 0);
  await sleep(holdMs);
  let refused = 0;
  let answered = 0;
  let held = 0;
  let connectionsClosed = 0;
  const otherResets: Record<string, number> = {};
  for (const { stats } of open) {
    refused += stats.resets.get(ErrorCode.REFUSED_STREAM) ?? 0;
    for (const [code, count] of stats.resets) {
      if (code !== ErrorCode.REFUSED_STREAM) otherResets[code] = (otherResets[code] ?? 0) + count;
    }
    answered += stats.answered.size;
    if (stats.goaway !== undefined || stats.closedAfterMs !== undefined) connectionsClosed++;
    // A closed connection holds nothing server-side; after GOAWAY only the
    // streams up to its last stream id may still be in progress.
    if (stats.closedAfterMs !== undefined) continue;
    const last = stats.goaway?.lastStreamId ?? Number.POSITIVE_INFINITY;
    for (let i = 0; i < streamsPerConnection && 2 * i + 1 <= last; i++) {
      const id = 2 * i + 1;
      if (!stats.answered.has(id) && !stats.reset.has(id)) held++;
    }
  }
  return {
    result: {
      written,
      refused,
      otherResets,
      answered,
      held,
      connectionsClosed,
    },
    release: async () => {
      for (const connection of open) connection.destroy();
      await Promise.all(open.map((c) => c.closed));
    },
  };
}

export interface ClosedResult {
  opened: number;
  /** Connections the server closed within the wait. */
  closed: number;
  /** Slowest close among the closed ones (ms after connect). */
  slowestCloseMs: number;
}

async function waitForCloses(
  sockets: { closed: Promise<void>; closedAfterMs: () => number | undefined }[],
  waitMs: number,
): Promise<ClosedResult> {
  await Promise.race([Promise.all(sockets.map((s) => s.closed)), sleep(waitMs)]);
  const times = sockets.map((s) => s.closedAfterMs()).filter((t): t is number => t !== undefined);
  return {
    opened: sockets.length,
    closed: times.length,
    slowestCloseMs: times.length === 0 ? Number.NaN : Math.max(...times),
  };
}

/** `count` h2c sessions: preface and SETTINGS, then nothing. Waits up to `waitMs` for the server to close them. */
export async function idleH2Sessions(
  port: number,
  count: number,
  waitMs: number,
): Promise<ClosedResult & { release: () => void }> {
  const open: H2RawConnection[] = [];
  for (let i = 0; i < count; i++) {
    const connection = await connectH2Raw(port);
    connection.start();
    open.push(connection);
  }
  const result = await waitForCloses(
    open.map((c) => ({ closed: c.closed, closedAfterMs: () => c.stats.closedAfterMs })),
    waitMs,
  );
  return {
    ...result,
    release: () => {
      for (const c of open) c.destroy();
    },
  };
}

/** `count` h2c sessions that start a header block (HEADERS without END_HEADERS) and never finish it. */
export async function halfSentH2Headers(
  port: number,
  count: number,
  waitMs: number,
): Promise<ClosedResult & { release: () => void }> {
  const block = headerBlock({ ":method": "POST", ":scheme": "http", ":path": "/oauth/token" });
  const open: H2RawConnection[] = [];
  for (let i = 0; i < count; i++) {
    const connection = await connectH2Raw(port);
    connection.start();
    connection.write(connection.headers(1, block.subarray(0, 10), { endHeaders: false }));
    open.push(connection);
  }
  const result = await waitForCloses(
    open.map((c) => ({ closed: c.closed, closedAfterMs: () => c.stats.closedAfterMs })),
    waitMs,
  );
  return {
    ...result,
    release: () => {
      for (const c of open) c.destroy();
    },
  };
}

export interface RawSocket {
  socket: net.Socket;
  closed: Promise<void>;
  closedAfterMs?: number;
  received: Buffer[];
}

/** A TCP connection to the service from `localAddress` (default: the system's choice), recording what it receives. */
export async function rawSocket(port: number, localAddress?: string): Promise<RawSocket> {
  const socket = net.connect({
    port,
    host: "127.0.0.1",
    ...(localAddress !== undefined ? { localAddress } : {}),
  });
  const openedAt = Date.now();
  const raw: RawSocket = { socket, closed: Promise.resolve(), received: [] };
  raw.closed = new Promise((resolve) =>
    socket.once("close", () => {
      raw.closedAfterMs = Date.now() - openedAt;
      resolve();
    }),
  );
  socket.on("error", () => {});
  socket.on("data", (chunk: Buffer) => raw.received.push(chunk));
  await once(socket, "connect");
  return raw;
}

/** HTTP/1.1 requests that announce a body and send only a part of it (or only part of the headers). */
export async function slowH1Requests(
  port: number,
  count: number,
  waitMs: number,
  what: "body" | "headers",
): Promise<ClosedResult & { statuses: string[]; release: () => void }> {
  const open: RawSocket[] = [];
  for (let i = 0; i < count; i++) {
    const raw = await rawSocket(port);
    raw.socket.write(
      what === "body"
        ? "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type"
        : "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: appl",
    );
    open.push(raw);
  }
  const result = await waitForCloses(
    open.map((r) => ({ closed: r.closed, closedAfterMs: () => r.closedAfterMs })),
    waitMs,
  );
  const statuses = open.map(
    (r) => /^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(r.received).toString("latin1"))?.[1] ?? "none",
  );
  return {
    ...result,
    statuses,
    release: () => {
      for (const r of open) r.socket.destroy();
    },
  };
}

/** `count` plain TCP connections that send nothing; resolves once all are connected or refused. */
export async function openTcpConnections(
  port: number,
  count: number,
  localAddress?: string,
): Promise<{ sockets: RawSocket[]; release: () => void }> {
  const sockets = await Promise.all(
    Array.from({ length: count }, () => rawSocket(port, localAddress)),
  );
  return {
    sockets,
    release: () => {
      for (const r of sockets) r.socket.destroy();
    },
  };
}

/** `count` GET requests pipelined on one HTTP/1.1 connection; resolves with the responses seen when it closes. */
export async function pipelinedGets(
  port: number,
  path: string,
  count: number,
  waitMs: number,
): Promise<{ responses: number; elapsedMs: number }> {
  const raw = await rawSocket(port);
  const started = Date.now();
  const request = `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;
  raw.socket.write(request.repeat(count - 1));
  raw.socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  await Promise.race([raw.closed, sleep(waitMs)]);
  raw.socket.destroy();
  const text = Buffer.concat(raw.received).toString("latin1");
  return {
    responses: text.match(/HTTP\/1\.1 \d{3} /g)?.length ?? 0,
    elapsedMs: Date.now() - started,
  };
}

/** Exports used by the tests directly. */
export { ErrorCode, FrameType };
