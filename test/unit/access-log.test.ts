// The access-log line: pino's framing, exact fields, JSON escaping of the one
// operator-supplied value, lines held at most 10 ms (or 64 KiB), the level.

import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { afterEach, beforeEach, mock, test } from "node:test";
import type { LogLevel } from "../../src/config.js";
import { createAccessLog, type RequestEnd } from "../../src/observability/access-log.js";
import type { AccessRecord } from "../../src/observability/access-record.js";
import { createLogger } from "../../src/observability/logger.js";

function capture(level: LogLevel = "info") {
  const writes: string[] = [];
  const logger = createLogger(
    level,
    new Writable({
      write(chunk, _encoding, callback) {
        writes.push(String(chunk));
        callback();
      },
    }),
  );
  return { log: createAccessLog(logger), logger, writes };
}

const lines = (writes: string[]) =>
  writes
    .join("")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);

const REST: AccessRecord = {
  requestId: "req-1",
  method: "POST",
  surface: "rest",
  route: "/oauth/token",
  startNs: 0n,
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  clientId: "post-client",
};
const OK: RequestEnd = { status: 200, code: undefined, durationUs: 812, aborted: false };

beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
afterEach(() => mock.timers.reset());

test("a REST line, framed as pino frames every line", () => {
  const { log, writes } = capture();
  log.write(REST, OK);
  log.flush();
  const [line] = lines(writes);
  assert.ok(line);
  const { time, ...rest } = line;
  assert.equal(typeof time, "number");
  assert.deepEqual(rest, {
    level: 30,
    service: "token-service",
    event: "access",
    request_id: "req-1",
    trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
    method: "POST",
    surface: "rest",
    route: "/oauth/token",
    status: 200,
    client_id: "post-client",
    duration_us: 812,
    msg: "request",
  });
});

test("RPC lines carry the code; gRPC and gRPC-Web the grpc_status too; aborted only when true", () => {
  const { log, writes } = capture();
  const rpc = { ...REST, traceId: undefined, clientId: undefined, error: "invalid_grant" };
  const end = { status: 200, code: 9, durationUs: 5, aborted: false };
  log.write(
    { ...rpc, surface: "connect", route: "/token.v1.TokenService/VerifyMfaOtp" },
    { ...end, status: 400 },
  );
  log.write({ ...rpc, surface: "grpc", route: "/token.v1.TokenService/VerifyMfaOtp" }, end);
  log.write(
    { ...REST, surface: "grpc-web", route: "/token.v1.TokenService/VerifyMfaOtp" },
    { ...end, code: undefined, aborted: true, status: 499 },
  );
  log.flush();
  const [connect, grpc, aborted] = lines(writes);
  assert.equal(connect?.code, "failed_precondition");
  assert.equal("grpc_status" in (connect ?? {}), false);
  assert.equal(connect?.error, "invalid_grant");
  assert.equal(grpc?.code, "failed_precondition");
  assert.equal(grpc?.grpc_status, 9);
  assert.equal("trace_id" in (grpc ?? {}), false);
  assert.equal("client_id" in (grpc ?? {}), false);
  assert.equal(aborted?.aborted, true);
  assert.equal(aborted?.status, 499);
  assert.equal("code" in (aborted ?? {}), false);
  assert.equal("aborted" in (grpc ?? {}), false);
});

test("a client id from the clients file is escaped", () => {
  const { log, writes } = capture();
  log.write({ ...REST, clientId: 'odd "client"\\\n' }, OK);
  log.flush();
  assert.equal(lines(writes)[0]?.client_id, 'odd "client"\\\n');
});

test("lines are held at most 10 ms, then written together", () => {
  const { log, writes } = capture();
  log.write(REST, OK);
  log.write({ ...REST, requestId: "req-2" }, OK);
  assert.deepEqual(writes, []);
  mock.timers.tick(9);
  assert.deepEqual(writes, []);
  mock.timers.tick(1);
  assert.equal(writes.length, 1);
  assert.deepEqual(
    lines(writes).map((line) => line.request_id),
    ["req-1", "req-2"],
  );
});

test("64 KiB of lines are written at once", () => {
  const { log, writes } = capture();
  let count = 0;
  while (writes.length === 0) {
    log.write(REST, OK);
    count += 1;
  }
  assert.ok(writes.join("").length >= 64 * 1024);
  assert.equal(lines(writes).length, count);
});

test("nothing below the logger's level", () => {
  const { log, writes } = capture("warn");
  log.write(REST, OK);
  log.flush();
  mock.timers.tick(20);
  assert.deepEqual(writes, []);
});
