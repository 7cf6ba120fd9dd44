/**
 * The 413 race: a 1.2 MB form body to POST /oauth/token with Connection:
 * close, written in 16 KiB pieces while the answer may already be on its way.
 * Resolves with `"<status> <connection header> <body>"`, or the socket error's
 * code when the client never read an answer (the failure the test looks for).
 */
import http from "node:http";

export const OVERSIZED_FORM_ANSWER =
  '413 close {"error":"invalid_request","error_description":"Request body too large"}';

export function postOversizedForm(port: number): Promise<string> {
  const body = Buffer.alloc(1200 * 1024, "a");
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/oauth/token",
        agent: false,
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "content-length": body.length,
          connection: "close",
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve(`${res.statusCode} ${res.headers.connection} ${Buffer.concat(chunks)}`),
        );
      },
    );
    req.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    (async () => {
      for (let offset = 0; offset < body.length && !req.destroyed; offset += 16_384) {
        req.write(body.subarray(offset, offset + 16_384));
        await new Promise((r) => setImmediate(r));
      }
      req.end();
    })();
  });
}
