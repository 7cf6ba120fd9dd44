/**
 * A raw HTTP/2 client for attacks a well-behaved client library will not
 * make: thousands of streams opened without their bodies (ignoring the
 * server's SETTINGS_MAX_CONCURRENT_STREAMS), header blocks left unfinished,
 * sessions opened and left idle. It writes frames by hand (RFC 9113 §4.1) and
 * only counts what the server sends back; it never decodes header blocks.
 * Loopback only.
 */
import { Buffer } from "node:buffer";
import { once } from "node:events";
import net from "node:net";

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** RFC 9113 §6 frame types. */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** RFC 9113 §7 error codes. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  CANCEL: 0x8,
  REFUSED_STREAM: 0x7,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;

export function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** An HPACK string literal without Huffman coding (RFC 7541 §5.2); lengths under 127 only. */
function hpackString(value: string): Buffer {
  const bytes = Buffer.from(value, "latin1");
  if (bytes.length >= 127) throw new Error("hpackString: value too long for this encoder");
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

/**
 * A header block of "literal header field without indexing — new name"
 * representations (RFC 7541 §6.2.2): no dynamic table, so one block can be
 * sent on any number of streams.
 */
export function headerBlock(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    parts.push(Buffer.from([0x00]), hpackString(name), hpackString(value));
  }
  return Buffer.concat(parts);
}

export interface H2RawStats {
  /** Frames received, by type. */
  frames: Map<number, number>;
  /** RST_STREAM frames received, by error code. */
  resets: Map<number, number>;
  /** Streams the server answered with a HEADERS frame. */
  answered: Set<number>;
  /** Streams the server reset. */
  reset: Set<number>;
  goaway?: { lastStreamId: number; errorCode: number };
  /** ms since connect when the socket closed (undefined while open). */
  closedAfterMs?: number;
}

export interface H2RawConnection {
  socket: net.Socket;
  stats: H2RawStats;
  closed: Promise<void>;
  /** Preface + an empty SETTINGS frame. */
  start(): void;
  /** HEADERS on `streamId` (odd), END_HEADERS unless `endHeaders` is false, END_STREAM when `endStream`. */
  headers(
    streamId: number,
    block: Buffer,
    options?: { endStream?: boolean; endHeaders?: boolean },
  ): Buffer;
  write(bytes: Buffer): boolean;
  destroy(): void;
}

/** Opens a TCP connection; frames are counted as they arrive; the server's SETTINGS are ACKed. */
export async function connectH2Raw(
  port: number,
  host = "127.0.0.1",
  localAddress?: string,
  /** Called with the socket at once, before it connects (to destroy a connect that hangs). */
  onSocket?: (socket: net.Socket) => void,
): Promise<H2RawConnection> {
  const socket = net.connect({
    port,
    host,
    ...(localAddress !== undefined ? { localAddress } : {}),
  });
  onSocket?.(socket);
  socket.setNoDelay(true);
  const openedAt = Date.now();
  const stats: H2RawStats = {
    frames: new Map(),
    resets: new Map(),
    answered: new Set(),
    reset: new Set(),
  };
  let pending: Buffer = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 9) {
      const length = pending.readUIntBE(0, 3);
      if (pending.length < 9 + length) break;
      const type = pending[3] as number;
      const flags = pending[4] as number;
      const streamId = pending.readUInt32BE(5) & 0x7fffffff;
      const payload = pending.subarray(9, 9 + length);
      pending = pending.subarray(9 + length);
      stats.frames.set(type, (stats.frames.get(type) ?? 0) + 1);
      if (type === FrameType.SETTINGS && (flags & FLAG_ACK) === 0) {
        if (!socket.destroyed && !socket.writableEnded) {
          socket.write(frame(FrameType.SETTINGS, FLAG_ACK, 0, Buffer.alloc(0)));
        }
      } else if (type === FrameType.RST_STREAM && payload.length >= 4) {
        const code = payload.readUInt32BE(0);
        stats.resets.set(code, (stats.resets.get(code) ?? 0) + 1);
        stats.reset.add(streamId);
      } else if (type === FrameType.HEADERS) {
        stats.answered.add(streamId);
      } else if (type === FrameType.GOAWAY && payload.length >= 8) {
        stats.goaway = {
          lastStreamId: payload.readUInt32BE(0) & 0x7fffffff,
          errorCode: payload.readUInt32BE(4),
        };
      }
    }
  });
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => {
    socket.once("close", () => {
      stats.closedAfterMs = Date.now() - openedAt;
      resolve();
    });
  });
  // A socket destroyed while connecting emits 'close' without an 'error'.
  await Promise.race([
    once(socket, "connect"),
    closed.then(() => {
      throw new Error("closed before connecting");
    }),
  ]);
  return {
    socket,
    stats,
    closed,
    start() {
      socket.write(Buffer.concat([PREFACE, frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0))]));
    },
    headers(streamId, block, options = {}) {
      const flags =
        (options.endStream ? FLAG_END_STREAM : 0) |
        (options.endHeaders === false ? 0 : FLAG_END_HEADERS);
      return frame(FrameType.HEADERS, flags, streamId, block);
    },
    write(bytes) {
      if (socket.destroyed || socket.writableEnded) return false;
      try {
        return socket.write(bytes);
      } catch {
        return false; // the server closed the connection (EPIPE)
      }
    },
    destroy: () => socket.destroy(),
  };
}

/** The header block of `POST path` with a form content type and a body announced but never sent. */
export function postWithoutBody(path = "/oauth/token"): Buffer {
  return headerBlock({
    ":method": "POST",
    ":scheme": "http",
    ":authority": "127.0.0.1",
    ":path": path,
    "content-type": "application/x-www-form-urlencoded",
  });
}

/**
 * Opens `count` streams of `block` on `connection`, END_STREAM never sent,
 * written in batches so the socket buffer does not hold them all at once.
 * Resolves when every frame is handed to the socket (or the socket closed).
 */
export async function openStreams(
  connection: H2RawConnection,
  count: number,
  block: Buffer,
  batch = 500,
): Promise<number> {
  let written = 0;
  for (let first = 0; first < count; first += batch) {
    const frames: Buffer[] = [];
    for (let i = first; i < Math.min(count, first + batch); i++) {
      frames.push(connection.headers(2 * i + 1, block));
    }
    if (connection.socket.destroyed) break;
    if (!connection.write(Buffer.concat(frames))) {
      // An abrupt close (EPIPE) rejects the wait: the socket is gone either way.
      await Promise.race([once(connection.socket, "drain").catch(() => {}), connection.closed]);
    }
    written += frames.length;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return written;
}
