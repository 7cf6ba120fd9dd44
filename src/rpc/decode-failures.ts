import type { JsonWriteOptions } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  endStreamFlag,
  endStreamFromJson,
  endStreamToJson,
  errorFromJsonBytes,
  errorToJsonBytes,
} from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { duplicateParameter } from "../server/duplicate-parameter.js";
import { toConnectError } from "./to-connect-error.js";

/**
 * connect-es decodes a request before any interceptor runs and reports what
 * it cannot decode in its own words. Three of those answers break the
 * service's parsing rules, so they are replaced, per protocol, after
 * connect-es rendered them:
 *
 * - a body that is not valid protobuf: connect-es says `Internal`
 *   ("parse binary: …"); every undecodable request is `InvalidArgument`;
 * - a gRPC / gRPC-Web / Connect-streaming envelope with the compressed flag
 *   and no message encoding: connect-es says `Internal` ("received compressed
 *   envelope, but do not know how to decompress"); it is a malformed request:
 *   `InvalidArgument`;
 * - a JSON member named twice (or a field named by both its JSON and proto
 *   names): connect-es refuses it with `InvalidArgument` and its own message;
 *   REST refuses the same input with `invalid_request` "Duplicate parameter:
 *   <name>", so the RPC answer carries that description and the typed
 *   OAuthError detail, as every OAuth error on the RPC surface does.
 *
 * Replaced in: a Connect unary error (HTTP status and JSON body), gRPC
 * trailers, a gRPC-Web trailer frame, a Connect end-stream message. Anything
 * else passes through untouched; a normal response costs one status check
 * (and, on the enveloped protocols, one byte per chunk). Written by hand
 * because connect-es offers no hook before its decoding.
 */
export async function correctDecodeFailure(
  response: UniversalServerResponse,
  jsonOptions?: Partial<JsonWriteOptions>,
): Promise<UniversalServerResponse> {
  const contentType = response.header?.get("content-type") ?? "";
  if (response.status >= 400 && response.body !== undefined) {
    return rewriteConnectUnaryError(response, jsonOptions);
  }
  const trailer = response.trailer;
  const status = trailer?.get("grpc-status");
  if (trailer !== undefined && status !== undefined && status !== null && status !== "0") {
    const replacement = replacementFor(
      Number(status),
      decodeURIComponent(trailer.get("grpc-message") ?? ""),
    );
    if (replacement !== undefined) replaceTrailerStatus(trailer, replacement);
  }
  if (response.body === undefined) return response;
  if (contentType.startsWith("application/grpc-web")) {
    return { ...response, body: rewriteFrames(response.body, trailerFlag, rewriteGrpcWebTrailer) };
  }
  if (contentType.startsWith("application/connect+")) {
    return {
      ...response,
      body: rewriteFrames(response.body, endStreamFlag, (data) =>
        rewriteEndStream(data, jsonOptions),
      ),
    };
  }
  return response;
}

const PARSE_BINARY = "parse binary:";
const COMPRESSED_WITHOUT_ENCODING =
  "received compressed envelope, but do not know how to decompress";
const DUPLICATE_KEY = /^cannot decode message [\w.]+ from JSON: duplicate object key "(.*)"$/s;
const FIELD_TWICE = /^cannot decode field [\w.]+\.(\w+) from JSON: set multiple times$/;

/** The error to answer instead of connect-es's `code` and `message`, if any. */
export function replacementFor(code: Code, message: string): ConnectError | undefined {
  if (
    code === Code.Internal &&
    (message.startsWith(PARSE_BINARY) || message === COMPRESSED_WITHOUT_ENCODING)
  ) {
    return new ConnectError(message, Code.InvalidArgument);
  }
  if (code === Code.InvalidArgument) {
    const name = DUPLICATE_KEY.exec(message)?.[1] ?? FIELD_TWICE.exec(message)?.[1];
    if (name !== undefined) return toConnectError(duplicateParameter(name));
  }
  return undefined;
}

function replaceTrailerStatus(trailer: Headers, error: ConnectError): void {
  for (const name of ["grpc-status", "grpc-message", "grpc-status-details-bin"]) {
    trailer.delete(name);
  }
  setTrailerStatus(trailer, error);
}

/** A Connect unary error body is small and complete: read it, correct it, resend it. */
async function rewriteConnectUnaryError(
  response: UniversalServerResponse,
  jsonOptions?: Partial<JsonWriteOptions>,
): Promise<UniversalServerResponse> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body ?? []) chunks.push(chunk);
  const original = Buffer.concat(chunks);
  let replacement: ConnectError | undefined;
  try {
    const error = errorFromJsonBytes(original, undefined, new ConnectError("", Code.Unknown));
    replacement = replacementFor(error.code, error.rawMessage);
  } catch {
    // Not a Connect JSON error body: pass it on unchanged.
  }
  if (replacement === undefined) return { ...response, body: oneChunk(original) };
  const body = errorToJsonBytes(replacement, jsonOptions);
  const header = new Headers(response.header);
  replacement.metadata.forEach((value, name) => {
    header.set(name, value);
  });
  if (header.has("content-length")) header.set("content-length", String(body.byteLength));
  return { ...response, status: codeToHttpStatus(replacement.code), header, body: oneChunk(body) };
}

async function* oneChunk(chunk: Uint8Array): AsyncIterable<Uint8Array> {
  yield chunk;
}

/** Passes chunks on; an uncompressed envelope flagged `flag` (the final one) goes through `rewrite`. */
async function* rewriteFrames(
  body: AsyncIterable<Uint8Array>,
  flag: number,
  rewrite: (data: Uint8Array) => Uint8Array | undefined,
): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    const data = chunk[0] === flag && chunk.length >= 5 ? rewrite(chunk.subarray(5)) : undefined;
    if (data === undefined) {
      yield chunk;
      continue;
    }
    const frame = Buffer.alloc(5 + data.byteLength);
    frame[0] = flag;
    frame.writeUInt32BE(data.byteLength, 1);
    frame.set(data, 5);
    yield frame;
  }
}

function rewriteGrpcWebTrailer(data: Uint8Array): Uint8Array | undefined {
  const trailer = trailerParse(data);
  const status = trailer.get("grpc-status");
  if (status === null || status === "0") return undefined;
  const replacement = replacementFor(
    Number(status),
    decodeURIComponent(trailer.get("grpc-message") ?? ""),
  );
  if (replacement === undefined) return undefined;
  replaceTrailerStatus(trailer, replacement);
  return trailerSerialize(trailer);
}

function rewriteEndStream(
  data: Uint8Array,
  jsonOptions?: Partial<JsonWriteOptions>,
): Uint8Array | undefined {
  let endStream: ReturnType<typeof endStreamFromJson>;
  try {
    endStream = endStreamFromJson(data);
  } catch {
    return undefined;
  }
  const error = endStream.error;
  const replacement = error && replacementFor(error.code, error.rawMessage);
  if (replacement === undefined) return undefined;
  const json = endStreamToJson(endStream.metadata, replacement, jsonOptions);
  return new TextEncoder().encode(JSON.stringify(json));
}
