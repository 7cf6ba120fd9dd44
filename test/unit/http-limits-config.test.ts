// The HTTP limits, management listener and public metrics variables: defaults,
// validation, and every problem reported at once.

import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, loadConfig } from "../../src/config.js";

test("defaults", () => {
  const config = loadConfig({});
  assert.deepEqual(config.http, {
    maxConnections: 1_000,
    maxConnectionsPerAddress: 100,
    idleTimeoutSeconds: 65,
    headersTimeoutSeconds: 10,
    requestTimeoutSeconds: 10,
    http2MaxConcurrentStreams: 100,
    http2MaxStreamsAwaitingBody: 100,
    http2MaxStreamsAwaitingBodyTotal: 5_000,
  });
  assert.deepEqual(config.management, { port: 9464, host: "127.0.0.1", explicit: false });
  assert.equal(config.publicMetrics, false);
  assert.deepEqual(config.streams, { maxSeconds: 60, maxOpen: 1_000 });
  assert.deepEqual(config.shutdown, { delaySeconds: 0, timeoutSeconds: 10 });
});

test("the per-address cap: 100, off behind a proxy, never more than half of MAX_CONNECTIONS", () => {
  assert.equal(loadConfig({}).http.maxConnectionsPerAddress, 100);
  assert.equal(loadConfig({ TRUST_PROXY: "1" }).http.maxConnectionsPerAddress, 0);
  assert.equal(loadConfig({ MAX_CONNECTIONS: "150" }).http.maxConnectionsPerAddress, 75);
  assert.equal(loadConfig({ MAX_CONNECTIONS: "1" }).http.maxConnectionsPerAddress, 0);
  // An explicit value wins, also behind a proxy; 0 turns it off.
  const explicit = loadConfig({ TRUST_PROXY: "2", MAX_CONNECTIONS_PER_ADDRESS: "20" });
  assert.equal(explicit.http.maxConnectionsPerAddress, 20);
  assert.equal(loadConfig({ MAX_CONNECTIONS_PER_ADDRESS: "0" }).http.maxConnectionsPerAddress, 0);
  assert.throws(
    () => loadConfig({ MAX_CONNECTIONS: "100", MAX_CONNECTIONS_PER_ADDRESS: "100" }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems, [
        "MAX_CONNECTIONS_PER_ADDRESS (100) must be below MAX_CONNECTIONS (100): one address could hold every connection (0 turns the per-address cap off)",
      ]);
      return true;
    },
  );
});

test("every variable is read", () => {
  const config = loadConfig({
    MAX_CONNECTIONS: "50",
    MAX_CONNECTIONS_PER_ADDRESS: "10",
    HTTP_IDLE_TIMEOUT_SECONDS: "30",
    HTTP_HEADERS_TIMEOUT_SECONDS: "5",
    HTTP_REQUEST_TIMEOUT_SECONDS: "20",
    HTTP2_MAX_CONCURRENT_STREAMS: "250",
    HTTP2_MAX_STREAMS_AWAITING_BODY: "16",
    HTTP2_MAX_STREAMS_AWAITING_BODY_TOTAL: "64",
    MANAGEMENT_PORT: "0",
    MANAGEMENT_HOST: "0.0.0.0",
    PUBLIC_METRICS: "true",
    WATCH_MAX_SECONDS: "30",
    MAX_WATCH_STREAMS: "200",
    SHUTDOWN_DELAY_SECONDS: "3",
    SHUTDOWN_TIMEOUT_SECONDS: "20",
  });
  assert.deepEqual(config.http, {
    maxConnections: 50,
    maxConnectionsPerAddress: 10,
    idleTimeoutSeconds: 30,
    headersTimeoutSeconds: 5,
    requestTimeoutSeconds: 20,
    http2MaxConcurrentStreams: 250,
    http2MaxStreamsAwaitingBody: 16,
    http2MaxStreamsAwaitingBodyTotal: 64,
  });
  assert.deepEqual(config.management, { port: 0, host: "0.0.0.0", explicit: true });
  assert.equal(config.publicMetrics, true);
  assert.deepEqual(config.streams, { maxSeconds: 30, maxOpen: 200 });
  assert.deepEqual(config.shutdown, { delaySeconds: 3, timeoutSeconds: 20 });
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
        MAX_CONNECTIONS_PER_ADDRESS: "-1",
        WATCH_MAX_SECONDS: "0",
        MAX_WATCH_STREAMS: "none",
        SHUTDOWN_DELAY_SECONDS: "5s",
        SHUTDOWN_TIMEOUT_SECONDS: "3601",
      }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual([...error.problems].sort(), [
        'HTTP2_MAX_CONCURRENT_STREAMS must be an integer from 1 to 10000 (got "-1")',
        "HTTP_HEADERS_TIMEOUT_SECONDS must not exceed HTTP_REQUEST_TIMEOUT_SECONDS",
        'HTTP_IDLE_TIMEOUT_SECONDS must be an integer from 1 to 3600 (got "soon")',
        "MANAGEMENT_PORT must differ from PORT",
        'MAX_CONNECTIONS must be an integer from 1 to 1000000 (got "0")',
        'MAX_CONNECTIONS_PER_ADDRESS must be an integer from 0 to 1000000 (got "-1")',
        'MAX_WATCH_STREAMS must be an integer from 1 to 1000000 (got "none")',
        'PUBLIC_METRICS must be true or false (got "maybe")',
        'SHUTDOWN_DELAY_SECONDS must be an integer from 0 to 3600 (got "5s")',
        'SHUTDOWN_TIMEOUT_SECONDS must be an integer from 0 to 3600 (got "3601")',
        'WATCH_MAX_SECONDS must be an integer from 1 to 86400 (got "0")',
      ]);
      return true;
    },
  );
});
