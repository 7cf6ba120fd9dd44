// The 413 race against the service as a child process: 400 requests with a
// 1.2 MB form body and Connection: close, 20 at a time, each body written in
// 16 KiB pieces while the answer may already be on its way. Every client must
// read its 413 (before: about one in ten got EPIPE and no answer).

import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";
import { fixtureEnv } from "../support/process-flows.js";
import { startServiceProcess } from "../support/service-process.js";

function bigForm(port: number): Promise<string> {
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
        res.resume();
        res.on("end", () => resolve(String(res.statusCode)));
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

test("400 oversized bodies with Connection: close, 20 at a time: every client reads 413", async (t) => {
  const service = await startServiceProcess(fixtureEnv());
  try {
    const outcomes: string[] = [];
    const started = Date.now();
    for (let round = 0; round < 20; round++) {
      outcomes.push(
        ...(await Promise.all(Array.from({ length: 20 }, () => bigForm(service.port)))),
      );
    }
    const counts: Record<string, number> = {};
    for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1;
    t.diagnostic(`outcomes ${JSON.stringify(counts)} in ${Date.now() - started} ms`);
    assert.deepEqual(counts, { "413": 400 });
  } finally {
    await service.stop();
  }
});
