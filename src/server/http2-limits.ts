// Per-session and per-stream limits of the HTTP/2 side of the one-port server.
//
// node:http2 bounds neither how long a stream may wait for its request body
// nor how long a session may sit without streams, and its compat layer runs
// the request handler as soon as the headers arrive. A client can therefore
// open streams and never finish them, or keep sessions open doing nothing.
// This module adds what HTTP/1.1's server has (`requestTimeout`,
// `keepAliveTimeout`) and a cap on incomplete requests per session:
//
// - request timeout: a stream whose request (headers, then body up to
//   END_STREAM) is not complete `requestTimeoutMs` after it opened is answered
//   408 (or, when its response already started, cancelled) and reset. It
//   measures the request only: a stream whose request is complete may
//   respond for as long as it likes (grpc.health.v1 Watch streams for hours);
// - streams awaiting their body: at most `maxStreamsAwaitingBody` incomplete
//   requests per session, `maxStreamsAwaitingBodyPerAddress` per peer address
//   (when given) and `maxStreamsAwaitingBodyTotal` in the process; a stream
//   beyond any of them is refused with RST_STREAM REFUSED_STREAM (RFC 9113
//   §8.7: not processed, safe for the client to retry) before the handler
//   runs. The per-session cap defaults to the concurrent-streams limit:
//   clients (node:http2, grpc-js) send the HEADERS of a burst of calls before
//   their bodies, so a lower cap refuses legitimate bursts. The process-wide
//   cap is what bounds the memory many connections can hold; the per-address
//   share keeps one address from taking all of it (SPEC §6: one address's
//   open streams must not make another's requests fail);
// - idle timeout: a session with no open stream for `idleTimeoutMs` gets
//   GOAWAY and is closed (destroyed a second later if the client lingers).
//   Client PINGs and SETTINGS do not count as activity, so they cannot keep
//   an idle session open; an unfinished header block opens no stream, so it
//   does not either.
//
// One sweep timer per server checks the deadlines (every `checkIntervalMs`),
// so the per-request cost is one Map entry and one listener, no timer.

import http2 from "node:http2";

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** How long a session told to go away (GOAWAY) may linger before it is destroyed. */
const GOAWAY_GRACE_MS = 1_000;

export interface Http2LimitOptions {
  idleTimeoutMs: number;
  requestTimeoutMs: number;
  maxStreamsAwaitingBody: number;
  /** Incomplete requests in the whole process (all sessions). */
  maxStreamsAwaitingBodyTotal: number;
  /** Incomplete requests of all sessions from one address (0: no per-address share). */
  maxStreamsAwaitingBodyPerAddress?: number;
  /** Called when a session's last open stream closes (it is idle from then on). */
  onSessionIdle?: (session: http2.ServerHttp2Session) => void;
  /** Sweep period (default: a quarter of the shortest timeout, 50 ms to 1 s). */
  checkIntervalMs?: number;
}

export interface Http2Limits {
  /** Starts tracking a new session from `address` (the key of the per-address share). */
  addSession(session: http2.ServerHttp2Session, address?: string): void;
  /** True while `session` has no open stream. */
  isIdle(session: http2.ServerHttp2Session): boolean;
  /**
   * Call first for every request. Returns false when the stream was refused
   * (the handler must not run).
   */
  admit(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): boolean;
  /** Stops the sweep (at shutdown). */
  stop(): void;
  /** Counters for tests and metrics. */
  readonly counts: { refused: number; timedOut: number; idleClosed: number };
  /** Requests (streams) whose body has not ended yet, in the whole process. */
  awaitingBody(): number;
}

interface SessionState {
  /** The session (a closed stream no longer names it). */
  session: http2.ServerHttp2Session;
  /** Streams opened and not yet closed. */
  open: number;
  /** performance.now() when `open` last dropped to 0. */
  idleSince: number;
  /** Streams whose request may still be incomplete, with the time they opened (insertion order = age). */
  awaiting: Map<http2.ServerHttp2Stream, number>;
  /** Set once GOAWAY was sent for idleness. */
  goawayAt?: number;
  /** The peer address's count of incomplete requests (shared by its sessions). */
  share?: AddressShare;
}

/** Incomplete requests of one address, across its sessions. */
interface AddressShare {
  address: string;
  awaiting: number;
  sessions: number;
}

const kState = Symbol("http2Limits.session");
/** Set while the stream counts towards the process-wide number of incomplete requests. */
const kAwaiting = Symbol("http2Limits.awaiting");
type TrackedStream = http2.ServerHttp2Stream & { [kState]?: SessionState; [kAwaiting]?: boolean };

export function createHttp2Limits(options: Http2LimitOptions): Http2Limits {
  const { idleTimeoutMs, requestTimeoutMs, maxStreamsAwaitingBody, maxStreamsAwaitingBodyTotal } =
    options;
  const perAddress = options.maxStreamsAwaitingBodyPerAddress ?? 0;
  const shares = new Map<string, AddressShare>();
  const checkIntervalMs =
    options.checkIntervalMs ??
    Math.min(1_000, Math.max(50, Math.floor(Math.min(idleTimeoutMs, requestTimeoutMs) / 4)));
  const sessions = new Map<http2.ServerHttp2Session, SessionState>();
  const counts = { refused: 0, timedOut: 0, idleClosed: 0 };
  let sweep: NodeJS.Timeout | undefined;
  /** Streams whose request body has neither ended (read to its end) nor closed. */
  let awaitingTotal = 0;

  function onSessionClose(this: http2.ServerHttp2Session): void {
    const share = sessions.get(this)?.share;
    sessions.delete(this);
    if (share !== undefined) {
      share.sessions -= 1;
      if (share.sessions === 0) shares.delete(share.address);
    }
  }

  function onRequestEnd(this: TrackedStream): void {
    if (this[kAwaiting] !== true) return;
    this[kAwaiting] = false;
    awaitingTotal -= 1;
    const share = this[kState]?.share;
    if (share !== undefined) share.awaiting -= 1;
  }

  function onStreamClose(this: TrackedStream): void {
    onRequestEnd.call(this);
    const state = this[kState];
    if (state === undefined) return;
    state.awaiting.delete(this);
    state.open -= 1;
    if (state.open === 0) {
      state.idleSince = performance.now();
      options.onSessionIdle?.(state.session);
    }
  }

  /** The client has sent END_STREAM (read or not by the handler yet). */
  function requestComplete(stream: http2.ServerHttp2Stream): boolean {
    return stream.endAfterHeaders || stream.readableEnded || stream.state.remoteClose === 1;
  }

  function purgeComplete(state: SessionState): void {
    for (const stream of state.awaiting.keys()) {
      if (stream.closed || requestComplete(stream)) state.awaiting.delete(stream);
    }
  }

  function timeOut(stream: http2.ServerHttp2Stream): void {
    counts.timedOut += 1;
    if (stream.headersSent) {
      stream.close(NGHTTP2_CANCEL);
      return;
    }
    // As HTTP/1.1's requestTimeout: 408, then RST_STREAM NO_ERROR so the
    // client stops sending (RFC 9113 §8.1). close() sends the reset only once
    // the 408 is written. The handler, still waiting for the body, sees the
    // request end and its response calls become no-ops on the closed stream.
    stream.respond({ ":status": 408, "content-length": "0" }, { endStream: true });
    stream.close(NGHTTP2_NO_ERROR);
  }

  function check(): void {
    const now = performance.now();
    for (const [session, state] of sessions) {
      if (state.goawayAt !== undefined) {
        if (now - state.goawayAt >= GOAWAY_GRACE_MS && !session.destroyed) session.destroy();
        continue;
      }
      if (state.open === 0 && now - state.idleSince >= idleTimeoutMs) {
        counts.idleClosed += 1;
        state.goawayAt = now;
        session.close();
        continue;
      }
      for (const [stream, openedAt] of state.awaiting) {
        // Oldest first: stop at the first stream still within its time.
        if (now - openedAt < requestTimeoutMs) break;
        state.awaiting.delete(stream);
        if (!stream.closed && !requestComplete(stream)) timeOut(stream);
      }
    }
  }

  return {
    counts,
    awaitingBody: () => awaitingTotal,

    addSession(session, address) {
      let share: AddressShare | undefined;
      if (perAddress > 0 && address !== undefined) {
        share = shares.get(address);
        if (share === undefined) {
          share = { address, awaiting: 0, sessions: 0 };
          shares.set(address, share);
        }
        share.sessions += 1;
      }
      sessions.set(session, {
        session,
        open: 0,
        idleSince: performance.now(),
        awaiting: new Map(),
        ...(share !== undefined ? { share } : {}),
      });
      session.once("close", onSessionClose);
      if (sweep === undefined) sweep = setInterval(check, checkIntervalMs).unref();
    },

    isIdle(session) {
      const state = sessions.get(session);
      return state === undefined || state.open === 0;
    },

    admit(req) {
      const stream = req.stream as TrackedStream;
      const state = sessions.get(stream.session as http2.ServerHttp2Session);
      if (state === undefined) return true;
      if (!stream.endAfterHeaders) {
        if (state.awaiting.size >= maxStreamsAwaitingBody) purgeComplete(state);
        const share = state.share;
        if (
          state.awaiting.size >= maxStreamsAwaitingBody ||
          awaitingTotal >= maxStreamsAwaitingBodyTotal ||
          (share !== undefined && share.awaiting >= perAddress)
        ) {
          counts.refused += 1;
          stream.close(NGHTTP2_REFUSED_STREAM);
          return false;
        }
        state.awaiting.set(stream, performance.now());
        awaitingTotal += 1;
        if (share !== undefined) share.awaiting += 1;
        stream[kAwaiting] = true;
        stream.once("end", onRequestEnd);
      }
      state.open += 1;
      stream[kState] = state;
      stream.once("close", onStreamClose);
      return true;
    },

    stop() {
      clearInterval(sweep);
      sweep = undefined;
    },
  };
}
