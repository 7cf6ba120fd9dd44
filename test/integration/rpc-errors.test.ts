// docs/api.md on the RPC surface (Connect over HTTP/1.1): the row's Connect code and a typed
// token.v1.OAuthError detail with exactly the REST body's values; the internal RPC's key.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Code } from "@connectrpc/connect";
import { StoreUnavailableError } from "../../src/store/store.js";
import {
  breakStore,
  clientsFor,
  codeAt,
  internalAuth,
  readyToVerify,
  uniqueUserId,
  useService,
  wrongCode,
} from "../support/flows.js";
import { assertRpcError, rpcFailure } from "../support/oauth-assertions.js";
import { CLIENTS } from "../support/test-service.js";

const service = useService();
const rpc = () => clientsFor(service());

const postClient = { clientId: CLIENTS.post.id, clientSecret: CLIENTS.post.secret };

test("row 1: unknown client → Unauthenticated", async () => {
  await assertRpcError(
    rpc().token.verifyMfaOtp({ clientId: "nobody", mfaToken: "x", otp: "123456" }),
    Code.Unauthenticated,
    "access_denied",
    "Unauthorized",
  );
});

test("row 3: missing mfa_token, then otp → InvalidArgument", async () => {
  await assertRpcError(
    rpc().token.verifyMfaOtp({ ...postClient, otp: "123456" }),
    Code.InvalidArgument,
    "invalid_request",
    "Missing required parameter: mfa_token",
  );
  await assertRpcError(
    rpc().token.verifyMfaOtp({ ...postClient, mfaToken: "x" }),
    Code.InvalidArgument,
    "invalid_request",
    "Missing required parameter: otp",
  );
});

test("row 5: malformed mfa_token → FailedPrecondition", async () => {
  await assertRpcError(
    rpc().token.verifyMfaOtp({ ...postClient, mfaToken: "garbage", otp: "123456" }),
    Code.FailedPrecondition,
    "invalid_grant",
    "Malformed mfa_token",
  );
  await assertRpcError(
    rpc().mfa.listAuthenticators({ mfaToken: "garbage" }),
    Code.FailedPrecondition,
    "invalid_grant",
    "Malformed mfa_token",
  );
});

test("row 8: empty bucket → ResourceExhausted with retry-after in the detail", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  for (let i = 0; i < 10; i++) {
    const failure = await rpcFailure(
      rpc().token.verifyMfaOtp({ ...postClient, mfaToken, otp: wrongCode(service(), secret) }),
    );
    assert.equal(failure.code, Code.FailedPrecondition);
  }
  await assertRpcError(
    rpc().token.verifyMfaOtp({ ...postClient, mfaToken, otp: codeAt(service(), secret) }),
    Code.ResourceExhausted,
    "too_many_attempts",
    "Too many failed attempts. Try again later.",
    360,
  );
});

test("row 9: wrong code → FailedPrecondition", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  await assertRpcError(
    rpc().token.verifyMfaOtp({ ...postClient, mfaToken, otp: wrongCode(service(), secret) }),
    Code.FailedPrecondition,
    "invalid_grant",
    "Invalid otp_code.",
  );
});

test("rows 12 and 13: Unavailable and Internal, nothing leaked", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  const request = { ...postClient, mfaToken, otp: codeAt(service(), secret) };
  const cases = [
    [
      () => new StoreUnavailableError("ECONNREFUSED"),
      Code.Unavailable,
      "temporarily_unavailable",
      "Service temporarily unavailable",
      1, // every 503 carries Retry-After (SPEC §6)
    ],
    [() => new Error("internals"), Code.Internal, "server_error", "Internal error", 0],
  ] as const;
  for (const [error, code, name, description, retryAfter] of cases) {
    const restore = breakStore(service(), error);
    try {
      await assertRpcError(rpc().token.verifyMfaOtp(request), code, name, description, retryAfter);
    } finally {
      restore();
    }
  }
});

test("a success over RPC: Bearer, expires_in, scope, Cache-Control: no-store", async () => {
  const { mfaToken, secret } = await readyToVerify(service());
  let cacheControl: string | null = null;
  const response = await rpc().token.verifyMfaOtp(
    { ...postClient, mfaToken, otp: codeAt(service(), secret) },
    { onHeader: (headers) => (cacheControl = headers.get("cache-control")) },
  );
  assert.deepEqual(
    [response.tokenType, response.expiresIn, response.scope, response.idToken !== ""],
    ["Bearer", 86_400, "openid profile", true],
  );
  assert.equal(cacheControl, "no-store");
});

const issueRequest = {
  userId: "rpc-user",
  clientId: CLIENTS.post.id,
  audience: "",
  scope: "",
  userLabel: "",
};

test("IssueMfaToken without the internal key → Unauthenticated", async () => {
  const failure = await rpcFailure(rpc().mfaToken.issueMfaToken(issueRequest));
  assert.equal(failure.code, Code.Unauthenticated);
});

test("IssueMfaToken with a wrong or non-Bearer key → Unauthenticated", async () => {
  for (const authorization of [
    "Bearer wrong-internal-api-key-0123456789",
    `Basic ${internalAuth.headers.authorization.slice(7)}`,
    `${internalAuth.headers.authorization}x`,
  ]) {
    const failure = await rpcFailure(
      rpc().mfaToken.issueMfaToken(issueRequest, { headers: { authorization } }),
    );
    assert.equal(failure.code, Code.Unauthenticated, authorization);
  }
});

test("IssueMfaToken: unknown client → InvalidArgument 'Unknown client'", async () => {
  await assertRpcError(
    rpc().mfaToken.issueMfaToken({ ...issueRequest, clientId: "nobody" }, internalAuth),
    Code.InvalidArgument,
    "invalid_request",
    "Unknown client",
  );
});

test("IssueMfaToken: missing user_id / client_id → row 3 wording", async () => {
  await assertRpcError(
    rpc().mfaToken.issueMfaToken({ ...issueRequest, userId: "" }, internalAuth),
    Code.InvalidArgument,
    "invalid_request",
    "Missing required parameter: user_id",
  );
  await assertRpcError(
    rpc().mfaToken.issueMfaToken({ ...issueRequest, clientId: "" }, internalAuth),
    Code.InvalidArgument,
    "invalid_request",
    "Missing required parameter: client_id",
  );
});

test("IssueMfaToken: client without the mfa-otp grant → PermissionDenied (row 2)", async () => {
  await assertRpcError(
    rpc().mfaToken.issueMfaToken({ ...issueRequest, clientId: CLIENTS.noGrant.id }, internalAuth),
    Code.PermissionDenied,
    "unauthorized_client",
    "Grant type 'http://auth0.com/oauth/grant-type/mfa-otp' not allowed for the client.",
  );
});

test("IssueMfaToken: expires_in and enroll for a new user", async () => {
  const response = await rpc().mfaToken.issueMfaToken(
    { ...issueRequest, userId: uniqueUserId() },
    internalAuth,
  );
  assert.equal(response.expiresIn, 600);
  assert.deepEqual(
    response.mfaRequirements?.enroll.map((r) => r.type),
    ["otp"],
  );
  assert.deepEqual(response.mfaRequirements?.challenge, []);
});
