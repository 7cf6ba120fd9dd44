// SPEC §6 "Availability under attack": one address holding any number of
// connections of any kind does not make requests from another address fail.
// The attacker holds connections from 127.0.0.1, beyond every cap
// (MAX_CONNECTIONS 1,000, MAX_CONNECTIONS_PER_ADDRESS 100, MAX_WATCH_STREAMS
// 1,000), reopening each one the service closes; the other users send
// requests from 127.0.0.2 on fresh HTTP/1.1 connections and h2c sessions.
// Asserted: every one of their requests is answered (no failure, no reset).
// The latencies and memory are reported as diagnostics, never asserted.

import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fixtureEnv } from "../support/process-flows.js";
import { startServiceProcess } from "../support/service-process.js";
import { holdConnectionsInProcess } from "./support/attacker-process.js";
import type { HeldKind } from "./support/held-connections.js";
import { describeProbe, startProbe } from "./support/probe.js";

const OTHER_ADDRESS = "127.0.0.2";
/** How long the attack runs while the other address probes. */
const ATTACK_MS = 8_000;

const mib = (n: number) => `${n.toFixed(0)} MiB`;

/** A normal REST request from the other address: 400 unsupported_grant_type, no store work. */
const otherUsers = (port: number, protocol: "h1" | "h2") =>
  startProbe({
    port,
    protocol,
    localAddress: OTHER_ADDRESS,
    path: "/oauth/token",
    method: "POST",
    body: "grant_type=x",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    expectStatus: 400,
    intervalMs: protocol === "h1" ? 100 : 200,
  });

/** The first status a Watch from `localAddress` reports ("1" = SERVING), or the grpc-status it was refused with. */
function firstWatchStatus(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`, {
      createConnection: () => net.connect({ port, host: "127.0.0.1", localAddress }),
    });
    const done = (status: string) => {
      session.destroy();
      resolve(status);
    };
    session.on("error", (error: Error & { code?: string }) => done(error.code ?? error.message));
    const stream = session.request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Watch",
      "content-type": "application/grpc",
      te: "trailers",
    });
    stream.on("error", (error: Error & { code?: string }) => done(error.code ?? error.message));
    // One envelope: flag, length, then HealthCheckResponse { status = 1: varint }.
    stream.on("data", (chunk: Buffer) => done(String(chunk[6])));
    stream.on("trailers", (trailers) => done(`grpc-status ${trailers["grpc-status"]}`));
    stream.end(Buffer.alloc(5));
  });
}

const attacks: Array<{ kind: HeldKind; count: number; streamsPerConnection?: number }> = [
  { kind: "keep-alive", count: 1_100 },
  { kind: "silent", count: 2_000 },
  { kind: "headers", count: 1_100 },
  { kind: "body", count: 1_100 },
  { kind: "h2-idle", count: 1_100 },
  { kind: "h2-headers", count: 1_100 },
  { kind: "h2-streams", count: 120, streamsPerConnection: 100 },
  { kind: "watch", count: 15, streamsPerConnection: 100 },
];

for (const attack of attacks) {
  const what =
    attack.streamsPerConnection === undefined
      ? `${attack.count} ${attack.kind} connections`
      : `${attack.count} connections x ${attack.streamsPerConnection} ${attack.kind}`;
  test(`${what} from one address: every request from another address is answered`, async (t) => {
    const service = await startServiceProcess(fixtureEnv());
    try {
      await sleep(500);
      const base = service.rssMiB();
      const holder = holdConnectionsInProcess({ port: service.port, ...attack });
      const heldAtStart = await holder.waitForHeld(attack.count, 3_000);
      const h1 = otherUsers(service.port, "h1");
      const h2 = otherUsers(service.port, "h2");
      await sleep(ATTACK_MS / 2);
      // The other address's own Watch streams are served while the attacker holds its share.
      const watches =
        attack.kind === "watch"
          ? await Promise.all(
              Array.from({ length: 10 }, () => firstWatchStatus(service.port, OTHER_ADDRESS)),
            )
          : [];
      await sleep(ATTACK_MS / 2);
      const [h1Result, h2Result] = await Promise.all([h1.stop(), h2.stop()]);
      const during = service.rssMiB();
      const held = await holder.stop();
      t.diagnostic(
        `attacker: ${JSON.stringify(held)} (held ${heldAtStart} after 3 s); ` +
          `RSS base ${mib(base)}, during ${mib(during)}, peak ${mib(service.peakRssMiB())}; ` +
          `other address h1: ${describeProbe(h1Result)}; h2: ${describeProbe(h2Result)}`,
      );
      assert.ok(service.alive());
      assert.deepEqual(h1Result.failures, []);
      assert.deepEqual(h2Result.failures, []);
      assert.ok(h1Result.sent >= 40 && h2Result.sent >= 20);
      if (attack.kind === "watch") {
        assert.deepEqual(watches, Array(10).fill("1"));
        assert.ok((held.watch?.resourceExhausted ?? 0) > 0, "the attacker went beyond its share");
      }
    } finally {
      await service.stop();
    }
  });
}
