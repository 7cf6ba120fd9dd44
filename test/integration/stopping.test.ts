// SPEC §6 "Stopping": on SIGTERM readiness turns 503 / NOT_SERVING at once;
// for SHUTDOWN_DELAY_SECONDS the service keeps accepting and answering, each
// answer closing its connection (Connection: close, HTTP/2 GOAWAY), and a
// request on a pooled keep-alive connection is answered; then it stops
// accepting, logs `stopped` and exits 0. Also with WORKERS=2 (the primary
// passes the signal on; each worker runs the sequence).

import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { generateSigningJwk } from "../../src/cli/keys-generate.js";
import { fixtureEnv } from "../support/process-flows.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import { type ServiceProcess, startServiceProcess } from "../support/service-process.js";

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  reusedSocket: boolean;
}

function get(port: number, path: string, agent: http.Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.once("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          reusedSocket: req.reusedSocket,
        }),
      );
    });
    req.once("error", reject);
  });
}

/** grpc.health.v1.Health/Check for the whole server: its ServingStatus (1 SERVING, 2 NOT_SERVING). */
async function healthCheck(session: http2.ClientHttp2Session): Promise<number> {
  const stream = session.request({
    ":method": "POST",
    ":path": "/grpc.health.v1.Health/Check",
    "content-type": "application/grpc",
    te: "trailers",
  });
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  stream.end(Buffer.alloc(5));
  await once(stream, "end");
  // One envelope (flag, 4-byte length) holding HealthCheckResponse { status = 1 }.
  return Buffer.concat(chunks)[6] ?? 0;
}

const lineOf = (service: ServiceProcess, event: string) =>
  service.lines().find((line) => line.event === event);

describe("SIGTERM with SHUTDOWN_DELAY_SECONDS=3", () => {
  test("readiness off at once, answers close their connections, a pooled connection is answered, then `stopped` and exit 0", async () => {
    const service = await startServiceProcess(fixtureEnv({ SHUTDOWN_DELAY_SECONDS: "3" }));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const session = http2.connect(service.baseUrl);
    try {
      const exited = once(service.child, "exit");
      const before = await get(service.port, "/healthz", agent);
      assert.equal(before.headers.connection, "keep-alive");
      assert.equal(await healthCheck(session), 1);
      // The agent's socket is back in its pool before the signal.
      await new Promise((resolve) => setImmediate(resolve));

      service.child.kill("SIGTERM");
      const draining = await service.waitForLine((line) => line.event === "draining");
      assert.deepEqual([draining.delaySeconds, draining.timeoutSeconds], [3, 10]);

      const readyz = await get(service.port, "/readyz");
      assert.equal(readyz.status, 503);
      assert.equal(readyz.headers["retry-after"], "1");
      assert.deepEqual(JSON.parse(readyz.body), { status: "unavailable" });
      const management = await get(service.managementPort as number, "/readyz");
      assert.equal(management.status, 503);

      // An HTTP/2 request is answered; the session gets GOAWAY (no error) with it.
      const goaway = once(session, "goaway");
      assert.equal(await healthCheck(session), 2);
      const [code] = await goaway;
      assert.equal(code, http2.constants.NGHTTP2_NO_ERROR);

      // The pooled keep-alive connection: answered, and told to close.
      const pooled = await get(service.port, "/healthz", agent);
      assert.equal(pooled.reusedSocket, true);
      assert.equal(pooled.status, 200);
      assert.equal(pooled.headers.connection, "close");
      // New connections are still accepted during the delay.
      const fresh = await get(service.port, "/healthz");
      assert.deepEqual([fresh.status, fresh.headers.connection], [200, "close"]);
      assert.equal(lineOf(service, "stopped"), undefined);

      const [exitCode] = await exited;
      assert.equal(exitCode, 0);
      const stopped = lineOf(service, "stopped");
      assert.ok(stopped !== undefined, "a stopped line");
      assert.equal(stopped.pid, service.pid);
      assert.ok((stopped.durationMs as number) >= 3_000, `stopped after ${stopped.durationMs} ms`);
      assert.equal(service.lines().filter((line) => line.event === "stopped").length, 1);
      await assert.rejects(get(service.port, "/healthz"), { code: "ECONNREFUSED" });
    } finally {
      agent.destroy();
      session.destroy();
      await service.stop();
    }
  });

  test("SHUTDOWN_DELAY_SECONDS=0 (the default outside production): stops at once, exit 0", async () => {
    const service = await startServiceProcess(fixtureEnv());
    const exited = once(service.child, "exit");
    service.child.kill("SIGTERM");
    const [exitCode] = await exited;
    assert.equal(exitCode, 0);
    const draining = lineOf(service, "draining");
    assert.deepEqual([draining?.delaySeconds, draining?.timeoutSeconds], [0, 10]);
    assert.equal(service.lines().filter((line) => line.event === "stopped").length, 1);
  });
});

describe("SIGTERM with WORKERS=2", () => {
  let redis: RedisServerHandle | undefined;
  const dir = mkdtempSync(join(tmpdir(), "stopping-"));
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await redis?.stop();
  });

  test("each worker runs the sequence; the primary exits 0 once both did", async () => {
    redis = await startRedisServer({ dedicated: true });
    const keysFile = join(dir, "keys.json");
    const keys = [await generateSigningJwk("ES256", "es"), await generateSigningJwk("RS256", "rs")];
    writeFileSync(keysFile, JSON.stringify({ keys }));
    const service = await startServiceProcess(
      fixtureEnv({
        SIGNING_KEYS_FILE: keysFile,
        REDIS_URL: redis.url,
        WORKERS: "2",
        SHUTDOWN_DELAY_SECONDS: "1",
      }),
      { listeningLines: 2 },
    );
    try {
      const exited = once(service.child, "exit");
      service.child.kill("SIGTERM");
      await service.waitForLine((line) => line.event === "draining");
      const readyz = await get(service.port, "/readyz");
      assert.equal(readyz.status, 503);
      const [exitCode] = await exited;
      assert.equal(exitCode, 0);
      const events = service.lines().map((line) => line.event);
      assert.equal(events.filter((event) => event === "draining").length, 2);
      assert.equal(events.filter((event) => event === "worker_stopped").length, 2);
      // The primary's line comes last, once every worker has stopped.
      assert.equal(events.filter((event) => event === "stopped").length, 1);
      assert.equal(events.filter((e) => e !== undefined).at(-1), "stopped");
      assert.equal(lineOf(service, "stopped")?.workers, 2);
    } finally {
      await service.stop();
    }
  });
});
