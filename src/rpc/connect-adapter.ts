import { Code, ConnectError, createConnectRouter, createContextValues } from "@connectrpc/connect";
import {
  type ConnectNodeAdapterOptions,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { HttpRequest, HttpResponse } from "../server/http-types.js";
import { createJsonShapeScanner } from "../util/json-shape.js";
import { withCallRecord } from "./call-record.js";
import { correctDecodeFailure } from "./decode-failures.js";
import type { ServeWithConnect, UnaryFastPath } from "./unary-fast-path.js";
import { grpcContentTypeOf, sendUnknownGrpcMethod } from "./unknown-grpc-method.js";

/** Serves every RPC; `rpcPaths` names them (e.g. `/token.v1.TokenService/VerifyMfaOtp`). */
export type ConnectAdapter = ((req: HttpRequest, res: HttpResponse) => void) & {
  readonly rpcPaths: ReadonlySet<string>;
};

/**
 * connect-node's `connectNodeAdapter`, plus corrections of the answers
 * connect-es gives to requests it cannot decode (decode-failures.ts: binary
 * that is not protobuf and compressed envelopes without an encoding are
 * `InvalidArgument`; a JSON parameter named twice is `invalid_request`
 * "Duplicate parameter: …", as on REST).
 *
 * A gRPC or gRPC-Web call to a path no service answers is UNIMPLEMENTED
 * (unknown-grpc-method.ts); any other unknown path goes to `notFound`.
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
  const services = new Set(router.handlers.map((handler) => handler.service.typeName));
  const fast = new Map(fastPaths.map((path) => [path.path, path]));

  const serveWithConnect: ServeWithConnect = (req, res, body) => {
    const handler = handlers.get(pathOf(req.url ?? ""));
    if (handler === undefined) {
      // gRPC clients expect a gRPC status, Connect and REST callers row 19's 404.
      const grpcType = grpcContentTypeOf(req);
      if (grpcType === undefined) notFound(req, res);
      else sendUnknownGrpcMethod(req, res, grpcType, services);
      return;
    }
    const request = universalRequestFromNodeRequest(
      req as never,
      res as never,
      undefined,
      withCallRecord(options.contextValues?.(req) ?? createContextValues(), res),
    );
    const raw = body ?? request.body;
    const wire = jsonWireOf(req);
    const bounded =
      wire !== undefined && isAsyncIterable(raw)
        ? withJsonShapeBound(raw, wire === "enveloped")
        : body;
    handler(bounded === undefined ? request : { ...request, body: bounded })
      .then((response) => correctDecodeFailure(response, options.jsonOptions))
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

/** Connect unary JSON ("raw"), or Connect streaming, gRPC and gRPC-Web with the JSON codec ("enveloped"). */
function jsonWireOf(req: HttpRequest): "raw" | "enveloped" | undefined {
  const type = String(req.headers["content-type"] ?? "").toLowerCase();
  // A compressed body is not scanned (see SECURITY.md: its JSON is at most
  // the 64 KiB every message is decompressed to).
  const encoding = req.headers["content-encoding"];
  if (type.startsWith("application/json")) {
    return encoding === undefined || encoding === "identity" ? "raw" : undefined;
  }
  if (
    type.startsWith("application/connect+json") ||
    type.startsWith("application/grpc+json") ||
    type.startsWith("application/grpc-web+json")
  ) {
    return "enveloped";
  }
  return undefined;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array> {
  return typeof value === "object" && value !== null && Symbol.asyncIterator in value;
}

/** The 5-byte envelope header of the enveloped protocols: a flag and a 32-bit length. */
const ENVELOPE_HEADER = 5;

/**
 * The body, refused as it arrives once a JSON message nests too deeply or
 * names too many members (util/json-shape.ts): JSON.parse would spend
 * milliseconds on it. Enveloped bodies are scanned message by message,
 * envelope headers skipped.
 */
async function* withJsonShapeBound(
  body: AsyncIterable<Uint8Array>,
  enveloped: boolean,
): AsyncIterable<Uint8Array> {
  let scanner = createJsonShapeScanner();
  /** Enveloped: header bytes still expected, the header so far, message bytes still expected. */
  let header: number[] = [];
  let messageLeft = 0;
  let scanning = true;
  for await (const chunk of body) {
    let at = 0;
    while (at < chunk.length) {
      let part = chunk;
      if (enveloped) {
        if (messageLeft === 0) {
          header.push(chunk[at] as number);
          at += 1;
          if (header.length === ENVELOPE_HEADER) {
            messageLeft = Buffer.from(header).readUInt32BE(1);
            // A compressed message (flag bit 0) is not JSON until decompressed: not scanned.
            scanning = ((header[0] as number) & 1) === 0;
            header = [];
            scanner = createJsonShapeScanner();
          }
          continue;
        }
        part = chunk.subarray(at, Math.min(chunk.length, at + messageLeft));
        messageLeft -= part.length;
        at += part.length;
      } else {
        at = chunk.length;
      }
      const problem = scanning ? scanner.feed(part) : undefined;
      if (problem !== undefined) {
        throw new ConnectError(
          problem === "depth" ? "JSON nests too deeply" : "Too many parameters",
          Code.InvalidArgument,
        );
      }
    }
    yield chunk;
  }
}

function pathOf(url: string): string {
  const query = url.indexOf("?");
  return query < 0 ? url : url.slice(0, query);
}
