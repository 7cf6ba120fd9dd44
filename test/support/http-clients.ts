/**
 * Low-level HTTP clients for integration tests that need control `fetch` does
 * not give: no Content-Type at all, duplicated headers, chunked or
 * Content-Length bodies (node:http), and HTTP/2 with prior knowledge (h2c,
 * node:http2) against the service's one port.
 */
import http from "node:http";
import http2 from "node:http2";

export interface RawRequest {
  method: string;
  /** Path and query, e.g. "/oauth/token". */
  path: string;
  /** Header values; an array sends the header once per value (HTTP/1.1 only). */
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
  /**
   * HTTP/1.1 only: send the body with `Transfer-Encoding: chunked` in pieces of
   * this many bytes instead of with a Content-Length.
   */
  chunkSize?: number;
}

export interface RawResponse {
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Trailers (HTTP/2 only; e.g. gRPC's `grpc-status`), lower-cased names. */
  trailers: Record<string, string>;
  text: string;
  /** The body as received (binary protobuf, gRPC frames, compressed bodies). */
  bytes: Buffer;
  /** "1.1" or "2.0". */
  httpVersion: string;
}

/** The body parsed as JSON (throws with the raw text when it is not JSON). */
export function jsonOf(response: RawResponse): unknown {
  try {
    return JSON.parse(response.text);
  } catch {
    throw new Error(`not JSON (status ${response.status}): ${response.text.slice(0, 200)}`);
  }
}

function flattenHeaders(
  headers: Record<string, string | string[] | number | undefined>,
): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    flat[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return flat;
}

/** One HTTP/1.1 request with node:http (an agent may keep the connection alive). */
export function h1Request(
  baseUrl: string,
  request: RawRequest,
  agent?: http.Agent,
): Promise<RawResponse> {
  const url = new URL(request.path, baseUrl);
  const body =
    request.body === undefined ? undefined : Buffer.from(request.body as string | Buffer);
  const headers: http.OutgoingHttpHeaders = { ...request.headers };
  if (body !== undefined) {
    if (request.chunkSize !== undefined) headers["transfer-encoding"] = "chunked";
    else headers["content-length"] = String(body.length);
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: request.method,
        path: url.pathname + url.search,
        headers,
        ...(agent !== undefined ? { agent } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.once("error", reject);
        res.once("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: flattenHeaders(res.headers),
            trailers: {},
            text: Buffer.concat(chunks).toString("utf8"),
            bytes: Buffer.concat(chunks),
            httpVersion: res.httpVersion,
          }),
        );
      },
    );
    req.once("error", reject);
    if (body !== undefined && request.chunkSize !== undefined) {
      for (let offset = 0; offset < body.length; offset += request.chunkSize) {
        req.write(body.subarray(offset, offset + request.chunkSize));
      }
      req.end();
    } else {
      req.end(body);
    }
  });
}

/**
 * One request over cleartext HTTP/2 with prior knowledge (RFC 9113 §3.3): a
 * fresh session that starts with the connection preface, closed afterwards.
 */
export async function h2cRequest(baseUrl: string, request: RawRequest): Promise<RawResponse> {
  const session = http2.connect(baseUrl);
  try {
    return await new Promise<RawResponse>((resolve, reject) => {
      session.once("error", reject);
      const headers: http2.OutgoingHttpHeaders = {
        ":method": request.method,
        ":path": request.path,
      };
      for (const [name, value] of Object.entries(request.headers ?? {})) {
        headers[name] = Array.isArray(value) ? value.join(", ") : value;
      }
      const stream = session.request(headers);
      let status = 0;
      let responseHeaders: Record<string, string> = {};
      let trailers: Record<string, string> = {};
      const chunks: Buffer[] = [];
      stream.once("response", (h) => {
        status = Number(h[":status"]);
        responseHeaders = flattenHeaders(h);
      });
      stream.once("trailers", (t) => {
        trailers = flattenHeaders(t);
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.once("error", reject);
      stream.once("end", () =>
        resolve({
          status,
          headers: responseHeaders,
          trailers,
          text: Buffer.concat(chunks).toString("utf8"),
          bytes: Buffer.concat(chunks),
          httpVersion: "2.0",
        }),
      );
      stream.end(request.body);
    });
  } finally {
    session.close();
  }
}
