/**
 * HTTP/1.1 load with autocannon (kept dev dependency): `connections`
 * keep-alive connections, one request in flight on each, every request with
 * its own prepared body (setupRequest pulls the next one from the feed).
 *
 * With `chain`, a connection's next request is built from its previous
 * answer (a refresh token's successor): autocannon calls `onResponse` and
 * then, synchronously, the same connection's next `setupRequest`, so the
 * hand-off below never crosses connections. A connection whose chain broke
 * (no usable answer) starts again from the feed.
 */
import autocannon from "autocannon";
import { type LoadResult, Recorder } from "./recorder.js";
import type { BenchRequest, Feed } from "./seed.js";

export interface HttpLoadOptions {
  port: number;
  path: string;
  contentType: string;
  connections: number;
  /** Seconds; or `amount` requests in total. */
  duration?: number;
  amount?: number;
  feed: Feed;
  /** Extra headers on every request (e.g. Connect's protocol version). */
  headers?: Record<string, string>;
  /** The next request of this connection from a 200 answer's body (see the header). */
  chain?: (responseBody: string) => BenchRequest | undefined;
}

export function runHttpLoad(options: HttpLoadOptions): Promise<LoadResult> {
  const recorder = new Recorder();
  const baseHeaders = { "content-type": options.contentType, ...options.headers };
  const { chain } = options;
  /** The request the answer just received asks for, taken by the next setupRequest. */
  let handoff: BenchRequest | undefined;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: `http://127.0.0.1:${options.port}${options.path}`,
        method: "POST",
        connections: options.connections,
        ...(options.amount !== undefined
          ? { amount: options.amount }
          : { duration: options.duration ?? 1 }),
        timeout: 10,
        requests: [
          {
            setupRequest(request) {
              const next = handoff ?? options.feed.next();
              handoff = undefined;
              return {
                ...request,
                body: next.body,
                headers: next.headers ? { ...baseHeaders, ...next.headers } : baseHeaders,
              };
            },
            ...(chain !== undefined
              ? {
                  onResponse(status: number, body: string) {
                    handoff = status === 200 ? chain(body) : undefined;
                  },
                }
              : {}),
          },
        ],
      },
      (error) => {
        if (error) reject(error);
        else resolve(recorder.finish());
      },
    );
    instance.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
      recorder.record(status === 200 ? "ok" : String(status), ms);
    });
    instance.on("reqError", () => recorder.errors++);
  });
}
