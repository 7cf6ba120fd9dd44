// The values the access log and the metrics are made of: request ids,
// trace ids from traceparent, RPC code names, verify outcomes.

import assert from "node:assert/strict";
import { test } from "node:test";
import { oauthErrors } from "../../src/oauth/oauth-error.js";
import { codeName } from "../../src/observability/access-log.js";
import { requestIdOf } from "../../src/observability/request-id.js";
import { traceIdOf } from "../../src/observability/tracing.js";
import { verifyOutcomeOf } from "../../src/observability/verify-outcomes.js";
import { StoreUnavailableError } from "../../src/store/store.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("a sane x-request-id is kept", () => {
  for (const id of [
    "a",
    "req-1",
    "0af7651916cd43dd8448eb211c80319c",
    "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "1-5759e988-bd862e3fe1be46a994272793",
    "x".repeat(128),
    "a.b_c:d-e",
  ]) {
    assert.equal(requestIdOf(id), id);
  }
});

test("anything else is replaced by a random UUID", () => {
  for (const header of [
    undefined,
    "",
    "x".repeat(129),
    "with space",
    'quo"te',
    "new\nline",
    "ünïcode",
    "a/b",
    ["one", "two"],
  ]) {
    const id = requestIdOf(header);
    assert.match(id, UUID);
    assert.notEqual(id, header);
  }
  assert.notEqual(requestIdOf(undefined), requestIdOf(undefined));
});

test("trace id of a valid W3C traceparent only", () => {
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  assert.equal(traceIdOf(`00-${traceId}-00f067aa0ba902b7-01`), traceId);
  assert.equal(traceIdOf(`00-${traceId}-00f067aa0ba902b7-00`), traceId);
  // A future version may carry more fields (Trace Context §3.2.4).
  assert.equal(traceIdOf(`01-${traceId}-00f067aa0ba902b7-01-more`), traceId);
  for (const bad of [
    undefined,
    "",
    `00-${"0".repeat(32)}-00f067aa0ba902b7-01`,
    `00-${traceId}-${"0".repeat(16)}-01`,
    `ff-${traceId}-00f067aa0ba902b7-01`,
    `00-${traceId.toUpperCase()}-00f067aa0ba902b7-01`,
    `00-${traceId}-00f067aa0ba902b7-01-extra`,
    `00-${traceId.slice(1)}-00f067aa0ba902b7-01`,
    [`00-${traceId}-00f067aa0ba902b7-01`],
  ]) {
    assert.equal(traceIdOf(bad), undefined, String(bad));
  }
});

test("RPC codes by their Connect names", () => {
  assert.equal(codeName(0), "ok");
  assert.equal(codeName(3), "invalid_argument");
  assert.equal(codeName(9), "failed_precondition");
  assert.equal(codeName(16), "unauthenticated");
  assert.equal(codeName(99), "99");
});

test("verify outcomes are a closed set of labels", () => {
  assert.equal(verifyOutcomeOf(oauthErrors.invalidGrant.invalidOtp()), "invalid_code");
  assert.equal(verifyOutcomeOf(oauthErrors.invalidGrant.invalidRecoveryCode()), "invalid_code");
  assert.equal(verifyOutcomeOf(oauthErrors.tooManyAttempts(30)), "locked");
  assert.equal(verifyOutcomeOf(oauthErrors.expiredToken()), "expired_token");
  assert.equal(verifyOutcomeOf(oauthErrors.invalidGrant.malformedMfaToken()), "malformed_token");
  assert.equal(verifyOutcomeOf(oauthErrors.invalidRequest.mfaTokenOtherClient()), "wrong_client");
  assert.equal(verifyOutcomeOf(oauthErrors.accessDenied.clientAuthentication()), "access_denied");
  assert.equal(verifyOutcomeOf(oauthErrors.invalidDpopProof("replayed")), "invalid_dpop_proof");
  assert.equal(verifyOutcomeOf(new StoreUnavailableError("down")), "unavailable");
  assert.equal(verifyOutcomeOf(new Error("boom")), "server_error");
});
