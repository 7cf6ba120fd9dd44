// The HTTP limits, management listener and public metrics variables: defaults,
// validation, and every problem reported at once.

import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, loadConfig } from "../../src/config.js";

test("defaults", () => {
  const config = loadConfig({});
  assert.deepEqual(config.http, {
    maxConnections: 1_000,
    idleTimeoutSeconds: 5,
    headersTimeoutSeconds: 10,
    requestTimeoutSeconds: 10,
    http2MaxConcurrentStreams: 100,
    http2MaxStreamsAwaitingBody: 100,
    http2MaxStreamsAwaitingBodyTotal: 5_000,
  });
  assert.deepEqual(config.management, { port: 9464, host: "127.0.0.1", explicit: false });
  assert.equal(config.publicMetrics, false);
});

test("every variable is read", () => {
  const config = loadConfig({
    MAX_CONNECTIONS: "50",
    HTTP_IDLE_TIMEOUT_SECONDS: "30",
    HTTP_HEADERS_TIMEOUT_SECONDS: "5",
    HTTP_REQUEST_TIMEOUT_SECONDS: "20",
    HTTP2_MAX_CONCURRENT_STREAMS: "250",
    HTTP2_MAX_STREAMS_AWAITING_BODY: "16",
    HTTP2_MAX_STREAMS_AWAITING_BODY_TOTAL: "64",
    MANAGEMENT_PORT: "0",
    MANAGEMENT_HOST: "0.0.0.0",
    PUBLIC_METRICS: "true",
  });
  assert.deepEqual(config.http, {
    maxConnections: 50,
    idleTimeoutSeconds: 30,
    headersTimeoutSeconds: 5,
    requestTimeoutSeconds: 20,
    http2MaxConcurrentStreams: 250,
    http2MaxStreamsAwaitingBody: 16,
    http2MaxStreamsAwaitingBodyTotal: 64,
  });
  assert.deepEqual(config.management, { port: 0, host: "0.0.0.0", explicit: true });
  assert.equal(config.publicMetrics, true);
});

test("invalid values are all reported at once", () => {
  assert.throws(
    () =>
      loadConfig({
        MAX_CONNECTIONS: "0",
        HTTP_IDLE_TIMEOUT_SECONDS: "soon",
        HTTP_HEADERS_TIMEOUT_SECONDS: "30",
        HTTP_REQUEST_TIMEOUT_SECONDS: "20",
        HTTP2_MAX_CONCURRENT_STREAMS: "-1",
        MANAGEMENT_PORT: "8080",
        PUBLIC_METRICS: "maybe",
      }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual([...error.problems].sort(), [
        'HTTP2_MAX_CONCURRENT_STREAMS must be an integer from 1 to 10000 (got "-1")',
        "HTTP_HEADERS_TIMEOUT_SECONDS must not exceed HTTP_REQUEST_TIMEOUT_SECONDS",
        'HTTP_IDLE_TIMEOUT_SECONDS must be an integer from 1 to 3600 (got "soon")',
        "MANAGEMENT_PORT must differ from PORT",
        'MAX_CONNECTIONS must be an integer from 1 to 1000000 (got "0")',
        'PUBLIC_METRICS must be true or false (got "maybe")',
      ]);
      return true;
    },
  );
});
