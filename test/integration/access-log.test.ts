// The access log (ACCESS_LOG, default on) of the real process: one JSON line
// on stdout per request on every surface — REST, Connect, gRPC, gRPC-Web —
// with the caller's x-request-id (when sane) echoed in the response, the
// trace id of a valid traceparent, the route template or RPC path, the
// status and RPC code, the OAuth error, the authenticated client, the
// duration; and none with ACCESS_LOG=false.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ConnectError, createClient } from "@connectrpc/connect";
import { TokenService } from "@token-service/client";
import { transportFor } from "../support/flows.js";
import { h2cRequest } from "../support/http-clients.js";
import {
  associateAt,
  codeNow,
  fixtureEnv,
  issueMfaTokenAt,
  otpForm,
  processUserId,
  wrongCodeNow,
} from "../support/process-flows.js";
import { type ServiceProcess, startServiceProcess } from "../support/service-process.js";
import { CLIENTS } from "../support/test-service.js";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const traceparent = (spanId: string) => `00-${TRACE_ID}-${spanId}-01`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const VERIFY_PATH = "/token.v1.TokenService/VerifyMfaOtp";

type Line = Record<string, unknown>;

/** The fields every access line has, whatever the request. */
const ALWAYS = [
  "level",
  "time",
  "service",
  "event",
  "request_id",
  "method",
  "surface",
  "route",
  "status",
  "duration_us",
  "msg",
];

function assertAccessLine(line: Line, expected: Line, optional: string[] = []): void {
  const { time, duration_us, ...rest } = line;
  assert.equal(typeof time, "number");
  assert.equal(typeof duration_us, "number");
  assert.ok((duration_us as number) >= 0 && (duration_us as number) < 60_000_000);
  assert.deepEqual(rest, {
    level: 30,
    service: "token-service",
    event: "access",
    msg: "request",
    ...expected,
  });
  assert.deepEqual(
    Object.keys(line).sort(),
    [...new Set([...ALWAYS, ...Object.keys(expected), ...optional])].sort(),
  );
}

function rpcClient(baseUrl: string, protocol: "connect-h1" | "grpc" | "grpc-web") {
  return createClient(TokenService, transportFor(baseUrl, protocol));
}

async function rpcError(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("the call succeeded");
}

describe("access log on (the default)", () => {
  let service: ServiceProcess;
  before(async () => {
    service = await startServiceProcess(fixtureEnv());
  });
  after(() => service.stop());

  const accessLine = (requestId: string) =>
    service.waitForLine((line) => line.event === "access" && line.request_id === requestId);

  test("REST: the caller's x-request-id and traceparent, logged and echoed", async () => {
    const userId = processUserId("access-rest");
    const secret = await associateAt(service.baseUrl, userId);
    const mfaToken = await issueMfaTokenAt(service.baseUrl, userId);
    const response = await fetch(`${service.baseUrl}/oauth/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-request-id": "req-rest-1",
        traceparent: traceparent("00f067aa0ba902b7"),
      },
      body: otpForm(mfaToken, codeNow(secret)),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-request-id"), "req-rest-1");
    const line = await accessLine("req-rest-1");
    assertAccessLine(line, {
      request_id: "req-rest-1",
      trace_id: TRACE_ID,
      method: "POST",
      surface: "rest",
      route: "/oauth/token",
      status: 200,
      client_id: CLIENTS.post.id,
    });
    // Never a token, code or credential.
    const body = (await response.json()) as { access_token: string };
    const text = JSON.stringify(line);
    for (const secretValue of [mfaToken, body.access_token, CLIENTS.post.secret, secret]) {
      assert.equal(text.includes(secretValue), false);
    }
  });

  test("REST without the headers: a generated id, echoed; no trace_id", async () => {
    const response = await fetch(`${service.baseUrl}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "http://auth0.com/oauth/grant-type/mfa-otp",
        client_id: CLIENTS.post.id,
        client_secret: "not-the-secret-0123456789",
        mfa_token: "x",
        otp: "123456",
      }).toString(),
    });
    assert.equal(response.status, 401);
    const requestId = response.headers.get("x-request-id") ?? "";
    assert.match(requestId, UUID);
    assertAccessLine(await accessLine(requestId), {
      request_id: requestId,
      method: "POST",
      surface: "rest",
      route: "/oauth/token",
      status: 401,
      error: "access_denied",
    });
  });

  test("an x-request-id that is not sane is replaced; a malformed traceparent is ignored", async () => {
    for (const insane of ["has spaces in it", "x".repeat(129), 'quote"d', "semi;colon"]) {
      const response = await fetch(`${service.baseUrl}/healthz`, {
        headers: { "x-request-id": insane, traceparent: "00-not-a-trace-01" },
      });
      assert.equal(response.status, 200);
      const requestId = response.headers.get("x-request-id") ?? "";
      assert.match(requestId, UUID);
      assertAccessLine(await accessLine(requestId), {
        request_id: requestId,
        method: "GET",
        surface: "rest",
        route: "/healthz",
        status: 200,
      });
    }
    // The longest sane id is kept as it is.
    const longest = `a.b_c:d-${"9".repeat(120)}`;
    const kept = await fetch(`${service.baseUrl}/healthz`, {
      headers: { "x-request-id": longest },
    });
    assert.equal(kept.headers.get("x-request-id"), longest);
    await accessLine(longest);
  });

  test("Connect: route, status, code, OAuth error, client, trace id", async () => {
    const userId = processUserId("access-connect");
    const secret = await associateAt(service.baseUrl, userId);
    const error = await rpcError(
      rpcClient(service.baseUrl, "connect-h1").verifyMfaOtp(
        {
          clientId: CLIENTS.post.id,
          clientSecret: CLIENTS.post.secret,
          mfaToken: await issueMfaTokenAt(service.baseUrl, userId),
          otp: wrongCodeNow(secret),
        },
        {
          headers: {
            "x-request-id": "req-connect-1",
            traceparent: traceparent("00f067aa0ba902b8"),
          },
        },
      ),
    );
    assert.equal(error.metadata.get("x-request-id"), "req-connect-1");
    assertAccessLine(await accessLine("req-connect-1"), {
      request_id: "req-connect-1",
      trace_id: TRACE_ID,
      method: "POST",
      surface: "connect",
      route: VERIFY_PATH,
      status: 400,
      code: "failed_precondition",
      error: "invalid_grant",
      client_id: CLIENTS.post.id,
    });
  });

  test("gRPC: a success, with the id echoed in the response headers", async () => {
    const userId = processUserId("access-grpc");
    const secret = await associateAt(service.baseUrl, userId);
    let echoed: string | null = null;
    const response = await rpcClient(service.baseUrl, "grpc").verifyMfaOtp(
      {
        clientId: CLIENTS.post.id,
        clientSecret: CLIENTS.post.secret,
        mfaToken: await issueMfaTokenAt(service.baseUrl, userId),
        otp: codeNow(secret),
      },
      {
        headers: { "x-request-id": "req-grpc-1", traceparent: traceparent("00f067aa0ba902b9") },
        onHeader: (headers) => {
          echoed = headers.get("x-request-id");
        },
      },
    );
    assert.notEqual(response.accessToken, "");
    assert.equal(echoed, "req-grpc-1");
    assertAccessLine(await accessLine("req-grpc-1"), {
      request_id: "req-grpc-1",
      trace_id: TRACE_ID,
      method: "POST",
      surface: "grpc",
      route: VERIFY_PATH,
      status: 200,
      code: "ok",
      grpc_status: 0,
      client_id: CLIENTS.post.id,
    });
  });

  test("gRPC-Web: an error, with its grpc-status", async () => {
    const userId = processUserId("access-grpc-web");
    const secret = await associateAt(service.baseUrl, userId);
    const error = await rpcError(
      rpcClient(service.baseUrl, "grpc-web").verifyMfaOtp(
        {
          clientId: CLIENTS.post.id,
          clientSecret: CLIENTS.post.secret,
          mfaToken: await issueMfaTokenAt(service.baseUrl, userId),
          otp: wrongCodeNow(secret),
        },
        { headers: { "x-request-id": "req-grpc-web-1" } },
      ),
    );
    assert.equal(error.metadata.get("x-request-id"), "req-grpc-web-1");
    assertAccessLine(await accessLine("req-grpc-web-1"), {
      request_id: "req-grpc-web-1",
      method: "POST",
      surface: "grpc-web",
      route: VERIFY_PATH,
      status: 200,
      code: "failed_precondition",
      grpc_status: 9,
      error: "invalid_grant",
      client_id: CLIENTS.post.id,
    });
  });

  test("gRPC refused before any implementation ran: the status from the trailers", async () => {
    // Not protobuf: connect-es answers InvalidArgument itself.
    const response = await h2cRequest(service.baseUrl, {
      method: "POST",
      path: VERIFY_PATH,
      headers: { "content-type": "application/grpc", te: "trailers", "x-request-id": "req-grpc-2" },
      body: Buffer.from([0, 0, 0, 0, 3, 0xff, 0xff, 0xff]),
    });
    assert.equal(response.trailers["grpc-status"], "3");
    assert.equal(response.headers["x-request-id"], "req-grpc-2");
    assertAccessLine(await accessLine("req-grpc-2"), {
      request_id: "req-grpc-2",
      method: "POST",
      surface: "grpc",
      route: VERIFY_PATH,
      status: 200,
      code: "invalid_argument",
      grpc_status: 3,
    });
  });

  test("a route is a template or a known RPC path, never a raw id or path", async () => {
    const deleted = await fetch(`${service.baseUrl}/mfa/authenticators/totp%7Cid-in-the-path`, {
      method: "DELETE",
      headers: { "x-request-id": "req-delete-1" },
    });
    assert.equal(deleted.status, 401);
    const line = await accessLine("req-delete-1");
    assertAccessLine(line, {
      request_id: "req-delete-1",
      method: "DELETE",
      surface: "rest",
      route: "/mfa/authenticators/{id}",
      status: 401,
      error: "invalid_token",
    });
    assert.equal(JSON.stringify(line).includes("id-in-the-path"), false);

    const unknown = await fetch(`${service.baseUrl}/token.v1.Nope/Method-${Date.now()}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "req-unknown-1" },
      body: "{}",
    });
    assert.equal(unknown.status, 404);
    assertAccessLine(await accessLine("req-unknown-1"), {
      request_id: "req-unknown-1",
      method: "POST",
      surface: "rest",
      route: "unmatched",
      status: 404,
      error: "not_found",
    });
  });
});

test("ACCESS_LOG=false: no access line, the request id still echoed", async () => {
  const service = await startServiceProcess(fixtureEnv({ ACCESS_LOG: "false" }));
  try {
    const userId = processUserId("access-off");
    await associateAt(service.baseUrl, userId);
    const response = await fetch(`${service.baseUrl}/healthz`, {
      headers: { "x-request-id": "req-off-1" },
    });
    assert.equal(response.headers.get("x-request-id"), "req-off-1");
    // Lines leave in order: once the enrollment's security event is read, the
    // associate request's access line would have been too; the shutdown line
    // comes after the health check's.
    await service.waitForLine((line) => line.event === "authenticator_enrolled");
  } finally {
    await service.stop();
  }
  await service.waitForLine((line) => line.event === "draining");
  assert.deepEqual(
    service.lines().filter((line) => line.event === "access"),
    [],
  );
});
