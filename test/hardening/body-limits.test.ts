// The 413 race against the service as a child process: 400 requests with a
// 1.2 MB form body and Connection: close, 20 at a time, each body written in
// 16 KiB pieces while the answer may already be on its way. Every client must
// read its 413 (before: about one in ten got EPIPE and no answer).

import assert from "node:assert/strict";
import { test } from "node:test";
import { OVERSIZED_FORM_ANSWER, postOversizedForm } from "../support/oversized-form.js";
import { fixtureEnv } from "../support/process-flows.js";
import { startServiceProcess } from "../support/service-process.js";

test("400 oversized bodies with Connection: close, 20 at a time: every client reads 413", async (t) => {
  const service = await startServiceProcess(fixtureEnv());
  try {
    const outcomes: string[] = [];
    const started = Date.now();
    for (let round = 0; round < 20; round++) {
      outcomes.push(
        ...(await Promise.all(Array.from({ length: 20 }, () => postOversizedForm(service.port)))),
      );
    }
    const counts: Record<string, number> = {};
    for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1;
    t.diagnostic(`outcomes ${JSON.stringify(counts)} in ${Date.now() - started} ms`);
    assert.deepEqual(counts, { [OVERSIZED_FORM_ANSWER]: 400 });
  } finally {
    await service.stop();
  }
});
