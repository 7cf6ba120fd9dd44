// The unary fast path (src/rpc/unary-fast-path.ts) against connect-es itself:
// the same requests to a service with the fast path and to one without it
// must get the same status, headers, body and trailers — on success, on an
// OAuth error with its typed detail, and for every request form the fast path
// hands back to connect-es (undecodable, compressed, oversized, with a
// timeout, a malformed gRPC envelope). Real sockets, raw HTTP/1.1 and h2c.

import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import { after, before, describe, test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  IssueMfaTokenRequestSchema,
  IssueMfaTokenResponseSchema,
  OAuthErrorSchema,
  VerifyMfaOtpRequestSchema,
  VerifyMfaOtpResponseSchema,
} from "@token-service/client";
import { codeAt, enrolledUser, issueMfaToken } from "../support/flows.js";
import {
  h1Request,
  h2cRequest,
  type RawRequest,
  type RawResponse,
} from "../support/http-clients.js";
import {
  CLIENTS,
  startTestService,
  TEST_INTERNAL_API_KEY,
  type TestService,
} from "../support/test-service.js";

const PATH = "/token.v1.TokenService/VerifyMfaOtp";

type Scenario = {
  name: string;
  /** h1 = HTTP/1.1, h2 = h2c with prior knowledge. */
  transport: "h1" | "h2";
  /** Builds the request for one service; `ready` has a fresh mfa_token and the current code. */
  request: (ready: { mfaToken: string; otp: string }) => RawRequest;
  /** Success bodies hold fresh tokens: compare their shape, not their bytes. */
  success?: boolean;
  /** What the fast path does with it: answers it, takes it then hands it to connect-es, or declines it. */
  path: "served" | "handedOver" | "declined";
};

const json = (ready: { mfaToken: string; otp: string }, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    mfaToken: ready.mfaToken,
    otp: ready.otp,
    clientId: CLIENTS.post.id,
    clientSecret: CLIENTS.post.secret,
    ...extra,
  });

const binary = (ready: { mfaToken: string; otp: string }) =>
  Buffer.from(
    toBinary(
      VerifyMfaOtpRequestSchema,
      create(VerifyMfaOtpRequestSchema, {
        mfaToken: ready.mfaToken,
        otp: ready.otp,
        clientId: CLIENTS.post.id,
        clientSecret: CLIENTS.post.secret,
      }),
    ),
  );

const envelope = (message: Buffer, flags = 0) => {
  const frame = Buffer.alloc(5 + message.length);
  frame[0] = flags;
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  return frame;
};

const wrong = (ready: { mfaToken: string; otp: string }) => ({
  ...ready,
  otp: ready.otp === "000000" ? "111111" : "000000",
});

/** A POST of `body` to VerifyMfaOtp. */
const post = (
  headers: Record<string, string>,
  body: string | Buffer,
  extra: Partial<RawRequest> = {},
): RawRequest => ({ method: "POST", path: PATH, headers, body, ...extra });

const connectJson = { "content-type": "application/json", "connect-protocol-version": "1" };
const grpc = { "content-type": "application/grpc", te: "trailers" };

const scenarios: Scenario[] = [
  {
    name: "Connect JSON over HTTP/1.1: success",
    path: "served",
    transport: "h1",
    success: true,
    request: (r) => post(connectJson, json(r)),
  },
  {
    name: "Connect JSON over HTTP/1.1: wrong code (OAuth error with detail)",
    path: "served",
    transport: "h1",
    request: (r) => post(connectJson, json(wrong(r))),
  },
  {
    name: "Connect JSON: malformed mfa_token",
    path: "served",
    transport: "h1",
    request: (r) => post(connectJson, json({ ...r, mfaToken: "not-a-token" })),
  },
  {
    name: "Connect JSON with charset, over h2c: success",
    path: "served",
    transport: "h2",
    success: true,
    request: (r) => post({ "content-type": "application/json; charset=utf-8" }, json(r)),
  },
  {
    name: "Connect JSON accepting gzip (the answer with an id_token is over 1 KiB)",
    path: "served",
    transport: "h1",
    success: true,
    request: (r) => post({ ...connectJson, "accept-encoding": "gzip" }, json(r)),
  },
  {
    name: "Connect JSON: not JSON (handed to connect-es)",
    path: "handedOver",
    transport: "h1",
    request: () => post(connectJson, "{nope"),
  },
  {
    name: "Connect JSON: an unknown field (ignored, as connect-es ignores it)",
    path: "served",
    transport: "h1",
    success: true,
    request: (r) => post(connectJson, json(r, { bogus: 1 })),
  },
  {
    name: "Connect JSON: gzip-compressed request (handed to connect-es)",
    path: "declined",
    transport: "h1",
    success: true,
    request: (r) => post({ ...connectJson, "content-encoding": "gzip" }, gzipSync(json(r))),
  },
  {
    name: "Connect JSON: an unknown request compression (handed to connect-es)",
    path: "declined",
    transport: "h1",
    request: (r) => post({ ...connectJson, "content-encoding": "zstd" }, json(r)),
  },
  {
    name: "Connect JSON: a timeout header (handed to connect-es)",
    path: "declined",
    transport: "h1",
    success: true,
    request: (r) => post({ ...connectJson, "connect-timeout-ms": "5000" }, json(r)),
  },
  {
    name: "Connect JSON: a chunked body over 64 KiB (read, then handed to connect-es)",
    path: "handedOver",
    transport: "h1",
    request: (r) => post(connectJson, json(r, { pad: "x".repeat(70_000) }), { chunkSize: 8192 }),
  },
  {
    name: "Connect proto over HTTP/1.1: success",
    path: "served",
    transport: "h1",
    success: true,
    request: (r) => post({ "content-type": "application/proto" }, binary(r)),
  },
  {
    name: "Connect proto: not protobuf (handed to connect-es, InvalidArgument)",
    path: "handedOver",
    transport: "h1",
    request: () => post({ "content-type": "application/proto" }, Buffer.from([0xff, 0xff, 0xff])),
  },
  {
    name: "Connect GET (handed to connect-es)",
    path: "declined",
    transport: "h1",
    request: () => ({ method: "GET", path: `${PATH}?encoding=json&message=%7B%7D` }),
  },
  {
    name: "gRPC: success",
    path: "served",
    transport: "h2",
    success: true,
    request: (r) => post(grpc, envelope(binary(r))),
  },
  {
    name: "gRPC: wrong code (status and details in the trailers)",
    path: "served",
    transport: "h2",
    request: (r) => post(grpc, envelope(binary(wrong(r)))),
  },
  {
    name: "gRPC accepting gzip: success",
    path: "served",
    transport: "h2",
    success: true,
    request: (r) =>
      post(
        {
          ...grpc,
          "content-type": "application/grpc+proto",
          "grpc-accept-encoding": "gzip",
        },
        envelope(binary(r)),
      ),
  },
  {
    name: "gRPC: a truncated envelope (handed to connect-es)",
    path: "handedOver",
    transport: "h2",
    request: (r) => post(grpc, envelope(binary(r)).subarray(0, 12)),
  },
  {
    name: "gRPC: a compressed flag without grpc-encoding (handed to connect-es)",
    path: "handedOver",
    transport: "h2",
    request: (r) => post(grpc, envelope(binary(r), 1)),
  },
  {
    name: "gRPC: not protobuf (handed to connect-es, InvalidArgument)",
    path: "handedOver",
    transport: "h2",
    request: () => post(grpc, envelope(Buffer.from([0xff, 0xff, 0xff]))),
  },
  {
    name: "gRPC: a grpc-timeout header (handed to connect-es)",
    path: "declined",
    transport: "h2",
    success: true,
    request: (r) => post({ ...grpc, "grpc-timeout": "5S" }, envelope(binary(r))),
  },
  {
    name: "gRPC-Web (handed to connect-es)",
    path: "declined",
    transport: "h1",
    success: true,
    request: (r) => post({ "content-type": "application/grpc-web+proto" }, envelope(binary(r))),
  },
];

/**
 * Headers both paths must agree on: everything but the date, the request id
 * (generated per request; both paths must send one) and, for fresh tokens, the length.
 */
function comparableHeaders(response: RawResponse, success: boolean): Record<string, string> {
  const { date: _date, "x-request-id": requestId, ...rest } = response.headers;
  assert.match(requestId ?? "", /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  if (success) delete rest["content-length"];
  // node's HTTP/1.1 server adds these itself on either path.
  return rest;
}

/** The decoded success message, whatever the wire form. */
function successMessage(response: RawResponse): Record<string, unknown> {
  const contentType = response.headers["content-type"] ?? "";
  let bytes = response.bytes;
  if (response.headers["content-encoding"] === "gzip") bytes = gunzipSync(bytes);
  if (contentType === "application/json") return JSON.parse(bytes.toString("utf8"));
  if (contentType === "application/proto") {
    return { ...fromBinary(VerifyMfaOtpResponseSchema, bytes) };
  }
  // gRPC and gRPC-Web: the first frame holds the message.
  let message = bytes.subarray(5, 5 + bytes.readUInt32BE(1));
  if (bytes[0] === 1) message = gunzipSync(message);
  return { ...fromBinary(VerifyMfaOtpResponseSchema, message) };
}

describe("unary fast path: the same answers as connect-es", () => {
  let fast: TestService;
  let plain: TestService;
  before(async () => {
    fast = await startTestService();
    plain = await startTestService({ rpcFastPath: false });
  });
  after(async () => {
    await fast?.close();
    await plain?.close();
  });

  const ready = async (service: TestService) => {
    const { userId, secret } = await enrolledUser(service);
    const mfaToken = await issueMfaToken(service, userId);
    return { mfaToken, otp: codeAt(service, secret) };
  };
  const send = (service: TestService, scenario: Scenario, request: RawRequest) =>
    scenario.transport === "h1"
      ? h1Request(service.baseUrl, request)
      : h2cRequest(service.baseUrl, request);

  for (const scenario of scenarios) {
    test(scenario.name, async () => {
      const request = scenario.request(await ready(fast));
      const [fastPath] = fast.app.rpcFastPaths;
      const counts = { ...(fastPath?.counts ?? { served: 0, handedOver: 0 }) };
      const fromFast = await send(fast, scenario, request);
      const expected = {
        served: counts.served + (scenario.path === "served" ? 1 : 0),
        handedOver: counts.handedOver + (scenario.path === "handedOver" ? 1 : 0),
      };
      assert.deepEqual({ ...fastPath?.counts }, expected, `the fast path ${scenario.path} it`);
      const fromPlain = await send(plain, scenario, scenario.request(await ready(plain)));
      const success = scenario.success === true;

      assert.equal(fromFast.status, fromPlain.status);
      assert.deepEqual(comparableHeaders(fromFast, success), comparableHeaders(fromPlain, success));
      assert.deepEqual(fromFast.trailers, fromPlain.trailers);
      if (!success) {
        assert.deepEqual(fromFast.bytes, fromPlain.bytes);
        return;
      }
      const fastMessage = successMessage(fromFast);
      const plainMessage = successMessage(fromPlain);
      assert.deepEqual(Object.keys(fastMessage).sort(), Object.keys(plainMessage).sort());
      for (const field of ["tokenType", "token_type", "expiresIn", "scope"]) {
        assert.deepEqual(fastMessage[field], plainMessage[field], field);
      }
      const accessToken = String(fastMessage.accessToken ?? fastMessage.access_token ?? "");
      assert.match(accessToken, /^[\w-]+\.[\w-]+\.[\w-]+$/, "a JWT access token");
    });
  }

  test("the error scenarios really are errors, with the typed OAuthError detail", async () => {
    const scenario = scenarios.find((s) => s.name.startsWith("gRPC: wrong code")) as Scenario;
    const response = await send(fast, scenario, scenario.request(await ready(fast)));
    // error row 9: invalid_grant is FailedPrecondition (9) on RPC.
    assert.equal(response.trailers["grpc-status"], "9");
    assert.equal(response.trailers["cache-control"], "no-store");
    const details = response.trailers["grpc-status-details-bin"];
    assert.ok(details, "grpc-status-details-bin present");
    const connectScenario = scenarios[1] as Scenario;
    const connectResponse = await send(
      fast,
      connectScenario,
      connectScenario.request(await ready(fast)),
    );
    const body = JSON.parse(connectResponse.text) as {
      code: string;
      details: { type: string; value: string }[];
    };
    assert.equal(body.details[0]?.type, "token.v1.OAuthError");
    const detail = fromBinary(
      OAuthErrorSchema,
      Buffer.from(body.details[0]?.value ?? "", "base64"),
    );
    assert.equal(detail.error, "invalid_grant");
  });

  test("a success on the fast path is recorded in the metrics like one through connect-es", async () => {
    // The registry itself: GET /metrics (management port) renders it at most once a second.
    const before = await fast.app.ctx.metrics.registry.metrics();
    const count = (text: string) =>
      Number(
        /token_service_requests_total\{[^}]*route="VerifyMfaOtp"[^}]*outcome="ok"[^}]*\} (\d+)/.exec(
          text,
        )?.[1] ?? 0,
      );
    const scenario = scenarios[0] as Scenario;
    const response = await send(fast, scenario, scenario.request(await ready(fast)));
    assert.equal(response.status, 200);
    const afterText = await fast.app.ctx.metrics.registry.metrics();
    assert.equal(count(afterText), count(before) + 1);
  });
  test("clients that go away mid-request or mid-call leave the service serving", async () => {
    const { port } = new URL(fast.baseUrl);
    const served = fast.app.rpcFastPaths[0]?.counts.served ?? 0;
    // HTTP/1.1: headers and half a body, then the socket closes.
    await new Promise<void>((resolve) => {
      const req = http.request({
        host: "127.0.0.1",
        port,
        method: "POST",
        path: PATH,
        headers: { ...connectJson, "content-length": "1000" },
      });
      req.on("error", () => resolve());
      req.write('{"mfaToken":');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 50);
    });
    // h2c: a gRPC call reset after its body was sent, and one reset mid-body.
    const session = http2.connect(fast.baseUrl);
    session.on("error", () => {});
    for (const complete of [true, false]) {
      await new Promise<void>((resolve) => {
        const stream = session.request({ ":method": "POST", ":path": PATH, ...grpc });
        stream.on("error", () => resolve());
        stream.on("close", () => resolve());
        const body = envelope(binary({ mfaToken: "mt1.x", otp: "123456" }));
        if (complete) stream.end(body);
        else stream.write(body.subarray(0, 8));
        setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), complete ? 0 : 50);
      });
    }
    session.close();
    // The service still answers, on the fast path.
    const scenario = scenarios[0] as Scenario;
    const response = await send(fast, scenario, scenario.request(await ready(fast)));
    assert.equal(response.status, 200);
    assert.ok((fast.app.rpcFastPaths[0]?.counts.served ?? 0) > served);
  });
});

describe("unary fast path for IssueMfaToken: the same answers as connect-es", () => {
  let fast: TestService;
  let plain: TestService;
  before(async () => {
    fast = await startTestService();
    plain = await startTestService({ rpcFastPath: false });
  });
  after(async () => {
    await fast?.close();
    await plain?.close();
  });

  const ISSUE_PATH = "/token.v1.MfaTokenService/IssueMfaToken";
  const withKey = (key: string) => ({ authorization: `Bearer ${key}` });
  const body = (fields: Record<string, unknown>) =>
    JSON.stringify({ clientId: CLIENTS.post.id, scope: "openid", ...fields });
  const grpcBody = (fields: { userId: string; clientId?: string }) => {
    const message = toBinary(
      IssueMfaTokenRequestSchema,
      create(IssueMfaTokenRequestSchema, { clientId: CLIENTS.post.id, ...fields }),
    );
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    return frame;
  };
  const cases: Array<{
    name: string;
    transport: "h1" | "h2";
    success?: true;
    request: RawRequest;
  }> = [
    {
      name: "Connect JSON: success",
      transport: "h1",
      success: true,
      request: {
        method: "POST",
        path: ISSUE_PATH,
        headers: { ...connectJson, ...withKey(TEST_INTERNAL_API_KEY) },
        body: body({ userId: "fast-issue-user" }),
      },
    },
    {
      name: "Connect JSON: a wrong internal key (Unauthenticated with the detail)",
      transport: "h1",
      request: {
        method: "POST",
        path: ISSUE_PATH,
        headers: { ...connectJson, ...withKey("not-the-internal-key-0123") },
        body: body({ userId: "fast-issue-user" }),
      },
    },
    {
      name: "Connect JSON: user_id missing (row 3 wording)",
      transport: "h1",
      request: {
        method: "POST",
        path: ISSUE_PATH,
        headers: { ...connectJson, ...withKey(TEST_INTERNAL_API_KEY) },
        body: body({}),
      },
    },
    {
      name: "gRPC: success",
      transport: "h2",
      success: true,
      request: {
        method: "POST",
        path: ISSUE_PATH,
        headers: { ...grpc, ...withKey(TEST_INTERNAL_API_KEY) },
        body: grpcBody({ userId: "fast-issue-user" }),
      },
    },
    {
      name: "gRPC: an unknown client (InvalidArgument with the detail)",
      transport: "h2",
      request: {
        method: "POST",
        path: ISSUE_PATH,
        headers: { ...grpc, ...withKey(TEST_INTERNAL_API_KEY) },
        body: grpcBody({ userId: "fast-issue-user", clientId: "nobody" }),
      },
    },
  ];

  for (const scenario of cases) {
    test(scenario.name, async () => {
      const issuePath = fast.app.rpcFastPaths.find((p) => p.path === ISSUE_PATH);
      assert.ok(issuePath, "IssueMfaToken has a fast path");
      const served = issuePath.counts.served;
      const send = (service: TestService) =>
        scenario.transport === "h1"
          ? h1Request(service.baseUrl, scenario.request)
          : h2cRequest(service.baseUrl, scenario.request);
      const fromFast = await send(fast);
      assert.equal(issuePath.counts.served, served + 1, "the fast path served it");
      const fromPlain = await send(plain);
      assert.equal(fromFast.status, fromPlain.status);
      const success = scenario.success === true;
      assert.deepEqual(comparableHeaders(fromFast, success), comparableHeaders(fromPlain, success));
      assert.deepEqual(fromFast.trailers, fromPlain.trailers);
      if (!success) {
        assert.deepEqual(fromFast.bytes, fromPlain.bytes);
        assert.notEqual(fromFast.status === 200 ? fromFast.trailers["grpc-status"] : "error", "0");
        return;
      }
      // A fresh, sealed mfa_token each time: compare everything but it.
      const decode = (response: RawResponse) => {
        if (scenario.transport === "h1") return JSON.parse(response.bytes.toString("utf8"));
        const message = response.bytes.subarray(5, 5 + response.bytes.readUInt32BE(1));
        return { ...fromBinary(IssueMfaTokenResponseSchema, message) };
      };
      const { mfaToken: fastToken, ...fastRest } = decode(fromFast);
      const { mfaToken: plainToken, ...plainRest } = decode(fromPlain);
      assert.match(String(fastToken), /^mt1\./);
      assert.match(String(plainToken), /^mt1\./);
      assert.deepEqual(JSON.parse(JSON.stringify(fastRest)), JSON.parse(JSON.stringify(plainRest)));
    });
  }
});
