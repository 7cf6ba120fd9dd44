// HTTP/2 control-frame floods from one address (127.0.0.1): PING, SETTINGS,
// streams opened and reset at once (RST_STREAM, "rapid reset"), endless
// CONTINUATION frames, WINDOW_UPDATE. Each writes up to 200,000 frames as
// fast as the socket takes them on one connection, reopened when the
// service closes it, for 5 s, while another address (127.0.0.2) sends
// requests. Asserted: the other address's requests are all answered. The
// frames the service took before closing the connection, how it closed it
// and its CPU are reported (SECURITY.md).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fixtureEnv } from "../support/process-flows.js";
import { startServiceProcess } from "../support/service-process.js";
import { connectH2Raw, FrameType, frame, headerBlock } from "./support/h2-raw.js";
import { describeProbe, startProbe } from "./support/probe.js";

const FLOOD_MS = 5_000;
const MAX_FRAMES = 200_000;
const BATCH = 1_000;

const block = headerBlock({
  ":method": "GET",
  ":scheme": "http",
  ":authority": "x",
  ":path": "/healthz",
});
const floods: Record<string, (i: number) => Buffer> = {
  PING: () => frame(FrameType.PING, 0, 0, Buffer.alloc(8)),
  SETTINGS: () => frame(FrameType.SETTINGS, 0, 0, Buffer.from([0, 3, 0, 0, 0, 100])),
  "HEADERS + RST_STREAM": (i) =>
    Buffer.concat([
      frame(FrameType.HEADERS, 0x4, 2 * i + 1, block),
      frame(FrameType.RST_STREAM, 0, 2 * i + 1, Buffer.from([0, 0, 0, 8])),
    ]),
  CONTINUATION: (i) =>
    i === 0
      ? frame(FrameType.HEADERS, 0, 1, block.subarray(0, 4))
      : frame(FrameType.CONTINUATION, 0, 1, Buffer.from([0x00, 0x01, 0x61, 0x01, 0x62])),
  WINDOW_UPDATE: () => frame(FrameType.WINDOW_UPDATE, 0, 0, Buffer.from([0, 0, 0, 1])),
};

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

for (const [name, next] of Object.entries(floods)) {
  test(`${name} flood from one address: every request from another address is answered`, async (t) => {
    const service = await startServiceProcess(fixtureEnv({ ACCESS_LOG: "false" }));
    try {
      const probe = startProbe({
        port: service.port,
        localAddress: "127.0.0.2",
        path: "/oauth/token",
        method: "POST",
        body: "grant_type=x",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        expectStatus: 400,
      });
      const cpuBefore = cpuMs(service.pid);
      const deadline = Date.now() + FLOOD_MS;
      const connections: string[] = [];
      let written = 0;
      while (Date.now() < deadline) {
        const connection = await connectH2Raw(service.port, "127.0.0.1", "127.0.0.1");
        connection.start();
        let sent = 0;
        while (sent < MAX_FRAMES && Date.now() < deadline && !connection.socket.destroyed) {
          const frames: Buffer[] = [];
          for (let i = 0; i < BATCH; i++) frames.push(next(sent + i));
          if (!connection.write(Buffer.concat(frames))) {
            await Promise.race([
              new Promise((resolve) => connection.socket.once("drain", resolve)),
              connection.closed,
              sleep(Math.max(0, deadline - Date.now())),
            ]);
          }
          sent += BATCH;
        }
        written += sent;
        await Promise.race([connection.closed, sleep(200)]);
        const goaway = connection.stats.goaway;
        connections.push(
          `${sent} written, ${connection.stats.closedAfterMs === undefined ? "open" : "closed"}` +
            (goaway ? ` (GOAWAY ${goaway.errorCode})` : ""),
        );
        connection.destroy();
      }
      const cpu = cpuMs(service.pid) - cpuBefore;
      const probed = await probe.stop();
      t.diagnostic(
        `${written} frames over ${connections.length} connection(s) [${connections.slice(0, 3).join("; ")}${connections.length > 3 ? "; …" : ""}]; ` +
          `service CPU ${cpu} ms in ${FLOOD_MS} ms; peak ${service.peakRssMiB().toFixed(0)} MiB; other address ${describeProbe(probed)}`,
      );
      assert.ok(service.alive());
      assert.deepEqual(probed.failures, []);
    } finally {
      await service.stop();
    }
  });
}
