// Fair connection limits (SPEC §6 "Availability under attack"): no address
// can take the port from the others.
//
// A plain cap on open connections (net.Server's `maxConnections`) turns
// descriptor exhaustion into a lock-out: whoever holds the cap's worth of
// connections — idle keep-alives, sockets that never send a byte — makes every
// other client's connection fail for as long as they keep reopening them. So:
//
// - per address: at most `maxConnectionsPerAddress` connections from one peer
//   address (an IPv6 client's /64, as the failure buckets count it); a new one
//   beyond it first closes that address's connection idle the longest, else
//   it is refused. Off (0) behind a proxy, whose address all clients share;
// - per process: at `maxConnections`, a new connection first closes the
//   connection idle the longest, whatever its address, and is refused only
//   when no connection is idle.
//
// Idle means nothing in progress: a socket that has not sent enough to be
// classified (HTTP/1.1 or HTTP/2), an HTTP/1.1 connection between requests
// with no byte of the next one read, an HTTP/2 session without an open
// stream. Connections are kept in the order they last became idle (a Map
// re-inserted on each transition), so the oldest idle one is the first idle
// entry: finding it skips only the busy ones.
//
// A refused connection gets a canned `503` with `Retry-After` (SPEC §6:
// every 503 carries it) and `Connection: close`, then a lingering close so the
// client can read it; at most MAX_LINGERING refusals linger at once, beyond
// that a refused socket is closed at once.

import type http2 from "node:http2";
import type net from "node:net";
import { canonicalIp, throttledNetwork } from "../util/ip-address.js";

export interface ConnectionLimitOptions {
  /** Open connections per process (≥ 1). */
  maxConnections: number;
  /** Open connections per peer address; 0 turns the per-address cap off. */
  maxConnectionsPerAddress: number;
  /** Whether an HTTP/2 session has no open stream (http2-limits.ts knows). */
  sessionIsIdle(session: http2.ServerHttp2Session): boolean;
}

export interface ConnectionLimits {
  /**
   * Called for every accepted socket, before anything is read. Makes room by
   * closing an idle connection when a cap is reached; returns false (and
   * answers and closes the socket) when there is none to close.
   */
  admit(socket: net.Socket): boolean;
  /** The socket was handed to the HTTP/1.1 server: busy until its first response ends. */
  servedAsHttp1(socket: net.Socket): void;
  /** The socket was handed to the HTTP/2 server and became `session`. */
  servedAsHttp2(socket: net.Socket, session: http2.ServerHttp2Session): void;
  /** HTTP/1.1: a request was parsed on `socket` (its response is pending). */
  requestStarted(socket: net.Socket): void;
  /** HTTP/1.1: a response on `socket` ended (finished or aborted). */
  responseEnded(socket: net.Socket): void;
  /** HTTP/2: `session` has no open stream any more. */
  sessionIdle(session: http2.ServerHttp2Session): void;
  /** The address `socket` counts against (undefined while the per-address cap is off). */
  addressOf(socket: net.Socket): string | undefined;
  /** Connections tracked now. */
  size(): number;
  /** What the limits did so far (tests, metrics). */
  readonly counts: { refusedConnections: number; evictedConnections: number };
}

/** What a refused connection reads (HTTP/1.1; an HTTP/2 client sees a protocol error, as it would a reset). */
const REFUSAL_BODY = JSON.stringify({
  error: "temporarily_unavailable",
  error_description: "Too many connections",
});
const REFUSAL = Buffer.from(
  "HTTP/1.1 503 Service Unavailable\r\n" +
    "Content-Type: application/json\r\n" +
    `Content-Length: ${Buffer.byteLength(REFUSAL_BODY)}\r\n` +
    "Retry-After: 1\r\n" +
    "Connection: close\r\n\r\n" +
    REFUSAL_BODY,
  "latin1",
);
/** Refused sockets kept open at once so their client reads the 503; more are closed at once. */
const MAX_LINGERING = 64;
/** How long a refused socket may linger. */
const REFUSAL_LINGER_MS = 1_000;
/** How long an evicted HTTP/2 session may take to close after its GOAWAY. */
const GOAWAY_GRACE_MS = 1_000;

/** What a connection is so far: not yet classified, or served by one of the two servers. */
type Kind = "sniffing" | "http1" | "http2";

interface Entry {
  socket: net.Socket;
  /** The address it counts against. */
  address: string;
  kind: Kind;
  session?: http2.ServerHttp2Session;
  /** HTTP/1.1: responses pending. */
  pending: number;
  /** HTTP/1.1: `socket.bytesRead` when it last became idle (-1: not yet). */
  idleAtBytes: number;
}

const kEntry = Symbol("connectionLimits.entry");
type TrackedSocket = net.Socket & { [kEntry]?: Entry };
type TrackedSession = http2.ServerHttp2Session & { [kEntry]?: Entry };

export function createConnectionLimits(options: ConnectionLimitOptions): ConnectionLimits {
  const { maxConnections, maxConnectionsPerAddress, sessionIsIdle } = options;
  /** Every tracked connection, in the order it last became idle (oldest first). */
  const all = new Map<net.Socket, Entry>();
  /** The same entries per address (only while the per-address cap is on). */
  const byAddress = new Map<string, Map<net.Socket, Entry>>();
  const counts = { refusedConnections: 0, evictedConnections: 0 };
  let lingering = 0;

  function isIdle(entry: Entry): boolean {
    switch (entry.kind) {
      case "sniffing":
        return true;
      case "http1":
        return entry.pending === 0 && entry.socket.bytesRead === entry.idleAtBytes;
      case "http2":
        return entry.session === undefined || entry.session.closed || sessionIsIdle(entry.session);
    }
  }

  function oldestIdle(entries: Map<net.Socket, Entry>): Entry | undefined {
    for (const entry of entries.values()) if (isIdle(entry)) return entry;
    return undefined;
  }

  /** Moves `entry` to the young end: it just became idle. */
  function touch(entry: Entry): void {
    if (all.delete(entry.socket)) all.set(entry.socket, entry);
    const mine = byAddress.get(entry.address);
    if (mine?.delete(entry.socket)) mine.set(entry.socket, entry);
  }

  function forget(entry: Entry): void {
    all.delete(entry.socket);
    const mine = byAddress.get(entry.address);
    if (mine === undefined) return;
    mine.delete(entry.socket);
    if (mine.size === 0) byAddress.delete(entry.address);
  }

  function onSocketClose(this: TrackedSocket): void {
    const entry = this[kEntry];
    if (entry !== undefined) forget(entry);
  }

  /** Closes an idle connection to make room; it stops counting at once. */
  function evict(entry: Entry): void {
    counts.evictedConnections += 1;
    forget(entry);
    const session = entry.session;
    if (session !== undefined && !session.destroyed) {
      // GOAWAY: a stream the client opened meanwhile is refused as unprocessed
      // (RFC 9113 §6.8), which clients retry on a new connection.
      session.close();
      setTimeout(() => session.destroy(), GOAWAY_GRACE_MS).unref();
    } else {
      entry.socket.destroy();
    }
  }

  function refuse(socket: net.Socket): void {
    counts.refusedConnections += 1;
    if (lingering >= MAX_LINGERING) {
      socket.destroy();
      return;
    }
    lingering += 1;
    socket.on("error", () => socket.destroy());
    socket.once("close", () => {
      lingering -= 1;
    });
    // Read and drop whatever the client sends, so closing does not reset the
    // connection before the client has read the answer.
    socket.resume();
    socket.end(REFUSAL);
    socket.once("end", () => socket.destroy());
    setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
  }

  function peerAddress(socket: net.Socket): string {
    const ip = canonicalIp(socket.remoteAddress ?? "");
    return ip === undefined ? "unknown" : throttledNetwork(ip);
  }

  return {
    counts,
    size: () => all.size,

    addressOf(socket) {
      if (maxConnectionsPerAddress === 0) return undefined;
      return (socket as TrackedSocket)[kEntry]?.address;
    },

    admit(socket) {
      const address = maxConnectionsPerAddress > 0 ? peerAddress(socket) : "";
      let mine: Map<net.Socket, Entry> | undefined;
      if (maxConnectionsPerAddress > 0) {
        mine = byAddress.get(address);
        if (mine !== undefined && mine.size >= maxConnectionsPerAddress) {
          const victim = oldestIdle(mine);
          if (victim === undefined) {
            refuse(socket);
            return false;
          }
          evict(victim);
        }
      }
      if (all.size >= maxConnections) {
        const victim = oldestIdle(all);
        if (victim === undefined) {
          refuse(socket);
          return false;
        }
        evict(victim);
      }
      const entry: Entry = { socket, address, kind: "sniffing", pending: 0, idleAtBytes: -1 };
      (socket as TrackedSocket)[kEntry] = entry;
      all.set(socket, entry);
      if (maxConnectionsPerAddress > 0) {
        mine = byAddress.get(address);
        if (mine === undefined) {
          mine = new Map();
          byAddress.set(address, mine);
        }
        mine.set(socket, entry);
      }
      socket.once("close", onSocketClose);
      return true;
    },

    servedAsHttp1(socket) {
      const entry = (socket as TrackedSocket)[kEntry];
      if (entry !== undefined) entry.kind = "http1";
    },

    servedAsHttp2(socket, session) {
      const entry = (socket as TrackedSocket)[kEntry];
      if (entry === undefined) return;
      entry.kind = "http2";
      entry.session = session;
      (session as TrackedSession)[kEntry] = entry;
    },

    requestStarted(socket) {
      const entry = (socket as TrackedSocket)[kEntry];
      if (entry !== undefined) entry.pending += 1;
    },

    responseEnded(socket) {
      const entry = (socket as TrackedSocket)[kEntry];
      if (entry === undefined || entry.pending === 0) return;
      entry.pending -= 1;
      if (entry.pending > 0) return;
      entry.idleAtBytes = socket.bytesRead;
      touch(entry);
    },

    sessionIdle(session) {
      const entry = (session as TrackedSession)[kEntry];
      if (entry !== undefined) touch(entry);
    },
  };
}
