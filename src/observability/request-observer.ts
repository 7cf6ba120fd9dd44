import type { Http2ServerResponse } from "node:http2";
import {
  type Attributes,
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_RPC_METHOD,
  ATTR_RPC_STATUS_CODE,
  ATTR_RPC_SYSTEM_NAME,
} from "@opentelemetry/semantic-conventions";
import type { HttpRequest, HttpResponse, RequestHandler } from "../server/http-types.js";
import type { AccessLog, RequestEnd } from "./access-log.js";
import { codeName } from "./access-log.js";
import {
  type AccessRecord,
  accessRecordOf,
  attachAccessRecord,
  type Surface,
} from "./access-record.js";
import type { Metrics } from "./metrics.js";
import { runInRequestScope } from "./request-context.js";
import { requestIdOf } from "./request-id.js";
import { activeTracer, traceIdOf } from "./tracing.js";

export interface RequestObserverDeps {
  metrics: Metrics;
  /** Off (`ACCESS_LOG=false`): no line is written; ids, metrics and spans stay. */
  accessLog: AccessLog | undefined;
  /** The REST route template a path belongs to (e.g. `/mfa/authenticators/{id}`), if any. */
  restRouteOf(path: string): string | undefined;
  /** Every RPC method path served (e.g. `/token.v1.TokenService/VerifyMfaOtp`). */
  rpcPaths: ReadonlySet<string>;
}

/** Labels and fields never take a caller's raw path or method: both are unbounded strings. */
const UNMATCHED = "unmatched";
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]);
/** The client closed the connection before a response was sent (nginx's convention). */
const CLIENT_CLOSED = 499;
/**
 * RPC codes that are the server's fault (OpenTelemetry's gRPC conventions):
 * Unknown, DeadlineExceeded, Unimplemented, Internal, Unavailable, DataLoss.
 */
const SERVER_FAULT_CODES = new Set([2, 4, 12, 13, 14, 15]);

/**
 * Wraps the one request handler of every surface (REST, Connect, gRPC,
 * gRPC-Web) with what each request gets once: a request id (the caller's
 * sane `x-request-id`, else a new one), echoed as `x-request-id` on every
 * answer, errors and gRPC included; an AccessRecord the layers below fill
 * in; the in-flight gauge; and, when the response is done, the duration
 * histogram, the access-log line and (tracing on) the end of the server
 * span. The span, when tracing is on, continues the caller's W3C
 * `traceparent` and is the active context while the request is handled, so
 * store round trips and signing become its children.
 *
 * Per request this costs a few object fields, one header, one `close`
 * listener (a shared function, no closure), two gauge updates and one
 * histogram observation; with ACCESS_LOG on, one log line.
 */
export function observeRequests(
  handler: RequestHandler,
  deps: RequestObserverDeps,
): RequestHandler {
  const { metrics, accessLog } = deps;

  function onClose(this: HttpResponse): void {
    const record = accessRecordOf(this);
    if (record === undefined) return;
    const aborted = !this.writableEnded;
    const status = this.headersSent ? this.statusCode : CLIENT_CLOSED;
    const code = rpcCodeOf(this, record);
    const durationNs = process.hrtime.bigint() - record.startNs;
    const end: RequestEnd = {
      status,
      code,
      durationUs: Number(durationNs / 1000n),
      aborted,
    };
    metrics.inFlight(record.surface, -1);
    metrics.observeRequest(
      record.surface,
      record.route,
      outcomeOf(record, end),
      Number(durationNs) / 1e9,
    );
    accessLog?.write(record, end);
    if (record.span !== undefined) endServerSpan(record, end);
  }

  return (req, res) => {
    const startNs = process.hrtime.bigint();
    const path = pathOf(req.url ?? "/");
    const restRoute = deps.restRouteOf(path);
    const rpc = restRoute === undefined && deps.rpcPaths.has(path);
    const surface = surfaceOf(restRoute !== undefined, rpc, req.headers["content-type"]);
    const method = METHODS.has(req.method ?? "") ? (req.method as string) : "OTHER";
    const record: AccessRecord = {
      requestId: requestIdOf(req.headers["x-request-id"]),
      method,
      surface,
      route: restRoute ?? (rpc ? path : UNMATCHED),
      startNs,
      traceId: traceIdOf(req.headers.traceparent),
    };
    attachAccessRecord(res, record);
    res.setHeader("x-request-id", record.requestId);
    metrics.inFlight(surface, 1);
    res.on("close", onClose);

    const tracer = activeTracer();
    if (tracer === undefined) {
      // Every log line written while serving it carries the request id.
      runInRequestScope(record, handler, req, res);
      return;
    }
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = tracer.startSpan(
      spanNameOf(record),
      { kind: SpanKind.SERVER, attributes: spanAttributesOf(req, record) },
      parent,
    );
    record.span = span;
    record.traceId = span.spanContext().traceId;
    record.traceContext = trace.setSpan(parent, span);
    context.with(record.traceContext, runInRequestScope, undefined, record, handler, req, res);
  };
}

function pathOf(url: string): string {
  const query = url.indexOf("?");
  return query < 0 ? url : url.slice(0, query);
}

/** REST by route; otherwise the RPC protocol its content type names (Connect is the rest). */
function surfaceOf(rest: boolean, rpc: boolean, contentType: string | undefined): Surface {
  if (rest) return "rest";
  const type = contentType?.toLowerCase() ?? "";
  if (type.startsWith("application/grpc-web")) return "grpc-web";
  if (type.startsWith("application/grpc")) return "grpc";
  return rpc ? "connect" : "rest";
}

/**
 * The RPC's code: gRPC over HTTP/2 from the trailers actually sent (also
 * right when connect-es refused the call before any implementation ran),
 * else what the interceptor recorded.
 */
function rpcCodeOf(res: HttpResponse, record: AccessRecord): number | undefined {
  if (record.surface === "rest") return undefined;
  if (record.surface === "grpc" && "stream" in res) {
    const sent = (res as Http2ServerResponse).stream?.sentTrailers?.["grpc-status"];
    if (sent !== undefined) return Number(sent);
  }
  return record.rpcCode;
}

/** The duration histogram's outcome label: a closed set. */
function outcomeOf(record: AccessRecord, end: RequestEnd): string {
  if (record.error !== undefined) return record.error;
  if (end.aborted) return "aborted";
  if (end.code !== undefined && end.code !== 0) return codeName(end.code);
  if (end.status >= 400) return `http_${end.status}`;
  return "ok";
}

/** OpenTelemetry's names: `{method} {route}` for HTTP, `{package.Service}/{Method}` for RPC. */
function spanNameOf(record: AccessRecord): string {
  if (record.route === UNMATCHED) return record.method;
  return record.surface === "rest" ? `${record.method} ${record.route}` : record.route.slice(1);
}

function spanAttributesOf(req: HttpRequest, record: AccessRecord): Attributes {
  const attributes: Attributes = {
    [ATTR_HTTP_REQUEST_METHOD]: record.method === "OTHER" ? "_OTHER" : record.method,
    [ATTR_NETWORK_PROTOCOL_VERSION]: req.httpVersionMajor === 2 ? "2" : req.httpVersion,
    "token_service.request_id": record.requestId,
    "token_service.surface": record.surface,
  };
  if (record.surface === "rest") {
    if (record.route !== UNMATCHED) attributes[ATTR_HTTP_ROUTE] = record.route;
  } else {
    attributes[ATTR_RPC_SYSTEM_NAME] = record.surface === "connect" ? "connectrpc" : "grpc";
    attributes[ATTR_RPC_METHOD] = record.route === UNMATCHED ? "_OTHER" : record.route.slice(1);
  }
  return attributes;
}

function endServerSpan(record: AccessRecord, end: RequestEnd): void {
  const span = record.span;
  if (span === undefined) return;
  span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, end.status);
  if (end.code !== undefined) {
    span.setAttribute(ATTR_RPC_STATUS_CODE, codeName(end.code).toUpperCase());
  }
  if (record.error !== undefined) span.setAttribute("oauth.error", record.error);
  if (record.clientId !== undefined) span.setAttribute("oauth.client_id", record.clientId);
  // Server spans are errors only for the server's faults (5xx, or the RPC codes above).
  const fault = end.status >= 500 || (end.code !== undefined && SERVER_FAULT_CODES.has(end.code));
  if (fault) {
    span.setAttribute(
      ATTR_ERROR_TYPE,
      record.error ?? (end.code !== undefined ? codeName(end.code) : String(end.status)),
    );
    span.setStatus({ code: SpanStatusCode.ERROR });
  } else if (end.aborted) {
    span.setAttribute(ATTR_ERROR_TYPE, "aborted");
  }
  span.end();
}
