import type { Context, Span } from "@opentelemetry/api";
import type { HttpResponse } from "../server/http-types.js";

/** The wire a request came in on (all of them on the one port). */
export type Surface = "rest" | "connect" | "grpc" | "grpc-web";

/**
 * What one request's access-log line, duration metric and server span are
 * made of. Created where a request enters (request-observer.ts) and attached
 * to its response, so the layers that learn something on the way fill it
 * in: the REST error renderer (`error`), the RPC interceptor (`rpcCode`,
 * `error`), the token endpoint's client-authenticated hook (`clientId`).
 * Nothing secret goes in (no token, code, secret or body).
 */
export interface AccessRecord {
  readonly requestId: string;
  /** The request method, or OTHER when not a standard one (it is a client's string). */
  readonly method: string;
  readonly surface: Surface;
  /** The REST route template or the RPC method path; "unmatched" for any other path. */
  readonly route: string;
  /** process.hrtime.bigint() when the request arrived. */
  readonly startNs: bigint;
  /** From a valid W3C `traceparent`, or the server span's when tracing is on. */
  traceId: string | undefined;
  /** The RPC's code once an implementation answered (0: OK). */
  rpcCode?: number;
  /** The OAuth `error` code of the answer, when it is an error. */
  error?: string;
  /** The client that authenticated (RFC 6749 §2.3), when one did. */
  clientId?: string;
  /** Tracing on: the request's server span and the context holding it. */
  span?: Span;
  traceContext?: Context;
}

const RECORD = Symbol("token-service.accessRecord");
type WithRecord = HttpResponse & { [RECORD]?: AccessRecord };

export function attachAccessRecord(res: HttpResponse, record: AccessRecord): void {
  (res as WithRecord)[RECORD] = record;
}

/** The record of the request this response answers (undefined outside the observed handler, e.g. in unit tests). */
export function accessRecordOf(res: HttpResponse): AccessRecord | undefined {
  return (res as WithRecord)[RECORD];
}

/** Remembers the OAuth error a response carries. */
export function noteError(res: HttpResponse, error: string): void {
  const record = (res as WithRecord)[RECORD];
  if (record !== undefined) record.error = error;
}

/** Remembers which client authenticated. */
export function noteClient(record: AccessRecord | undefined, clientId: string): void {
  if (record !== undefined) record.clientId = clientId;
}
