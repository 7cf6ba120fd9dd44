/**
 * Every surface of docs/api.md on the one port, over real sockets: the happy path
 * and one typed error over Connect (HTTP/1.1 JSON and binary, h2c), gRPC and
 * gRPC-Web; REST form and JSON over HTTP/1.1 and h2c; and requests the RPC
 * framework cannot decode (docs/api.md "Errors": InvalidArgument, never Internal).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import {
  clientsFor,
  enrolledUser,
  freshCode,
  internalAuth,
  issueMfaToken,
  otpGrantParams,
  otpRpcRequest,
  type Protocol,
  postTokenForm,
  postTokenH2c,
  postTokenJson,
  uniqueUserId,
  wrongCode,
} from "../support/flows.js";
import { h1Request, h2cRequest, jsonOf } from "../support/http-clients.js";
import { assertOAuthError, assertRpcError, type RestResult } from "../support/oauth-assertions.js";
import { CLIENTS, startTestService, type TestService } from "../support/test-service.js";

const RPC_PROTOCOLS: readonly Protocol[] = [
  "connect-h1",
  "connect-h1-binary",
  "connect-h2",
  "grpc",
  "grpc-web",
];

const VERIFY_PATH = "/token.v1.TokenService/VerifyMfaOtp";
const ISSUER_NAME = encodeURIComponent("Token Service Test");
const JWT = /^[\w-]+\.[\w-]+\.[\w-]+$/;

let service: TestService;
before(async () => {
  service = await startTestService();
});
after(() => service.close());

describe("RPC surfaces", () => {
  for (const protocol of RPC_PROTOCOLS) {
    describe(protocol, () => {
      test("IssueMfaToken → Associate → VerifyMfaOtp → ListAuthenticators", async () => {
        const clients = clientsFor(service, protocol);
        const userId = uniqueUserId(protocol);
        const userLabel = `${userId}@example.test`;
        const seen: Record<string, Headers> = {};
        const headersOf = (name: string) => ({
          onHeader: (headers: Headers) => {
            seen[name] = headers;
          },
        });

        const issued = await clients.mfaToken.issueMfaToken(
          {
            userId,
            clientId: CLIENTS.post.id,
            audience: "https://api.example.test",
            scope: "openid profile",
            userLabel,
          },
          { ...internalAuth, ...headersOf("issue") },
        );
        assert.equal(issued.expiresIn, 600);
        assert.deepEqual(
          issued.mfaRequirements?.enroll.map((r) => r.type),
          ["otp"],
        );
        assert.deepEqual(issued.mfaRequirements?.challenge, []);

        const association = await clients.mfa.associate(
          { mfaToken: issued.mfaToken, authenticatorTypes: ["otp"] },
          headersOf("associate"),
        );
        assert.equal(association.authenticatorType, "otp");
        assert.match(association.secret, /^[A-Z2-7]{32}$/);
        assert.equal(
          association.barcodeUri,
          `otpauth://totp/${ISSUER_NAME}:${encodeURIComponent(userLabel)}?secret=${association.secret}` +
            `&issuer=${ISSUER_NAME}&algorithm=SHA1&digits=6&period=30`,
        );
        assert.equal(association.recoveryCodes.length, 1);

        const tokens = await clients.token.verifyMfaOtp(
          otpRpcRequest(issued.mfaToken, freshCode(service, association.secret)),
          headersOf("verify"),
        );
        assert.equal(tokens.tokenType, "Bearer");
        assert.equal(tokens.expiresIn, 86_400);
        assert.equal(tokens.scope, "openid profile");
        assert.match(tokens.accessToken, JWT);
        assert.match(tokens.idToken, JWT);
        const claims = decodeJwt(tokens.accessToken);
        assert.equal(claims.sub, userId);
        assert.equal(claims.client_id, CLIENTS.post.id);
        assert.deepEqual(claims.amr, ["mfa", "otp"]);

        for (const name of ["issue", "associate", "verify"]) {
          assert.equal(seen[name]?.get("cache-control"), "no-store", `${name} response headers`);
        }

        const listed = await clients.mfa.listAuthenticators({
          mfaToken: await issueMfaToken(service, userId),
        });
        assert.equal(listed.authenticators.length, 2);
        const [authenticator, recoveryCode] = listed.authenticators;
        assert.match(authenticator?.id ?? "", /^totp\|/);
        assert.equal(authenticator?.authenticatorType, "otp");
        assert.equal(authenticator?.active, true);
        // Auth0 lists the recovery code after the OTP authenticator.
        assert.match(recoveryCode?.id ?? "", /^recovery-code\|/);
        assert.equal(recoveryCode?.authenticatorType, "recovery-code");
        assert.equal(recoveryCode?.active, true);
      });

      test("a wrong code is FailedPrecondition with the invalid_grant detail", async () => {
        const { userId, secret } = await enrolledUser(service);
        const mfaToken = await issueMfaToken(service, userId);
        const metadata = await assertRpcError(
          clientsFor(service, protocol).token.verifyMfaOtp(
            otpRpcRequest(mfaToken, wrongCode(service, secret)),
          ),
          Code.FailedPrecondition,
          "invalid_grant",
          "Invalid otp_code.",
        );
        assert.equal(metadata.get("cache-control"), "no-store");
      });
    });
  }

  test("IssueMfaToken without the internal key is Unauthenticated (gRPC)", async () => {
    await assertRpcError(
      clientsFor(service, "grpc").mfaToken.issueMfaToken(
        { userId: uniqueUserId(), clientId: CLIENTS.post.id },
        { headers: { authorization: "Bearer not-the-internal-key" } },
      ),
      Code.Unauthenticated,
      "access_denied",
      "Unauthorized",
    );
  });
});

type RestSend = (params: Record<string, string>) => Promise<RestResult>;

const REST_VARIANTS: ReadonlyArray<{ name: string; send: RestSend }> = [
  { name: "form over HTTP/1.1", send: (params) => postTokenForm(service, params) },
  { name: "JSON over HTTP/1.1", send: (params) => postTokenJson(service, params) },
  { name: "form over h2c", send: (params) => postTokenH2c(service, params, "form") },
  { name: "JSON over h2c", send: (params) => postTokenH2c(service, params, "json") },
];

describe("REST POST /oauth/token", () => {
  for (const { name, send } of REST_VARIANTS) {
    describe(name, () => {
      test("a right code gets the token response with no-store", async () => {
        const { userId, secret } = await enrolledUser(service);
        const mfaToken = await issueMfaToken(service, userId);
        const result = await send(otpGrantParams(mfaToken, freshCode(service, secret)));
        assert.equal(result.status, 200);
        assert.equal(result.headers.get("cache-control"), "no-store");
        assert.equal(result.headers.get("content-type"), "application/json; charset=utf-8");
        assert.deepEqual(Object.keys(result.body).sort(), [
          "access_token",
          "expires_in",
          "id_token",
          "scope",
          "token_type",
        ]);
        assert.equal(result.body.token_type, "Bearer");
        assert.equal(result.body.expires_in, 86_400);
        assert.equal(result.body.scope, "openid profile");
        assert.match(String(result.body.access_token), JWT);
        assert.equal(decodeJwt(String(result.body.access_token)).sub, userId);
      });

      test("a wrong code is 400 invalid_grant with no-store", async () => {
        const { userId, secret } = await enrolledUser(service);
        const mfaToken = await issueMfaToken(service, userId);
        assertOAuthError(
          await send(otpGrantParams(mfaToken, wrongCode(service, secret))),
          400,
          "invalid_grant",
          "Invalid otp_code.",
        );
      });
    });
  }
});

describe("requests the RPC framework cannot decode are InvalidArgument", () => {
  const expectInvalidArgument = (status: number, body: unknown) => {
    assert.equal(status, 400);
    assert.equal((body as { code?: unknown }).code, "invalid_argument");
    assert.equal(typeof (body as { message?: unknown }).message, "string");
  };

  test("Connect JSON: a body that is not JSON (fetch)", async () => {
    const response = await fetch(service.baseUrl + VERIFY_PATH, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    expectInvalidArgument(response.status, await response.json());
  });

  test("Connect JSON: a field of the wrong type", async () => {
    const response = await fetch(service.baseUrl + VERIFY_PATH, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ mfaToken: 42, otp: ["x"] }),
    });
    expectInvalidArgument(response.status, await response.json());
  });

  test("Connect binary: bytes that are not a protobuf message", async () => {
    const response = await h1Request(service.baseUrl, {
      method: "POST",
      path: VERIFY_PATH,
      headers: { "content-type": "application/proto" },
      body: Buffer.from([0xff, 0xff, 0xff]),
    });
    expectInvalidArgument(response.status, jsonOf(response));
  });

  // A gRPC length-prefixed message (flag 0, 4-byte length) holding an unterminated varint.
  const badGrpcFrame = Buffer.from([0, 0, 0, 0, 3, 0xff, 0xff, 0xff]);

  test("gRPC over h2c: a frame that is not a protobuf message", async () => {
    const response = await h2cRequest(service.baseUrl, {
      method: "POST",
      path: VERIFY_PATH,
      headers: { "content-type": "application/grpc", te: "trailers" },
      body: badGrpcFrame,
    });
    assert.equal(response.status, 200);
    const grpcStatus = response.trailers["grpc-status"] ?? response.headers["grpc-status"];
    assert.equal(grpcStatus, String(Code.InvalidArgument));
  });

  test("gRPC-Web over HTTP/1.1: a frame that is not a protobuf message", async () => {
    const response = await h1Request(service.baseUrl, {
      method: "POST",
      path: VERIFY_PATH,
      headers: { "content-type": "application/grpc-web+proto" },
      body: badGrpcFrame,
    });
    assert.equal(response.status, 200);
    // The trailers travel in the body as a frame of `name: value\r\n` lines.
    const grpcStatus =
      response.headers["grpc-status"] ?? /grpc-status: ?(\d+)\r\n/.exec(response.text)?.[1];
    assert.equal(grpcStatus, String(Code.InvalidArgument));
  });
});
