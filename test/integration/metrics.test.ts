// The request, store, verify and lockout metrics move with real requests:
// the registry the metrics endpoints serve, scraped before and after.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Registry } from "prom-client";
import { createMfaTokenCodec } from "../../src/mfa/mfa-token-codec.js";
import {
  clientsFor,
  codeAt,
  enrolledUser,
  issueMfaToken,
  otpGrantParams,
  otpRpcRequest,
  postTokenForm,
  uniqueUserId,
  wrongCode,
} from "../support/flows.js";
import { assertOAuthError, rpcFailure } from "../support/oauth-assertions.js";
import { freePort } from "../support/redis-server.js";
import { CLIENTS, startTestService, type TestService } from "../support/test-service.js";

type Labels = Record<string, string | number>;

/** The value of one series (a histogram's `_count`, `_bucket` or `_sum`, or a counter). */
async function sample(
  registry: Registry,
  metric: string,
  series: string,
  labels: Labels,
): Promise<number> {
  const all = await registry.getMetricsAsJSON();
  const found = all.find((m) => m.name === metric);
  assert.ok(found, `metric ${metric} exists`);
  const values = (
    found as unknown as {
      values: Array<{ metricName?: string; labels: Labels; value: number }>;
    }
  ).values;
  const match = values.find(
    (v) =>
      (v.metricName ?? metric) === series &&
      Object.entries(labels).every(([name, value]) => String(v.labels[name]) === String(value)),
  );
  return match?.value ?? 0;
}

/** Every bucket of one histogram series, by `le`. */
async function buckets(
  registry: Registry,
  metric: string,
  labels: Labels,
): Promise<Map<string, number>> {
  const all = await registry.getMetricsAsJSON();
  const found = all.find((m) => m.name === metric) as unknown as {
    values: Array<{ metricName?: string; labels: Labels; value: number }>;
  };
  const out = new Map<string, number>();
  for (const v of found.values) {
    if (v.metricName !== `${metric}_bucket`) continue;
    if (!Object.entries(labels).every(([name, value]) => String(v.labels[name]) === String(value)))
      continue;
    out.set(String(v.labels.le), v.value);
  }
  return out;
}

let service: TestService;
before(async () => {
  service = await startTestService({ env: { OTP_MAX_FAILURES: "2" } });
});
after(() => service.close());

const REQUESTS = "token_service_request_duration_seconds";

test("request duration buckets move, by surface, route and outcome", async () => {
  const registry = service.app.ctx.metrics.registry;
  const restOk = { surface: "rest", route: "/oauth/token", outcome: "ok" };
  const grpcWrong = {
    surface: "grpc",
    route: "/token.v1.TokenService/VerifyMfaOtp",
    outcome: "invalid_grant",
  };
  const restBefore = await buckets(registry, REQUESTS, restOk);
  const countBefore = await sample(registry, REQUESTS, `${REQUESTS}_count`, restOk);
  const grpcBefore = await sample(registry, REQUESTS, `${REQUESTS}_count`, grpcWrong);

  const { userId, secret } = await enrolledUser(service); // one REST success
  const rpc = clientsFor(service, "grpc");
  await rpcFailure(
    rpc.token.verifyMfaOtp(
      otpRpcRequest(await issueMfaToken(service, userId), wrongCode(service, secret)),
    ),
  );

  assert.equal(await sample(registry, REQUESTS, `${REQUESTS}_count`, restOk), countBefore + 1);
  assert.equal(await sample(registry, REQUESTS, `${REQUESTS}_count`, grpcWrong), grpcBefore + 1);
  const restAfter = await buckets(registry, REQUESTS, restOk);
  assert.equal(restAfter.get("+Inf"), (restBefore.get("+Inf") ?? 0) + 1);
  // The buckets suit a 0.1–50 ms service; this request landed in one of them.
  assert.deepEqual(
    [...restAfter.keys()],
    [
      "0.0001",
      "0.00025",
      "0.0005",
      "0.001",
      "0.0025",
      "0.005",
      "0.01",
      "0.025",
      "0.05",
      "0.1",
      "0.25",
      "0.5",
      "1",
      "2.5",
      "+Inf",
    ],
  );
  const moved = [...restAfter].filter(([le, n]) => n > (restBefore.get(le) ?? 0)).map(([le]) => le);
  assert.ok(moved.length >= 1 && moved.includes("2.5"), `moved: ${moved.join(",")}`);
  // Nothing is in flight once the answers are in.
  assert.equal(
    await sample(registry, "token_service_requests_in_flight", "token_service_requests_in_flight", {
      surface: "rest",
    }),
    0,
  );
  assert.equal(
    await sample(registry, "token_service_requests_in_flight", "token_service_requests_in_flight", {
      surface: "grpc",
    }),
    0,
  );
});

test("store round trips, verify outcomes, lockouts and security events are counted", async () => {
  const registry = service.app.ctx.metrics.registry;
  const STORE = "token_service_store_operation_duration_seconds";
  const VERIFY = "token_service_verify_outcomes_total";
  const count = (metric: string, labels: Labels) => sample(registry, metric, metric, labels);
  const before = {
    begin: await sample(registry, STORE, `${STORE}_count`, { operation: "beginVerify" }),
    commit: await sample(registry, STORE, `${STORE}_count`, { operation: "commitOtp" }),
    ok: await count(VERIFY, { grant: "mfa-otp", outcome: "ok" }),
    invalid: await count(VERIFY, { grant: "mfa-otp", outcome: "invalid_code" }),
    locked: await count(VERIFY, { grant: "mfa-otp", outcome: "locked" }),
    expired: await count(VERIFY, { grant: "mfa-otp", outcome: "expired_token" }),
    lockouts: await count("token_service_lockouts_total", {}),
    enrolled: await count("token_service_security_events_total", {
      event: "authenticator_enrolled",
    }),
  };

  const { userId, secret } = await enrolledUser(service); // begin + commit, ok
  const mfaToken = await issueMfaToken(service, userId);
  for (let i = 0; i < 2; i++) {
    // Two wrong codes empty the bucket (OTP_MAX_FAILURES=2): begin only, invalid_code.
    assertOAuthError(
      await postTokenForm(service, otpGrantParams(mfaToken, wrongCode(service, secret))),
      400,
      "invalid_grant",
      "Invalid otp_code.",
    );
  }
  const locked = await postTokenForm(service, otpGrantParams(mfaToken, codeAt(service, secret)));
  assert.equal(locked.status, 429);

  assert.equal(
    await sample(registry, STORE, `${STORE}_count`, { operation: "beginVerify" }),
    before.begin + 4,
  );
  assert.equal(
    await sample(registry, STORE, `${STORE}_count`, { operation: "commitOtp" }),
    before.commit + 1,
  );
  assert.equal(await count(VERIFY, { grant: "mfa-otp", outcome: "ok" }), before.ok + 1);
  assert.equal(
    await count(VERIFY, { grant: "mfa-otp", outcome: "invalid_code" }),
    before.invalid + 2,
  );
  assert.equal(await count(VERIFY, { grant: "mfa-otp", outcome: "locked" }), before.locked + 1);
  assert.equal(await count(VERIFY, { grant: "mfa-otp", outcome: "expired_token" }), before.expired);
  assert.equal(await count("token_service_lockouts_total", {}), before.lockouts + 1);
  assert.equal(
    await count("token_service_security_events_total", { event: "authenticator_enrolled" }),
    before.enrolled + 1,
  );
});

test("a store that cannot be reached: its round trips are counted as unavailable", async () => {
  const down = await startTestService({
    store: "redis",
    redisUrl: `redis://127.0.0.1:${await freePort()}`,
  });
  try {
    const registry = down.app.ctx.metrics.registry;
    // Sealed as the service seals them (IssueMfaToken would need the store).
    const mfaToken = createMfaTokenCodec(down.app.ctx.config.secretsKey).issue({
      userId: uniqueUserId("metrics-down"),
      clientId: CLIENTS.post.id,
      audience: "",
      scope: "openid",
      userLabel: "",
      expiresAt: Math.floor(down.clock.nowMs() / 1000) + 600,
    }).token;
    assertOAuthError(
      await postTokenForm(down, otpGrantParams(mfaToken, "246813")),
      503,
      "temporarily_unavailable",
      "Service temporarily unavailable",
    );
    const errors = "token_service_store_errors_total";
    assert.equal(
      await sample(registry, errors, errors, { operation: "beginVerify", kind: "unavailable" }),
      1,
    );
    const verify = "token_service_verify_outcomes_total";
    assert.equal(
      await sample(registry, verify, verify, { grant: "mfa-otp", outcome: "unavailable" }),
      1,
    );
  } finally {
    await down.close();
  }
});
