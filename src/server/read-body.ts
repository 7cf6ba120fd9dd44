import { oauthErrors } from "../oauth/oauth-error.js";
import { closeAfterResponse } from "./close-after-response.js";
import type { HttpRequest, HttpResponse } from "./http-types.js";

/** error row 14: request bodies are capped at 64 KiB (413 beyond). */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Reads the whole body, refusing early on a declared Content-Length over the
 * cap and stopping as soon as streamed bytes exceed it. A refused body is
 * not read further: the 413 the caller sends is the last answer on the
 * connection (HTTP/1.1) or stream (HTTP/2), closed so that the client still
 * reads it (close-after-response.ts).
 */
export function readBody(
  req: HttpRequest,
  res: HttpResponse,
  limit = MAX_BODY_BYTES,
): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (declared > limit) {
    closeAfterResponse(req, res);
    return Promise.reject(oauthErrors.invalidRequest.body(413, "Request body too large"));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off("data", onData);
        closeAfterResponse(req, res);
        reject(oauthErrors.invalidRequest.body(413, "Request body too large"));
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () =>
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)),
    );
    req.once("error", reject);
  });
}

/** What `readWholeBody` reports, once. */
export interface BodyEvents {
  complete(body: Buffer): void;
  /** More than `limit` bytes arrived; the stream is paused after `readSoFar`. */
  tooLarge(readSoFar: Buffer[]): void;
  failed(): void;
}

/**
 * The callback form of the reader, for a caller that hands an oversized body
 * on instead of refusing it (the RPC fast path replays what it read to
 * connect-es): no promise, no closure per chunk beyond the three listeners.
 */
export function readWholeBody(req: HttpRequest, limit: number, events: BodyEvents): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const detach = () => {
    req.off("data", onData);
    req.off("end", onEnd);
    req.off("error", onError);
  };
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size > limit) {
      detach();
      req.pause();
      events.tooLarge(chunks);
    }
  };
  const onEnd = () => {
    detach();
    events.complete(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
  };
  const onError = () => {
    detach();
    events.failed();
  };
  req.on("data", onData);
  req.on("end", onEnd);
  req.on("error", onError);
}
