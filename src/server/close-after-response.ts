import type { IncomingMessage, ServerResponse } from "node:http";
import http2 from "node:http2";
import type net from "node:net";
import type { HttpRequest, HttpResponse } from "./http-types.js";

/** How long an HTTP/1.1 connection keeps draining after its last response before it is destroyed. */
export const LINGER_MS = 2_000;

/**
 * Ends the exchange once the response in progress is written, without
 * reading the rest of the request: for answers given before the body was
 * read (413). The client must still see the answer:
 *
 * - HTTP/1.1: the response says `Connection: close`; after it the socket is
 *   half-closed (FIN) and what the client still sends is read and discarded
 *   until it closes its side or LINGER_MS pass, then the socket is destroyed.
 *   node's default (`destroySoon`: destroy as soon as the FIN is written)
 *   closes a socket with unread input, which makes the kernel send a reset
 *   that can discard the response before the client reads it (a "lingering
 *   close", as Apache and nginx do it). node:http has no option for this, so
 *   the socket's `destroySoon`, which node's http server calls after the
 *   last response, is replaced on this socket only.
 * - HTTP/2: once the response is written, RST_STREAM NO_ERROR asks the
 *   client to stop sending the body (RFC 9113 §8.1); the connection lives on.
 */
export function closeAfterResponse(req: HttpRequest, res: HttpResponse): void {
  // Read and discard whatever the client still sends.
  req.resume();
  if (req.httpVersionMajor === 2) {
    const stream = (req as http2.Http2ServerRequest).stream;
    stream.once("finish", () => stream.close(http2.constants.NGHTTP2_NO_ERROR));
    return;
  }
  (res as ServerResponse).shouldKeepAlive = false;
  const socket = (req as IncomingMessage).socket as net.Socket & { destroySoon(): void };
  socket.destroySoon = lingeringDestroySoon;
}

function lingeringDestroySoon(this: net.Socket): void {
  if (this.destroyed) return;
  if (this.writable) this.end();
  const timer = setTimeout(() => this.destroy(), LINGER_MS).unref();
  this.once("close", () => clearTimeout(timer));
  // The client read the answer and closed its side: nothing left to drain.
  if (this.readableEnded) this.destroy();
  else this.once("end", () => this.destroy());
}
