// grpc.health.v1 and grpc.reflection.v1 / v1alpha on the one port (docs/api.md): real clients over gRPC (h2c), and `buf curl` without --schema.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { create, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, file_google_protobuf_api } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type HandlerContext } from "@connectrpc/connect";
import { grpcHealthV1, grpcReflectionV1, grpcReflectionV1alpha } from "@token-service/client";
import { createReflectionServiceImpls } from "../../src/observability/reflection.js";
import { createMemoryStore } from "../../src/store/memory-store.js";
import type { Store } from "../../src/store/store.js";
import { transportFor, uniqueUserId } from "../support/flows.js";
import {
  CLIENTS,
  startTestService,
  TEST_INTERNAL_API_KEY,
  type TestService,
} from "../support/test-service.js";

const { Health, HealthCheckResponse_ServingStatus: ServingStatus } = grpcHealthV1;
const { ServerReflection, ServerReflectionRequestSchema } = grpcReflectionV1;
type ReflectionRequest = grpcReflectionV1.ServerReflectionRequest["messageRequest"];

const BUF = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));
// Async: the server runs in this process, so a synchronous child would deadlock it.
const run = promisify(execFile);

/** A memory store whose ping fails while `healthy` is false. */
function flakyStore(): Store & { healthy: boolean } {
  const store = createMemoryStore();
  const flaky = Object.assign(Object.create(store) as Store, { healthy: true });
  flaky.ping = async () => {
    if (!flaky.healthy) throw new Error("store down");
  };
  return flaky;
}

async function reflect(service: TestService, requests: ReflectionRequest[]) {
  const client = createClient(ServerReflection, transportFor(service.baseUrl, "grpc"));
  async function* send() {
    for (const messageRequest of requests) yield { messageRequest };
  }
  const responses = [];
  for await (const response of client.serverReflectionInfo(send())) responses.push(response);
  return responses;
}

describe("grpc.health.v1.Health", () => {
  let service: TestService;
  let store: Store & { healthy: boolean };
  before(async () => {
    store = flakyStore();
    service = await startTestService({ storeOverride: store });
  });
  after(() => service.close());

  test("Check: SERVING for the server and each token.v1 service while the store answers", async () => {
    store.healthy = true;
    const health = createClient(Health, transportFor(service.baseUrl, "grpc"));
    for (const name of [
      "",
      "token.v1.TokenService",
      "token.v1.MfaService",
      "token.v1.MfaTokenService",
    ]) {
      const response = await health.check({ service: name });
      assert.equal(response.status, ServingStatus.SERVING, name);
    }
    // Also over the Connect protocol on HTTP/1.1.
    const overConnect = createClient(Health, transportFor(service.baseUrl, "connect-h1"));
    assert.equal((await overConnect.check({})).status, ServingStatus.SERVING);
  });

  test("Check: NOT_SERVING while the store's ping rejects", async () => {
    store.healthy = false;
    // Readiness is the background health state (pinged every second); refresh it now.
    await service.app.storeHealth.refresh();
    try {
      const health = createClient(Health, transportFor(service.baseUrl, "grpc"));
      assert.equal((await health.check({})).status, ServingStatus.NOT_SERVING);
      assert.equal(
        (await health.check({ service: "token.v1.TokenService" })).status,
        ServingStatus.NOT_SERVING,
      );
    } finally {
      store.healthy = true;
      await service.app.storeHealth.refresh();
    }
  });

  test("Check: an unknown service is NotFound", async () => {
    const health = createClient(Health, transportFor(service.baseUrl, "grpc"));
    await assert.rejects(health.check({ service: "no.such.Service" }), (error) => {
      assert.equal(ConnectError.from(error).code, Code.NotFound);
      return true;
    });
  });

  test("Watch: the current status, then each change", async () => {
    store.healthy = true;
    const health = createClient(Health, transportFor(service.baseUrl, "grpc"));
    const abort = new AbortController();
    const seen: number[] = [];
    try {
      for await (const response of health.watch({}, { signal: abort.signal })) {
        seen.push(response.status);
        if (seen.length === 1) store.healthy = false;
        if (seen.length === 2) break;
      }
    } finally {
      abort.abort();
      store.healthy = true;
      await service.app.storeHealth.refresh();
    }
    assert.deepEqual(seen, [ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
  });
});

describe("Watch at shutdown", () => {
  test("close() ends open Watch streams with NOT_SERVING instead of waiting out the grace", async () => {
    const service = await startTestService();
    const health = createClient(Health, transportFor(service.baseUrl, "grpc"));
    const seen: number[] = [];
    let closing: Promise<void> | undefined;
    const started = Date.now();
    for await (const response of health.watch({})) {
      seen.push(response.status);
      closing ??= service.app.close(5000);
    }
    await closing;
    assert.deepEqual(seen, [ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    assert.ok(Date.now() - started < 4000, "close waited for the grace period");
  });
});

describe("grpc.reflection.v1.ServerReflection", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService();
  });
  after(() => service.close());

  test("list_services names the token.v1 services, health and reflection", async () => {
    const [response] = await reflect(service, [{ case: "listServices", value: "" }]);
    assert.equal(response?.messageResponse.case, "listServicesResponse");
    const names = response.messageResponse.value.service.map((s) => s.name).sort();
    assert.deepEqual(names, [
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "token.v1.MfaService",
      "token.v1.MfaTokenService",
      "token.v1.TokenService",
    ]);
  });

  test("file_containing_symbol / file_by_filename: a service, a method, a message, a file", async () => {
    const responses = await reflect(service, [
      { case: "fileContainingSymbol", value: "token.v1.TokenService" },
      { case: "fileContainingSymbol", value: "token.v1.TokenService.VerifyMfaOtp" },
      { case: "fileContainingSymbol", value: "token.v1.OAuthError" },
      { case: "fileByFilename", value: "grpc/health/v1/health.proto" },
    ]);
    const files = responses.map((response) => {
      assert.equal(response.messageResponse.case, "fileDescriptorResponse");
      return response.messageResponse.value.fileDescriptorProto.map((bytes) =>
        fromBinary(FileDescriptorProtoSchema, bytes),
      );
    });
    const fileNames = files.map((list) => list.map((file) => file.name));
    assert.equal(fileNames[0]?.[0], "token/v1/token_service.proto");
    assert.ok(files[0]?.[0]?.service.some((s) => s.name === "TokenService"));
    // A requested file always comes back, even when already sent on the stream.
    assert.deepEqual(fileNames[1], ["token/v1/token_service.proto"]);
    assert.equal(fileNames[2]?.[0], "token/v1/errors.proto");
    assert.deepEqual(fileNames[3], ["grpc/health/v1/health.proto"]);
  });

  test("transitive dependencies, each sent once per stream", async () => {
    // google/protobuf/api.proto imports source_context.proto and type.proto (→ any.proto).
    const impl = createReflectionServiceImpls([file_google_protobuf_api]).v1;
    async function* requests() {
      for (const value of ["google.protobuf.Api", "google.protobuf.Type"]) {
        yield create(ServerReflectionRequestSchema, {
          messageRequest: { case: "fileContainingSymbol", value },
        });
      }
    }
    const names: string[][] = [];
    for await (const response of impl.serverReflectionInfo(requests(), {} as HandlerContext)) {
      const answer = response.messageResponse;
      assert.equal(answer?.case, "fileDescriptorResponse");
      names.push(
        (answer.value.fileDescriptorProto ?? []).map(
          (bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name,
        ),
      );
    }
    assert.equal(names[0]?.[0], "google/protobuf/api.proto");
    assert.deepEqual(names[0]?.slice(1).sort(), [
      "google/protobuf/any.proto",
      "google/protobuf/source_context.proto",
      "google/protobuf/type.proto",
    ]);
    assert.deepEqual(names[1], ["google/protobuf/type.proto"]);
  });

  test("unknown file or symbol: error_response NOT_FOUND, and the stream goes on", async () => {
    const responses = await reflect(service, [
      { case: "fileContainingSymbol", value: "token.v1.Nope" },
      { case: "fileByFilename", value: "nope.proto" },
      { case: "listServices", value: "" },
    ]);
    for (const response of responses.slice(0, 2)) {
      assert.equal(response.messageResponse.case, "errorResponse");
      assert.equal(response.messageResponse.value.errorCode, Code.NotFound);
    }
    assert.equal(responses[2]?.messageResponse.case, "listServicesResponse");
  });

  test("v1alpha gives the same answers as v1 (clients that ask only v1alpha)", async () => {
    const requests: ReflectionRequest[] = [
      { case: "listServices", value: "" },
      { case: "fileContainingSymbol", value: "token.v1.TokenService.VerifyMfaOtp" },
      { case: "fileByFilename", value: "token/v1/mfa_service.proto" },
      { case: "fileContainingSymbol", value: "token.v1.Nope" },
    ];
    const v1 = await reflect(service, requests);
    const client = createClient(
      grpcReflectionV1alpha.ServerReflection,
      transportFor(service.baseUrl, "grpc"),
    );
    async function* send() {
      // The same string-valued requests, typed as v1alpha's (the oneof is field for field v1's).
      for (const messageRequest of requests) {
        yield {
          messageRequest:
            messageRequest as grpcReflectionV1alpha.ServerReflectionRequest["messageRequest"],
        };
      }
    }
    const v1alpha = [];
    for await (const response of client.serverReflectionInfo(send())) v1alpha.push(response);
    assert.equal(v1alpha.length, v1.length);
    v1alpha.forEach((response, i) => {
      assert.equal(response.$typeName, "grpc.reflection.v1alpha.ServerReflectionResponse");
      assert.deepEqual(response.messageResponse.case, v1[i]?.messageResponse.case);
      const strip = (value: unknown) =>
        JSON.parse(JSON.stringify(value, (k, v) => (k === "$typeName" ? undefined : v)));
      assert.deepEqual(strip(response.messageResponse.value), strip(v1[i]?.messageResponse.value));
    });
    assert.equal(v1alpha[3]?.messageResponse.case, "errorResponse");
  });

  test("buf curl over v1alpha reflection lists the services", async () => {
    const listed = await run(BUF, [
      "curl",
      "--list-services",
      "--protocol",
      "grpc",
      "--reflect-protocol",
      "grpc-v1alpha",
      service.baseUrl,
    ]);
    assert.match(listed.stdout, /^token\.v1\.MfaService$/m);
    assert.match(listed.stdout, /^grpc\.reflection\.v1alpha\.ServerReflection$/m);
  });

  test("buf curl --list-services, and a call without --schema (reflection)", async () => {
    const listed = await run(BUF, [
      "curl",
      "--list-services",
      "--protocol",
      "grpc",
      service.baseUrl,
    ]);
    assert.match(listed.stdout, /^token\.v1\.TokenService$/m);
    assert.match(listed.stdout, /^grpc\.health\.v1\.Health$/m);

    const userId = uniqueUserId();
    const issued = await run(BUF, [
      "curl",
      "--protocol",
      "grpc",
      "-H",
      `Authorization: Bearer ${TEST_INTERNAL_API_KEY}`,
      "--data",
      JSON.stringify({
        userId,
        clientId: CLIENTS.post.id,
        audience: "https://api.example.test",
        scope: "openid",
        userLabel: `${userId}@example.test`,
      }),
      `${service.baseUrl}/token.v1.MfaTokenService/IssueMfaToken`,
    ]);
    const body = JSON.parse(issued.stdout) as { mfaToken?: string };
    assert.equal(typeof body.mfaToken, "string");
    assert.ok(body.mfaToken && body.mfaToken.length > 20);
  });
});
