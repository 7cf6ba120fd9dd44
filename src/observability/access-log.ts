import { pino } from "pino";
import type { AccessRecord } from "./access-record.js";
import type { Logger } from "./logger.js";

/** How a request ended, as the observer measured it. */
export interface RequestEnd {
  /** The HTTP status sent (499 when the client went away before any response). */
  status: number;
  /** RPC surfaces: the Connect/gRPC code (0 = OK), when known. */
  code: number | undefined;
  durationUs: number;
  /** The client closed the connection before the response was complete. */
  aborted: boolean;
}

export interface AccessLog {
  write(record: AccessRecord, end: RequestEnd): void;
  /** Writes the lines still held for this event-loop turn (at shutdown). */
  flush(): void;
}

/** Connect's wire names of the codes (RPC code numbers are gRPC's). */
const CODE_NAMES = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

export function codeName(code: number): string {
  return CODE_NAMES[code] ?? String(code);
}

/** Access lines are written together, at most this long after the first of them… */
const FLUSH_MS = 10;
/** …or as soon as they reach this size. */
const FLUSH_BYTES = 64 * 1024;

/** What pino keeps about a logger that the line needs (exported as pino.symbols). */
interface PinoInternals {
  [pino.symbols.streamSym]: { write(line: string): unknown };
  [pino.symbols.timeSym]: () => string;
  [pino.symbols.chindingsSym]: string;
}

/**
 * One JSON line per request (`ACCESS_LOG`), at info, into the service
 * logger's destination (the same stream, so lines stay in order with the
 * others and tests capture them alike), framed as pino frames every line:
 * `{"level":30,"time":…,"service":"token-service",…,"msg":"request"}`, with
 * `event: "access"` so it can be filtered apart from security events.
 * Fields: request_id, trace_id (when known), method, surface, route,
 * status, code and grpc_status (RPC surfaces), error (the OAuth error
 * code), client_id (the authenticated client), duration_us, aborted (only
 * when true).
 *
 * Serialised here rather than by `logger.info(object)`: measured on this
 * project's verify path, pino's object serialisation with the logger's
 * redaction paths (every line of the service is redacted) cost about
 * 17 µs per line, against about 1 µs for this concatenation — and the
 * budget for the whole access log is 5 % of a verify (bench/access-log-cost.ts).
 * For the same reason lines are written together, within FLUSH_MS of the
 * first of them (or at FLUSH_BYTES): each write to pino's destination is a
 * hand-off to libuv's thread pool and a write(2), which cost more than the
 * line itself when done per request (about 17 µs each, measured). So an
 * access line can follow lines logged up to 10 ms after its request ended
 * (its `time` says when that was); `flush()` at shutdown writes what is held,
 * and a crash loses at most those 10 ms of access lines. Nothing here needs
 * redaction: every value is a closed set (method, surface, route, error,
 * code), a number, an id that is sane by construction (request_id:
 * request-id.ts; trace_id: 32 hex digits) or a registered client id (escaped
 * with JSON.stringify); no token, code, secret or body ever reaches it.
 */
export function createAccessLog(logger: Logger): AccessLog {
  const internals = logger as unknown as PinoInternals;
  const stream = internals[pino.symbols.streamSym];
  const time = internals[pino.symbols.timeSym];
  const bindings = internals[pino.symbols.chindingsSym];
  const info = logger.levels.values.info;
  let pending = "";
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (pending === "") return;
    const lines = pending;
    pending = "";
    stream.write(lines);
  };
  return {
    flush,
    write(record, end) {
      if (!logger.isLevelEnabled("info")) return;
      let line = `{"level":${info}${time()}${bindings},"event":"access","request_id":"${record.requestId}"`;
      if (record.traceId !== undefined) line += `,"trace_id":"${record.traceId}"`;
      line += `,"method":"${record.method}","surface":"${record.surface}","route":${JSON.stringify(record.route)},"status":${end.status}`;
      if (record.surface !== "rest" && end.code !== undefined) {
        line += `,"code":"${codeName(end.code)}"`;
        if (record.surface !== "connect") line += `,"grpc_status":${end.code}`;
      }
      if (record.error !== undefined) line += `,"error":"${record.error}"`;
      if (record.clientId !== undefined) line += `,"client_id":${JSON.stringify(record.clientId)}`;
      line += `,"duration_us":${end.durationUs}`;
      if (end.aborted) line += `,"aborted":true`;
      pending += `${line},"msg":"request"}\n`;
      if (pending.length >= FLUSH_BYTES) flush();
      else timer ??= setTimeout(flush, FLUSH_MS).unref();
    },
  };
}
