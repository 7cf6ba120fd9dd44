// The RPC surface as a Node service written against @grpc/grpc-js would use
// it: stubs loaded from proto/ at run time by @grpc/proto-loader (no
// generated code), the internal key as call metadata, errors read from the
// status and its grpc-status-details-bin; an unknown method or service is
// UNIMPLEMENTED; and grpc-js-reflection-client (which asks
// grpc.reflection.v1alpha unless told otherwise) lists the services and
// methods with no .proto at hand.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { OAuthErrorSchema } from "@token-service/client";
import { GrpcReflection } from "grpc-js-reflection-client";
import { codeAt, nextStep, uniqueUserId } from "../support/flows.js";
import {
  CLIENTS,
  startTestService,
  TEST_INTERNAL_API_KEY,
  type TestService,
} from "../support/test-service.js";

const PROTO_DIR = fileURLToPath(new URL("../../proto", import.meta.url));

type Callback<T> = (error: grpc.ServiceError | null, response: T) => void;
type UnaryMethod = (
  request: Record<string, unknown>,
  metadata: grpc.Metadata,
  callback: Callback<Record<string, unknown>>,
) => void;
type Stub = grpc.Client & Record<string, UnaryMethod>;
type StubClass = new (address: string, credentials: grpc.ChannelCredentials) => Stub;

/** What `protoLoader.loadSync` + `loadPackageDefinition` give for token.v1, as a service author writes it. */
function loadTokenV1(): Record<"TokenService" | "MfaService" | "MfaTokenService", StubClass> {
  const definition = protoLoader.loadSync(
    [
      "token/v1/token_service.proto",
      "token/v1/mfa_service.proto",
      "token/v1/mfa_token_service.proto",
    ],
    { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, enums: String, defaults: true },
  );
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    token: { v1: Record<"TokenService" | "MfaService" | "MfaTokenService", StubClass> };
  };
  return loaded.token.v1;
}

/** One unary call as a promise: the response, or the ServiceError. */
function call(
  stub: Stub,
  method: string,
  request: Record<string, unknown>,
  metadata = new grpc.Metadata(),
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const fn = stub[method];
    if (fn === undefined) throw new Error(`no method ${method} on the stub`);
    fn.call(stub, request, metadata, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

function internalMetadata(): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${TEST_INTERNAL_API_KEY}`);
  return metadata;
}

/** The typed token.v1.OAuthError detail of a grpc-js error (google.rpc.Status in grpc-status-details-bin). */
function oauthErrorOf(error: grpc.ServiceError): { error: string; errorDescription: string } {
  const headers = new Headers();
  headers.set("grpc-status", String(error.code));
  const details = error.metadata.get("grpc-status-details-bin")[0];
  assert.ok(Buffer.isBuffer(details), "grpc-status-details-bin is present");
  headers.set("grpc-status-details-bin", details.toString("base64"));
  const found = findTrailerError(headers)?.findDetails(OAuthErrorSchema)[0];
  assert.ok(found, "the OAuthError detail is present");
  return { error: found.error, errorDescription: found.errorDescription };
}

describe("@grpc/grpc-js with @grpc/proto-loader stubs", () => {
  let service: TestService;
  let address: string;
  const stubs: grpc.Client[] = [];
  const stub = (Class: StubClass): Stub => {
    const created = new Class(address, grpc.credentials.createInsecure());
    stubs.push(created);
    return created;
  };
  before(async () => {
    service = await startTestService();
    address = `127.0.0.1:${service.port}`;
  });
  after(async () => {
    for (const created of stubs) created.close();
    await service?.close();
  });

  test("IssueMfaToken, Associate, VerifyMfaOtp, ListAuthenticators: a whole enrolment", async () => {
    const v1 = loadTokenV1();
    const mfaTokenService = stub(v1.MfaTokenService);
    const mfa = stub(v1.MfaService);
    const tokens = stub(v1.TokenService);
    const userId = uniqueUserId("grpcjs");
    const issued = await call(
      mfaTokenService,
      "IssueMfaToken",
      {
        user_id: userId,
        client_id: CLIENTS.post.id,
        audience: "https://api.example.test",
        scope: "openid",
        user_label: `${userId}@example.test`,
      },
      internalMetadata(),
    );
    assert.equal(typeof issued.mfa_token, "string");
    assert.equal(issued.expires_in, 600);
    assert.deepEqual(issued.mfa_requirements, { enroll: [{ type: "otp" }], challenge: [] });

    const associated = await call(mfa, "Associate", {
      mfa_token: issued.mfa_token,
      authenticator_types: ["otp"],
    });
    assert.equal(associated.authenticator_type, "otp");
    const secret = associated.secret as string;
    assert.match(secret, /^[A-Z2-7]{32}$/);

    const verified = await call(tokens, "VerifyMfaOtp", {
      mfa_token: issued.mfa_token,
      otp: codeAt(service, secret),
      client_id: CLIENTS.post.id,
      client_secret: CLIENTS.post.secret,
    });
    assert.equal(verified.token_type, "Bearer");
    assert.equal(typeof verified.access_token, "string");
    assert.equal(verified.expires_in, 86400);
    assert.equal(typeof verified.id_token, "string");
    nextStep(service);

    const again = await call(
      mfaTokenService,
      "IssueMfaToken",
      { user_id: userId, client_id: CLIENTS.post.id, audience: "https://api.example.test" },
      internalMetadata(),
    );
    assert.deepEqual(again.mfa_requirements, { enroll: [], challenge: [{ type: "otp" }] });
    const listed = await call(mfa, "ListAuthenticators", { mfa_token: again.mfa_token });
    const authenticators = listed.authenticators as Array<Record<string, unknown>>;
    assert.equal(authenticators.length, 2);
    assert.match(String(authenticators[0]?.id), /^totp\|/);
    assert.equal(authenticators[0]?.authenticator_type, "otp");
    assert.equal(authenticators[0]?.active, true);
    assert.equal(authenticators[1]?.authenticator_type, "recovery-code");
  });

  test("a wrong code: FAILED_PRECONDITION with the OAuthError detail (row 9)", async () => {
    const v1 = loadTokenV1();
    const userId = uniqueUserId("grpcjs");
    const issued = await call(
      stub(v1.MfaTokenService),
      "IssueMfaToken",
      { user_id: userId, client_id: CLIENTS.post.id, audience: "https://api.example.test" },
      internalMetadata(),
    );
    const { secret } = await call(stub(v1.MfaService), "Associate", {
      mfa_token: issued.mfa_token,
      authenticator_types: ["otp"],
    });
    const right = codeAt(service, secret as string);
    const wrong = right === "000000" ? "000001" : "000000";
    await assert.rejects(
      call(stub(v1.TokenService), "VerifyMfaOtp", {
        mfa_token: issued.mfa_token,
        otp: wrong,
        client_id: CLIENTS.post.id,
        client_secret: CLIENTS.post.secret,
      }),
      (error: grpc.ServiceError) => {
        assert.equal(error.code, grpc.status.FAILED_PRECONDITION);
        assert.equal(error.details, "Invalid otp_code.");
        assert.deepEqual(oauthErrorOf(error), {
          error: "invalid_grant",
          errorDescription: "Invalid otp_code.",
        });
        return true;
      },
    );
  });

  test("IssueMfaToken without the internal key: UNAUTHENTICATED", async () => {
    await assert.rejects(
      call(stub(loadTokenV1().MfaTokenService), "IssueMfaToken", {
        user_id: uniqueUserId("grpcjs"),
        client_id: CLIENTS.post.id,
      }),
      (error: grpc.ServiceError) => {
        assert.equal(error.code, grpc.status.UNAUTHENTICATED);
        return true;
      },
    );
  });

  test("an unknown method and an unknown service: UNIMPLEMENTED with grpc-go's messages", async () => {
    const generic = new grpc.Client(address, grpc.credentials.createInsecure());
    stubs.push(generic);
    const unary = (path: string) =>
      new Promise<grpc.ServiceError>((resolve, reject) => {
        generic.makeUnaryRequest(
          path,
          (value: Buffer) => value,
          (value: Buffer) => value,
          Buffer.alloc(0),
          (error) => (error ? resolve(error) : reject(new Error(`${path} succeeded`))),
        );
      });
    const method = await unary("/token.v1.TokenService/NoSuchMethod");
    assert.equal(method.code, grpc.status.UNIMPLEMENTED);
    assert.equal(method.details, "unknown method NoSuchMethod for service token.v1.TokenService");
    const unknownService = await unary("/no.such.v1.Service/Call");
    assert.equal(unknownService.code, grpc.status.UNIMPLEMENTED);
    assert.equal(unknownService.details, "unknown service no.such.v1.Service");
    // Answered, not aborted: the access log and the metrics name the gRPC code.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const lines = service.logs
      .filter((line) => line.includes('"event":"access"') && line.includes('"route":"unmatched"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(lines.length, 2);
    for (const line of lines) {
      assert.deepEqual(
        [line.surface, line.status, line.code, line.grpc_status, line.aborted],
        ["grpc", 200, "unimplemented", 12, undefined],
      );
    }
  });
});

describe("gRPC and gRPC-Web to unknown paths, Connect and REST still 404 (row 19)", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService();
  });
  after(() => service?.close());

  test("gRPC-Web: HTTP 200 with grpc-status 12 in the headers (trailers-only)", async () => {
    const response = await fetch(`${service.baseUrl}/token.v1.TokenService/Nope`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/grpc-web+proto");
    assert.equal(response.headers.get("grpc-status"), "12");
    assert.equal(
      response.headers.get("grpc-message"),
      "unknown method Nope for service token.v1.TokenService",
    );
    assert.equal((await response.arrayBuffer()).byteLength, 0);
  });

  test("a non-ASCII path is percent-encoded in grpc-message", async () => {
    const response = await fetch(`${service.baseUrl}/%C3%A9%25/x`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web" },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    assert.equal(response.status, 200);
    // The path as sent (percent-encoded by the URL), its % encoded once more.
    assert.equal(response.headers.get("grpc-message"), "unknown service %25C3%25A9%2525");
  });

  test("Connect (JSON and binary) and REST: 404 with the OAuth JSON body", async () => {
    for (const contentType of ["application/json", "application/proto", "text/plain"]) {
      const response = await fetch(`${service.baseUrl}/token.v1.TokenService/Nope`, {
        method: "POST",
        headers: { "content-type": contentType },
        body: "{}",
      });
      assert.equal(response.status, 404, contentType);
      assert.deepEqual(await response.json(), {
        error: "not_found",
        error_description: "Not found",
      });
    }
  });
});

describe("grpc-js-reflection-client (v1alpha by default, v1 when asked)", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService();
  });
  after(() => service?.close());

  for (const version of ["v1alpha", "v1"] as const) {
    test(`${version}: lists the services and the methods of TokenService`, async () => {
      const reflection = new GrpcReflection(
        `127.0.0.1:${service.port}`,
        grpc.credentials.createInsecure(),
        {},
        version,
      );
      const services = (await reflection.listServices()).sort();
      assert.deepEqual(services, [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "token.v1.MfaService",
        "token.v1.MfaTokenService",
        "token.v1.TokenService",
      ]);
      const methods = (await reflection.listMethods("token.v1.TokenService"))
        .map((method) => method.name)
        .sort();
      assert.deepEqual(methods, [
        "RefreshToken",
        "RevokeToken",
        "VerifyMfaOtp",
        "VerifyMfaRecoveryCode",
      ]);
    });
  }

  test("the default constructor asks v1alpha, and the descriptor it gets calls the service", async () => {
    const reflection = new GrpcReflection(
      `127.0.0.1:${service.port}`,
      grpc.credentials.createInsecure(),
    );
    const descriptor = await reflection.getDescriptorBySymbol("token.v1.MfaTokenService");
    const loaded = descriptor.getPackageObject({
      keepCase: true,
      longs: Number,
      defaults: true,
    }) as unknown as {
      token: { v1: { MfaTokenService: StubClass } };
    };
    const client = new loaded.token.v1.MfaTokenService(
      `127.0.0.1:${service.port}`,
      grpc.credentials.createInsecure(),
    );
    try {
      const issued = await call(
        client,
        "IssueMfaToken",
        { user_id: uniqueUserId("reflected"), client_id: CLIENTS.post.id },
        internalMetadata(),
      );
      assert.equal(issued.expires_in, 600);
    } finally {
      client.close();
    }
  });
});
