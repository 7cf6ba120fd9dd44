import type { IncomingHttpHeaders } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import {
  create,
  type DescMessage,
  type DescMethodUnary,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, createContextValues } from "@connectrpc/connect";
import {
  type Compression,
  compressionNegotiate,
  createMethodSerializationLookup,
  type UniversalHandlerOptions,
  validateUniversalHandlerOptions,
} from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import type { HttpRequest, HttpResponse } from "../server/http-types.js";
import { readWholeBody } from "../server/read-body.js";
import { jsonShapeProblem } from "../util/json-shape.js";
import type { CallHeaders } from "./call-headers.js";
import { withCallRecord } from "./call-record.js";
import { type CallWrapper, FAST_PATH_WRAPPER } from "./oauth-error-interceptor.js";

/**
 * Hands a request to connect-es. `body` replaces the request stream when the
 * fast path already read (part of) it.
 */
export type ServeWithConnect = (
  req: HttpRequest,
  res: HttpResponse,
  body?: AsyncIterable<Uint8Array>,
) => void;

export interface UnaryFastPath {
  /** The RPC path it serves, e.g. `/token.v1.TokenService/VerifyMfaOtp`. */
  path: string;
  /**
   * Takes the request and returns true when it is in the plain form this
   * path serves; returns false, untouched, otherwise. Once taken, a body it
   * cannot decode still goes to `connect`, replayed.
   */
  serve(req: HttpRequest, res: HttpResponse, connect: ServeWithConnect): boolean;
  /** Calls answered here, and calls taken but then handed to connect-es (tests, debugging). */
  readonly counts: { served: number; handedOver: number };
}

/** The wire forms served here: Connect unary (JSON or binary) and gRPC over HTTP/2. */
type Wire = "connect-json" | "connect-proto" | "grpc";

const CONTENT_TYPES: Record<string, Wire> = {
  "application/json": "connect-json",
  "application/json; charset=utf-8": "connect-json",
  "application/proto": "connect-proto",
  "application/grpc": "grpc",
  "application/grpc+proto": "grpc",
};

/**
 * What one call produced: the serialized response or the error to render,
 * and the headers the implementation set (cache-control, dpop-nonce).
 */
type Outcome = { responseHeader: Map<string, string> } & (
  | { output: Uint8Array; error?: undefined }
  | { error: ConnectError }
);

/** gRPC length-prefixed message: flags byte + 4-byte big-endian length. */
const ENVELOPE_HEADER_BYTES = 5;
const ENVELOPE_COMPRESSED = 0x01;

/**
 * A unary RPC served without connect-es's per-call machinery, for the RPC on
 * every login (token.v1.TokenService/VerifyMfaOtp).
 *
 * Written by hand because connect-es has no lighter mode: each unary call
 * goes through universal request/response objects, async iterables, an
 * AbortController and the interceptor chain. On this project's bench
 * (README "Performance") that made a Connect call cost about twice the CPU
 * of the same call on REST and a gRPC call four times. This path does the
 * same work directly and reuses connect-es's own pieces for everything
 * protocol-specific: the method's serializers (so the same messages parse,
 * and the same ones fail), compression negotiation and codecs, the Connect
 * error JSON and HTTP status, and the gRPC trailer status with its
 * `grpc-status-details-bin`.
 *
 * It serves only the plain form of a call: POST, one of CONTENT_TYPES (gRPC
 * on HTTP/2 only), an uncompressed request, no timeout header. Anything
 * else — GET, gRPC-Web, a compressed or oversized body, a body that does
 * not decode, a malformed envelope — goes to connect-es, which answers it
 * exactly as before (the bytes already read are replayed). A differential
 * test (test/integration/unary-fast-path.test.ts) checks that both paths
 * answer the same requests with the same status, headers, body and trailers.
 */
export function createUnaryFastPath<I extends DescMessage, O extends DescMessage>(
  /** The adapter's options: the same handler options and per-call `contextValues`. */
  handlerOptions: Partial<UniversalHandlerOptions> &
    Pick<ConnectNodeAdapterOptions, "contextValues">,
  method: DescMethodUnary<I, O>,
  /** The implementation, as registered with connect-es. */
  implementation: (request: MessageShape<I>, context: CallHeaders) => Promise<MessageInitShape<O>>,
): UnaryFastPath {
  const options = validateUniversalHandlerOptions(handlerOptions);
  const call = withInterceptors(options.interceptors, method.name, implementation);
  const serialization = createMethodSerializationLookup(
    method,
    options.binaryOptions,
    options.jsonOptions,
    options,
  );

  const negotiate = (wire: Wire, headers: IncomingHttpHeaders) =>
    wire === "grpc"
      ? compressionNegotiate(
          options.acceptCompression,
          single(headers["grpc-encoding"]),
          single(headers["grpc-accept-encoding"]),
          "Grpc-Accept-Encoding",
        )
      : compressionNegotiate(
          options.acceptCompression,
          single(headers["content-encoding"]),
          single(headers["accept-encoding"]),
          "Accept-Encoding",
        );

  const respond = async (
    wire: Wire,
    res: HttpResponse,
    message: MessageShape<I>,
    requestHeaders: IncomingHttpHeaders,
    values: ContextValues,
    compression: Compression | null,
  ) => {
    const responseHeader = new Map<string, string>();
    const context: CallHeaders = {
      requestHeader: { get: (name) => single(requestHeaders[name.toLowerCase()]) },
      responseHeader: { set: (name, value) => void responseHeader.set(name.toLowerCase(), value) },
      values,
    };
    let outcome: Outcome;
    try {
      const result = await call(message, context);
      const output = serialization
        .getO(wire !== "connect-json")
        .serialize(create(method.output, result));
      outcome = { responseHeader, output };
    } catch (reason) {
      const error =
        reason instanceof ConnectError
          ? reason
          : new ConnectError("internal error", Code.Internal, undefined, undefined, reason);
      outcome = { responseHeader, error };
    }
    if (wire === "grpc") await respondGrpc(res, outcome, compression);
    else await respondConnect(wire, res, outcome, compression);
  };

  const respondConnect = async (
    wire: Wire,
    res: HttpResponse,
    outcome: Outcome,
    compression: Compression | null,
  ) => {
    // As connect-es's Connect unary handler (protocol-connect/handler-factory.js).
    const headers: Record<string, string> = {
      "content-type": wire === "connect-proto" ? "application/proto" : "application/json",
    };
    for (const [name, value] of outcome.responseHeader) headers[name] = value;
    let body: Uint8Array;
    let status = 200;
    if (outcome.error === undefined) {
      body = outcome.output;
    } else {
      status = codeToHttpStatus(outcome.error.code);
      headers["content-type"] = "application/json";
      outcome.error.metadata.forEach((value, name) => {
        headers[name] = value;
      });
      body = errorToJsonBytes(outcome.error, options.jsonOptions);
    }
    if (compression !== null && body.byteLength >= options.compressMinBytes) {
      body = await compression.compress(body);
      headers["content-encoding"] = compression.name;
    }
    headers["content-length"] = String(body.byteLength);
    res.writeHead(status, headers);
    res.end(body);
  };

  const respondGrpc = async (
    res: HttpResponse,
    outcome: Outcome,
    compression: Compression | null,
  ) => {
    // As connect-es's gRPC handler (protocol-grpc/handler-factory.js): headers,
    // at most one message, then the status in the trailers.
    const headers: Record<string, string> = { "content-type": "application/grpc+proto" };
    if (compression !== null) headers["grpc-encoding"] = compression.name;
    for (const [name, value] of outcome.responseHeader) headers[name] = value;
    const trailer = new Headers({ "grpc-status": "0" });
    let envelope: Buffer | undefined;
    if (outcome.error === undefined) {
      let flags = 0;
      let data = outcome.output;
      if (compression !== null && data.byteLength >= options.compressMinBytes) {
        data = await compression.compress(data);
        flags = ENVELOPE_COMPRESSED;
      }
      envelope = Buffer.allocUnsafe(ENVELOPE_HEADER_BYTES + data.byteLength);
      envelope[0] = flags;
      envelope.writeUInt32BE(data.byteLength, 1);
      envelope.set(data, ENVELOPE_HEADER_BYTES);
    } else {
      setTrailerStatus(trailer, outcome.error);
    }
    res.writeHead(200, headers);
    // gRPC is served here on HTTP/2 only (see serve).
    if (envelope !== undefined) (res as Http2ServerResponse).write(envelope);
    const trailers: Record<string, string> = {};
    trailer.forEach((value, name) => {
      trailers[name] = value;
    });
    res.addTrailers(trailers);
    res.end();
  };

  const counts = { served: 0, handedOver: 0 };

  return {
    path: `/${method.parent.typeName}/${method.name}`,
    counts,
    serve(req, res, connect) {
      if (req.method !== "POST") return false;
      const headers = req.headers;
      const wire = CONTENT_TYPES[String(headers["content-type"]).toLowerCase()];
      if (wire === undefined) return false;
      if (wire === "grpc" && req.httpVersionMajor !== 2) return false;
      if (headers["connect-timeout-ms"] !== undefined || headers["grpc-timeout"] !== undefined) {
        return false;
      }
      if (Number(headers["content-length"]) > options.readMaxBytes) return false;
      const compression = negotiate(wire, headers);
      if (compression.error !== undefined || compression.request !== null) return false;
      // As connect-node reads them: when the call starts, before its body.
      const values = withCallRecord(
        handlerOptions.contextValues?.(req) ?? createContextValues(),
        res,
      );

      const handOver = (body: AsyncIterable<Uint8Array>) => {
        counts.handedOver += 1;
        connect(req, res, body);
      };
      readWholeBody(req, options.readMaxBytes, {
        tooLarge: (readSoFar) => handOver(replay(readSoFar, req)),
        failed: () => res.destroy(),
        complete: (body) => {
          // Too deep or too wide to parse cheaply: connect-es refuses it (connect-adapter.ts).
          if (wire === "connect-json" && jsonShapeProblem(body) !== undefined) {
            handOver(replay([body]));
            return;
          }
          let message: MessageShape<I>;
          try {
            message = serialization
              .getI(wire !== "connect-json")
              .parse(wire === "grpc" ? singleEnvelope(body) : body);
          } catch {
            // connect-es answers undecodable input (and malformed envelopes) itself.
            handOver(replay([body]));
            return;
          }
          counts.served += 1;
          respond(wire, res, message, headers, values, compression.response).catch(() => {
            // The client went away mid-response: nothing left to answer.
            res.destroy();
          });
        },
      });
      return true;
    },
  };
}

/**
 * The same interceptors connect-es runs, in the same order (the first is the
 * outermost), applied through their CallWrapper form. An interceptor without
 * one cannot be honoured here, so the fast path refuses to start rather than
 * silently skip it.
 */
function withInterceptors<Req, Res>(
  interceptors: readonly unknown[],
  route: string,
  implementation: (request: Req, context: CallHeaders) => Promise<Res>,
): (request: Req, context: CallHeaders) => Promise<Res> {
  const wrappers: CallWrapper[] = interceptors.map((interceptor) => {
    const wrapper = (interceptor as { [FAST_PATH_WRAPPER]?: CallWrapper })[FAST_PATH_WRAPPER];
    if (wrapper === undefined) {
      throw new Error(
        "unary fast path: an interceptor has no CallWrapper form; serve this RPC through connect-es only",
      );
    }
    return wrapper;
  });
  return (request, context) =>
    wrappers.reduceRight<() => Promise<Res>>(
      (next, wrap) => () => wrap(route, next, context.values),
      () => implementation(request, context),
    )();
}

/** A node header as one string, repeated values joined as `Headers.get` joins them. */
function single(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? value.join(", ") : value;
}

/** The message inside exactly one uncompressed gRPC envelope; throws otherwise. */
function singleEnvelope(body: Buffer): Buffer {
  if (
    body.length < ENVELOPE_HEADER_BYTES ||
    body[0] !== 0 ||
    body.readUInt32BE(1) !== body.length - ENVELOPE_HEADER_BYTES
  ) {
    throw new Error("not one uncompressed envelope");
  }
  return body.subarray(ENVELOPE_HEADER_BYTES);
}

/** The bytes already read, then whatever the request stream still holds. */
async function* replay(
  readSoFar: Buffer[],
  rest?: AsyncIterable<Uint8Array>,
): AsyncIterable<Uint8Array> {
  yield* readSoFar;
  if (rest !== undefined) yield* rest;
}
