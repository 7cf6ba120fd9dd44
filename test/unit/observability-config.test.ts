// The observability variables of the one loader: ACCESS_LOG and the
// OpenTelemetry variables that turn tracing on and choose its protocol.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError, loadConfig } from "../../src/config.js";

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  return [];
}

describe("ACCESS_LOG", () => {
  test("on by default; true/false/1/0, any case", () => {
    assert.equal(loadConfig({}).accessLog, true);
    assert.equal(loadConfig({ ACCESS_LOG: "false" }).accessLog, false);
    assert.equal(loadConfig({ ACCESS_LOG: "FALSE" }).accessLog, false);
    assert.equal(loadConfig({ ACCESS_LOG: "0" }).accessLog, false);
    assert.equal(loadConfig({ ACCESS_LOG: "1" }).accessLog, true);
    assert.equal(loadConfig({ ACCESS_LOG: " true " }).accessLog, true);
  });

  test("anything else is a problem", () => {
    assert.deepEqual(problemsOf({ ACCESS_LOG: "off" }), [
      'ACCESS_LOG must be true or false (got "off")',
    ]);
  });
});

describe("tracing (OTEL_*)", () => {
  test("off without an endpoint; defaults", () => {
    assert.deepEqual(loadConfig({}).tracing, {
      enabled: false,
      endpoint: undefined,
      protocol: "http/protobuf",
      serviceName: "token-service",
    });
  });

  test("on with OTEL_EXPORTER_OTLP_ENDPOINT or the traces endpoint", () => {
    const base = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }).tracing;
    assert.equal(base.enabled, true);
    assert.equal(base.endpoint, "http://collector:4318");
    const traces = loadConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://traces.example/v1/traces",
    }).tracing;
    assert.equal(traces.endpoint, "https://traces.example/v1/traces");
  });

  test("OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none turn it off", () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" };
    assert.equal(loadConfig({ ...endpoint, OTEL_SDK_DISABLED: "true" }).tracing.enabled, false);
    assert.equal(loadConfig({ ...endpoint, OTEL_TRACES_EXPORTER: "none" }).tracing.enabled, false);
    assert.equal(loadConfig({ ...endpoint, OTEL_TRACES_EXPORTER: "otlp" }).tracing.enabled, true);
  });

  test("protocol: http/protobuf (default) or http/json; the traces variable wins", () => {
    assert.equal(
      loadConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }).tracing.protocol,
      "http/json",
    );
    assert.equal(
      loadConfig({
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf",
      }).tracing.protocol,
      "http/protobuf",
    );
  });

  test("service name: OTEL_SERVICE_NAME, else OTEL_RESOURCE_ATTRIBUTES, else token-service", () => {
    assert.equal(
      loadConfig({
        OTEL_SERVICE_NAME: "auth-mfa",
        OTEL_RESOURCE_ATTRIBUTES: "service.name=other",
      }).tracing.serviceName,
      "auth-mfa",
    );
    assert.equal(
      loadConfig({ OTEL_RESOURCE_ATTRIBUTES: "team=id,service.name=mfa%20tokens" }).tracing
        .serviceName,
      "mfa tokens",
    );
  });

  test("a bad endpoint, exporter or protocol is reported with the rest", () => {
    assert.deepEqual(
      problemsOf({
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "collector:4318",
        OTEL_TRACES_EXPORTER: "zipkin",
        OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
        ACCESS_LOG: "maybe",
      }),
      [
        'ACCESS_LOG must be true or false (got "maybe")',
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http:// or https:// URL",
        'OTEL_TRACES_EXPORTER must be otlp or none (got "zipkin")',
        'OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or http/json (got "grpc"; OTLP over gRPC is not supported: point the endpoint at the collector\'s OTLP/HTTP port, 4318 by default)',
      ],
    );
  });
});
