// OpenTelemetry tracing of the real process, exporting to an in-process
// OTLP/HTTP receiver: one server span per request continuing the caller's
// W3C traceparent, with the store round trips and the signatures as its
// children, on REST and on gRPC (the unary fast path); the default
// http/protobuf protocol; nothing exported without an endpoint.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClient } from "@connectrpc/connect";
import { TokenService } from "@token-service/client";
import { transportFor } from "../support/flows.js";
import {
  type OtlpReceiver,
  type ReceivedSpan,
  startOtlpReceiver,
} from "../support/otlp-receiver.js";
import {
  associateAt,
  codeNow,
  fixtureEnv,
  issueMfaTokenAt,
  otpForm,
  processUserId,
} from "../support/process-flows.js";
import { type ServiceProcess, startServiceProcess } from "../support/service-process.js";
import { CLIENTS } from "../support/test-service.js";

const SERVER = 2;
const CLIENT = 3;
const INTERNAL = 1;

/** A caller's trace: a fresh trace id and the caller's span id. */
function callerTrace(): { traceId: string; spanId: string; traceparent: string } {
  const hex = (bytes: number) =>
    Array.from({ length: bytes }, () =>
      Math.floor(Math.random() * 256)
        .toString(16)
        .padStart(2, "0"),
    ).join("");
  const traceId = hex(16);
  const spanId = hex(8);
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

/** Waits for the spans of one trace: the server span named `root` and its `children` names. */
async function traceOf(
  receiver: OtlpReceiver,
  traceId: string,
  root: string,
  children: string[],
): Promise<{ server: ReceivedSpan; spans: ReceivedSpan[] }> {
  const ofTrace = (spans: ReceivedSpan[]) => spans.filter((s) => s.traceId === traceId);
  await receiver.waitFor((spans) => {
    const names = ofTrace(spans).map((s) => s.name);
    return names.includes(root) && children.every((name) => names.includes(name));
  });
  const spans = ofTrace(receiver.spans());
  const server = spans.find((s) => s.name === root);
  assert.ok(server);
  return { server, spans };
}

describe("tracing on (OTLP/HTTP JSON to a test receiver)", () => {
  let receiver: OtlpReceiver;
  let service: ServiceProcess;
  before(async () => {
    receiver = await startOtlpReceiver();
    service = await startServiceProcess(
      fixtureEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        // Export every 50 ms rather than every 5 s: the test waits for the spans, never a fixed time.
        OTEL_BSP_SCHEDULE_DELAY: "50",
        OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=test",
      }),
    );
  });
  after(async () => {
    await service.stop();
    await receiver.close();
  });

  test("REST verify: the caller's trace, a server span, store and signing children", async () => {
    const userId = processUserId("trace-rest");
    const secret = await associateAt(service.baseUrl, userId);
    const mfaToken = await issueMfaTokenAt(service.baseUrl, userId);
    const caller = callerTrace();
    const response = await fetch(`${service.baseUrl}/oauth/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        traceparent: caller.traceparent,
      },
      body: otpForm(mfaToken, codeNow(secret)),
    });
    assert.equal(response.status, 200);

    const children = ["store beginVerify", "store commitOtp", "sign access_token", "sign id_token"];
    const { server, spans } = await traceOf(
      receiver,
      caller.traceId,
      "POST /oauth/token",
      children,
    );
    assert.equal(server.kind, SERVER);
    assert.equal(server.parentSpanId, caller.spanId);
    assert.equal(server.attributes["http.request.method"], "POST");
    assert.equal(server.attributes["http.route"], "/oauth/token");
    assert.equal(server.attributes["http.response.status_code"], 200);
    assert.equal(server.attributes["oauth.client_id"], CLIENTS.post.id);
    assert.equal(server.resource["service.name"], "token-service");
    assert.equal(server.resource["deployment.environment.name"], "test");
    for (const name of children) {
      const child = spans.find((s) => s.name === name);
      assert.ok(child, name);
      assert.equal(child.parentSpanId, server.spanId, `${name} is a child of the server span`);
      assert.equal(child.kind, name.startsWith("store") ? CLIENT : INTERNAL);
    }
    assert.equal(
      spans.find((s) => s.name === "store beginVerify")?.attributes["db.operation.name"],
      "beginVerify",
    );
    // The access line names the same trace.
    const line = await service.waitForLine(
      (l) => l.event === "access" && l.route === "/oauth/token" && l.trace_id === caller.traceId,
    );
    assert.equal(line.status, 200);
  });

  test("gRPC verify (the unary fast path): the same children under the RPC's span", async () => {
    const userId = processUserId("trace-grpc");
    const secret = await associateAt(service.baseUrl, userId);
    const mfaToken = await issueMfaTokenAt(service.baseUrl, userId);
    const caller = callerTrace();
    const client = createClient(TokenService, transportFor(service.baseUrl, "grpc"));
    await client.verifyMfaOtp(
      {
        clientId: CLIENTS.post.id,
        clientSecret: CLIENTS.post.secret,
        mfaToken,
        otp: codeNow(secret),
      },
      { headers: { traceparent: caller.traceparent } },
    );
    const root = "token.v1.TokenService/VerifyMfaOtp";
    const children = ["store beginVerify", "store commitOtp", "sign access_token"];
    const { server, spans } = await traceOf(receiver, caller.traceId, root, children);
    assert.equal(server.kind, SERVER);
    assert.equal(server.parentSpanId, caller.spanId);
    assert.equal(server.attributes["rpc.system.name"], "grpc");
    assert.equal(server.attributes["rpc.method"], root);
    assert.equal(server.attributes["rpc.status_code"], "OK");
    for (const name of children) {
      assert.equal(spans.find((s) => s.name === name)?.parentSpanId, server.spanId, name);
    }
  });

  test("a request without traceparent starts its own trace", async () => {
    const response = await fetch(`${service.baseUrl}/.well-known/jwks.json`, {
      headers: { "x-request-id": "trace-jwks-1" },
    });
    assert.equal(response.status, 200);
    const line = await service.waitForLine(
      (l) => l.event === "access" && l.request_id === "trace-jwks-1",
    );
    const traceId = String(line.trace_id);
    assert.match(traceId, /^[0-9a-f]{32}$/);
    const { server } = await traceOf(receiver, traceId, "GET /.well-known/jwks.json", []);
    assert.equal(server.parentSpanId, undefined);
    assert.equal(server.attributes["token_service.request_id"], "trace-jwks-1");
  });
});

test("tracing with the default protocol sends OTLP protobuf holding the caller's trace id", async () => {
  const receiver = await startOtlpReceiver();
  const service = await startServiceProcess(
    fixtureEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY: "50" }),
  );
  try {
    const caller = callerTrace();
    await fetch(`${service.baseUrl}/healthz`, { headers: { traceparent: caller.traceparent } });
    const traceIdBytes = Buffer.from(caller.traceId, "hex");
    const arrived = () =>
      receiver.requests.some((r) => r.path === "/v1/traces" && r.body.includes(traceIdBytes));
    await receiver.waitFor(arrived);
    const request = receiver.requests.find((r) => r.body.includes(traceIdBytes));
    assert.equal(request?.contentType, "application/x-protobuf");
    assert.ok(request?.body.includes(Buffer.from("GET /healthz")));
  } finally {
    await service.stop();
    await receiver.close();
  }
});

test("tracing off (no endpoint): the SDK is not started, trace ids are still logged", async () => {
  // OTEL_* tuning alone turns nothing on.
  const service = await startServiceProcess(
    fixtureEnv({ OTEL_BSP_SCHEDULE_DELAY: "50", OTEL_SERVICE_NAME: "not-exported" }),
  );
  try {
    const caller = callerTrace();
    await fetch(`${service.baseUrl}/healthz`, {
      headers: { traceparent: caller.traceparent, "x-request-id": "trace-off-1" },
    });
    const line = await service.waitForLine(
      (l) => l.event === "access" && l.request_id === "trace-off-1",
    );
    assert.equal(line.trace_id, caller.traceId);
    assert.equal(
      service.lines().some((l) => l.event === "tracing_started"),
      false,
    );
  } finally {
    await service.stop();
  }
});
