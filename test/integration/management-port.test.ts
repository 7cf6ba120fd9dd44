// The management listener's port: a default port that is taken (a second
// instance on the same machine) is not fatal — the instance serves without
// /metrics and says so in one log line — but a port the operator chose is.

import assert from "node:assert/strict";
import net from "node:net";
import { after, test } from "node:test";
import { freePort } from "../support/redis-server.js";
import { runMain } from "../support/run-process.js";
import { type ServiceProcess, startServiceProcess } from "../support/service-process.js";

const running: ServiceProcess[] = [];
after(async () => {
  await Promise.all(running.map((service) => service.stop()));
});

/** Holds a port the way another program would. */
async function occupy(port: number): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return server;
}

test("the default management port taken: the service starts, logs it, answers /readyz", async () => {
  // Whatever holds 9464 (this occupier, or another instance), the service must start.
  const occupier = await occupy(9464).catch(() => undefined);
  try {
    const service = await startServiceProcess({});
    running.push(service);
    const line = await service.waitForLine((l) => l.event === "management_listener_unavailable");
    assert.equal(line.port, 9464);
    const ready = await fetch(`${service.baseUrl}/readyz`);
    assert.equal(ready.status, 200);
  } finally {
    occupier?.close();
  }
});

test("a MANAGEMENT_PORT the operator chose and is taken: one line, exit 1", async () => {
  const port = await freePort();
  const occupier = await occupy(port);
  try {
    const result = await runMain({ PORT: "0", MANAGEMENT_PORT: String(port) });
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, /address is already in use/);
  } finally {
    occupier.close();
  }
});
