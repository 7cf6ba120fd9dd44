import { Code, ConnectError, createConnectRouter, createContextValues } from "@connectrpc/connect";
import {
  type ConnectNodeAdapterOptions,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { HttpRequest, HttpResponse } from "../server/http-types.js";
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
    handler(body === undefined ? request : { ...request, body })
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

function pathOf(url: string): string {
  const query = url.indexOf("?");
  return query < 0 ? url : url.slice(0, query);
}
