import { Code, ConnectError, createConnectRouter } from "@connectrpc/connect";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import {
  type ConnectNodeAdapterOptions,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { HttpRequest, HttpResponse } from "../server/http-types.js";
import { callValuesFor } from "./call-record.js";
import type { ServeWithConnect, UnaryFastPath } from "./unary-fast-path.js";

/** Serves every RPC; `rpcPaths` names them (e.g. `/token.v1.TokenService/VerifyMfaOtp`). */
export type ConnectAdapter = ((req: HttpRequest, res: HttpResponse) => void) & {
  readonly rpcPaths: ReadonlySet<string>;
};

/**
 * connect-node's `connectNodeAdapter`, plus one correction. connect-es 2.1
 * reports a request body that is not valid protobuf as `Internal` ("parse
 * binary: …", protocol/serialization.js), and parses it before any
 * interceptor runs. SPEC §5 wants every undecodable request to be
 * `InvalidArgument` (as connect-es already does for bad JSON), so the
 * universal response is corrected here, per protocol:
 * - Connect unary: HTTP 500 `{"code":"internal"}` → 400 `invalid_argument`;
 * - gRPC: `grpc-status: 13` in the trailers → 3;
 * - gRPC-Web: the same inside the trailer frame of the body.
 * Only responses that already are such a failure are touched; a normal
 * response costs one status check (and, on gRPC-Web, one byte per chunk).
 * Written by hand because connect-es offers no hook for it.
 *
 * `fastPaths` serve the plain form of their RPC first (unary-fast-path.ts);
 * whatever they decline, or cannot decode, reaches connect-es.
 */
export function createConnectAdapter(
  options: ConnectNodeAdapterOptions,
  fastPaths: UnaryFastPath[] = [],
  /** Answers a path that is no RPC (the REST 404). */
  notFound: (req: HttpRequest, res: HttpResponse) => void = (_req, res) => {
    res.writeHead(404);
    res.end();
  },
): ConnectAdapter {
  const router = createConnectRouter(options);
  options.routes(router);
  const handlers = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));
  const fast = new Map(fastPaths.map((path) => [path.path, path]));

  const serveWithConnect: ServeWithConnect = (req, res, body) => {
    const handler = handlers.get(pathOf(req.url ?? ""));
    if (handler === undefined) {
      notFound(req, res);
      return;
    }
    const request = universalRequestFromNodeRequest(
      req as never,
      res as never,
      undefined,
      callValuesFor(res),
    );
    handler(body === undefined ? request : { ...request, body })
      .then(correctParseFailure)
      .then((response) => universalResponseToNodeResponse(response, res as never))
      .catch((reason: unknown) => {
        // Client went away mid-response: nothing left to answer.
        if (ConnectError.from(reason).code === Code.Aborted) return;
        res.destroy();
      });
  };

  const serve = (req: HttpRequest, res: HttpResponse) => {
    const path = fast.get(pathOf(req.url ?? ""));
    if (path?.serve(req, res, serveWithConnect)) return;
    serveWithConnect(req, res);
  };
  return Object.assign(serve, { rpcPaths: new Set(handlers.keys()) });
}

function pathOf(url: string): string {
  const query = url.indexOf("?");
  return query < 0 ? url : url.slice(0, query);
}

const PARSE_FAILURE = "parse binary:";
const GRPC_INTERNAL = "13";
const GRPC_INVALID_ARGUMENT = "3";
/** gRPC-Web trailer frames carry this flag (connect-es protocol-grpc-web/trailer.js). */
const GRPC_WEB_TRAILER_FLAG = 0x80;

async function correctParseFailure(
  response: UniversalServerResponse,
): Promise<UniversalServerResponse> {
  const contentType = response.header?.get("content-type") ?? "";
  if (response.status === 500 && response.body !== undefined) return rewriteConnectError(response);
  const trailer = response.trailer;
  if (
    trailer?.get("grpc-status") === GRPC_INTERNAL &&
    decodeURIComponent(trailer.get("grpc-message") ?? "").startsWith(PARSE_FAILURE)
  ) {
    trailer.set("grpc-status", GRPC_INVALID_ARGUMENT);
  }
  if (contentType.startsWith("application/grpc-web") && response.body !== undefined) {
    return { ...response, body: rewriteGrpcWebTrailer(response.body) };
  }
  return response;
}

/** A Connect unary error body is small and complete: read it, correct it, resend it. */
async function rewriteConnectError(
  response: UniversalServerResponse,
): Promise<UniversalServerResponse> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body ?? []) chunks.push(chunk);
  let body = Buffer.concat(chunks);
  let status = response.status;
  try {
    const error = JSON.parse(body.toString("utf8")) as { code?: string; message?: string };
    if (error.code === "internal" && error.message?.startsWith(PARSE_FAILURE)) {
      status = 400;
      body = Buffer.from(JSON.stringify({ ...error, code: "invalid_argument" }), "utf8");
    }
  } catch {
    // Not a Connect JSON error body: pass it on unchanged.
  }
  const header = new Headers(response.header);
  if (header.has("content-length")) header.set("content-length", String(body.length));
  return { ...response, status, header, body: oneChunk(body) };
}

async function* oneChunk(chunk: Uint8Array): AsyncIterable<Uint8Array> {
  yield chunk;
}

async function* rewriteGrpcWebTrailer(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    if (chunk[0] !== GRPC_WEB_TRAILER_FLAG || chunk.length < 5) {
      yield chunk;
      continue;
    }
    const text = Buffer.from(chunk.subarray(5)).toString("utf8");
    const message = /grpc-message: ([^\r]*)/.exec(text)?.[1] ?? "";
    if (
      !/grpc-status: 13\r\n/.test(text) ||
      !decodeURIComponent(message).startsWith(PARSE_FAILURE)
    ) {
      yield chunk;
      continue;
    }
    const data = Buffer.from(text.replace("grpc-status: 13\r\n", "grpc-status: 3\r\n"), "utf8");
    const frame = Buffer.alloc(5 + data.length);
    frame[0] = GRPC_WEB_TRAILER_FLAG;
    frame.writeUInt32BE(data.length, 1);
    data.copy(frame, 5);
    yield frame;
  }
}
