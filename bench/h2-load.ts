/**
 * gRPC load over h2c (autocannon speaks HTTP/1.1 only): `connections` calls
 * in flight at all times (the same concurrency as the HTTP/1.1 rows), spread
 * over `sessions` HTTP/2 connections with prior knowledge (default: one call
 * per connection, like the HTTP/1.1 rows), each call a prepared gRPC-framed
 * protobuf message. A call succeeds when its grpc-status is 0.
 */
import http2 from "node:http2";
import { type LoadResult, Recorder } from "./recorder.js";
import type { Feed } from "./seed.js";

export interface GrpcLoadOptions {
  port: number;
  path: string;
  connections: number;
  /** HTTP/2 connections the calls share (default `connections`). */
  sessions?: number;
  /** Seconds; or `amount` calls in total. */
  duration?: number;
  amount?: number;
  feed: Feed;
}

export async function runGrpcLoad(options: GrpcLoadOptions): Promise<LoadResult> {
  const recorder = new Recorder();
  const deadline = Date.now() + (options.duration ?? 1) * 1000;
  let budget = options.amount ?? 0;
  const more = () => (options.amount !== undefined ? budget-- > 0 : Date.now() < deadline);

  const sessions = await Promise.all(
    Array.from({ length: options.sessions ?? options.connections }, () => connect(options.port)),
  );
  await Promise.all(
    Array.from({ length: options.connections }, async (_, i) => {
      const slot = i % sessions.length;
      while (more()) {
        // A connection the server closed (GOAWAY, reset) is replaced, as a gRPC client would.
        let session = sessions[slot] as http2.ClientHttp2Session;
        if (session.closed || session.destroyed) {
          session = await connect(options.port);
          sessions[slot] = session;
        }
        const started = process.hrtime.bigint();
        const outcome = await call(session, options.path, options.feed.next().body);
        if (outcome === undefined) recorder.errors++;
        else recorder.record(outcome, Number(process.hrtime.bigint() - started) / 1e6);
      }
    }),
  );
  const result = recorder.finish();
  for (const session of sessions) session.close();
  return result;
}

function connect(port: number): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.once("connect", () => resolve(session));
    session.once("error", reject);
    session.on("error", () => {}); // after connecting: the stream reports the failure
  });
}

/** "ok", "grpc-<code>", or undefined when the stream failed below gRPC. */
function call(
  session: http2.ClientHttp2Session,
  path: string,
  body: Buffer,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc+proto",
        te: "trailers",
      });
    } catch {
      resolve(undefined); // the session went away between two calls
      return;
    }
    let status: string | undefined;
    const take = (headers: http2.IncomingHttpHeaders) => {
      const value = headers["grpc-status"];
      if (typeof value === "string") status = value;
    };
    stream.on("response", take); // trailers-only responses carry the status here
    stream.on("trailers", take);
    stream.on("data", () => {});
    stream.on("error", () => {});
    stream.on("close", () =>
      resolve(status === undefined ? undefined : status === "0" ? "ok" : `grpc-${status}`),
    );
    stream.end(body);
  });
}
