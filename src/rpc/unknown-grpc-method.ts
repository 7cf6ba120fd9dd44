import type { OutgoingHttpHeaders } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import { Code } from "@connectrpc/connect";
import { accessRecordOf } from "../observability/access-record.js";
import type { HttpRequest, HttpResponse } from "../server/http-types.js";

/** `application/grpc`, `application/grpc+proto`, `application/grpc-web+json`, … */
const GRPC_CONTENT_TYPE = /^application\/grpc(-web(-text)?)?(\+[a-z]+)?(;.*)?$/i;
/** Bytes of a path echoed in `grpc-message` (the rest is cut: an unknown path is the caller's text). */
const MAX_ECHOED_PATH = 200;

/** The gRPC or gRPC-Web content type of a request, or undefined for anything else (Connect, REST). */
export function grpcContentTypeOf(req: HttpRequest): string | undefined {
  const type = req.headers["content-type"];
  return typeof type === "string" && GRPC_CONTENT_TYPE.test(type) ? type : undefined;
}

/**
 * Answers a gRPC or gRPC-Web call to a method this server does not serve as
 * gRPC servers do: HTTP 200 with `grpc-status: 12` (UNIMPLEMENTED) in a
 * "Trailers-Only" response (gRPC over HTTP/2, "Responses"; SPEC §2). grpc-js,
 * grpc-go and grpcio read the status from there; an HTTP 404 would reach them
 * as a transport failure. Written by hand: connect-es answers only the paths
 * of the services it was given and leaves the others to the caller.
 * `knownServices` tells "unknown method" from "unknown service", as grpc-go's
 * messages do.
 */
export function sendUnknownGrpcMethod(
  req: HttpRequest,
  res: HttpResponse,
  contentType: string,
  knownServices: ReadonlySet<string>,
): void {
  req.resume();
  const path = (req.url ?? "/").split("?")[0] ?? "/";
  const [service = "", method = ""] = path.slice(1).split("/");
  const message = knownServices.has(service)
    ? `unknown method ${method} for service ${service}`
    : `unknown service ${service}`;
  const record = accessRecordOf(res);
  if (record !== undefined) record.rpcCode = Code.Unimplemented;
  const web = /^application\/grpc-web/i.test(contentType);
  const headers = {
    // The request's own type: a gRPC-Web text client must be answered in text.
    "content-type": web ? (contentType.split(";")[0] ?? contentType) : "application/grpc",
    "grpc-status": String(Code.Unimplemented),
    "grpc-message": percentEncodeGrpcMessage(message),
  };
  if ("stream" in res) {
    // Trailers-Only on HTTP/2 is one HEADERS frame that ends the stream; the
    // compatibility API's writeHead + end sends an empty DATA frame after it,
    // which grpc-js reads as "Call ended without gRPC status" (INTERNAL).
    const h2 = res as Http2ServerResponse;
    h2.stream.respond({ ...h2.getHeaders(), ...headers, ":status": 200 } as OutgoingHttpHeaders, {
      endStream: true,
    });
    // The stream is done; ending the response as well marks it complete (not
    // aborted) for the access log and the duration histogram.
    h2.end();
    return;
  }
  res.writeHead(200, { ...headers, "content-length": "0" });
  res.end();
}

/**
 * gRPC's `grpc-message` encoding: bytes outside printable ASCII (0x20–0x7E)
 * and `%` itself become `%XX` (gRPC over HTTP/2, "Responses").
 */
function percentEncodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message.slice(0, MAX_ECHOED_PATH), "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}
