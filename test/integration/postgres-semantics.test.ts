/**
 * The service on a real PostgreSQL server (docs/operations.md "PostgreSQL",
 * error row 12): the whole flow, statements per verify (two on success, one
 * for a wrong code), a `pg_dump` holding no secret in clear, an outage (503
 * and readiness 503 while the server is down, recovery without restarting
 * the service) and a crash of the server (`pg_ctl restart -m immediate`)
 * losing nothing that was acknowledged. Per-address throttling is on, as in
 * production.
 *
 * The file has a server of its own (`dedicated`, fsync on): it stops and
 * crashes it.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, createClient } from "@connectrpc/connect";
import { grpcHealthV1 } from "@token-service/client";
import { decodeJwt } from "jose";
import { decodeBase32Secret } from "../../src/mfa/totp.js";
import { oauthErrors } from "../../src/oauth/oauth-error.js";
import { dpopProof } from "../support/dpop.js";
import {
  associateResponse,
  clientsFor,
  codeAt,
  enrolledUser,
  freshCode,
  internalAuth,
  issueMfaToken,
  mfaApiToken,
  nextStep,
  otpGrantParams,
  otpRpcRequest,
  postTokenForm,
  recoveryGrantParams,
  transportFor,
  uniqueUserId,
  wrongCode,
} from "../support/flows.js";
import {
  assertOAuthError,
  assertRpcError,
  type RestResult,
  rpcFailureOf,
} from "../support/oauth-assertions.js";
import {
  type PostgresServerHandle,
  startPostgresServer,
  withClient,
} from "../support/postgres-server.js";
import {
  INVALID_REFRESH_TOKEN,
  loginForRefreshToken,
  postRefresh,
  rotate,
  SESSION_CLIENTS,
} from "../support/session-flows.js";
import { CLIENTS, startTestService, type TestService } from "../support/test-service.js";

const { Health, HealthCheckResponse_ServingStatus: ServingStatus } = grpcHealthV1;

/** Every TOTP secret and recovery code this file's flows saw in clear. */
const totpSecrets: string[] = [];
const recoveryCodes: string[] = [];

let postgres: PostgresServerHandle;
before(async () => {
  postgres = await startPostgresServer({ dedicated: true, durable: true });
});
after(() => postgres?.stop());

/** Row 12 exactly as the error table renders it (status, body, Retry-After). */
function assertUnavailable(result: RestResult<unknown>): void {
  assertOAuthError(result, 503, "temporarily_unavailable", "Service temporarily unavailable");
  const retryAfter = oauthErrors.temporarilyUnavailable().retryAfterSeconds;
  assert.equal(result.headers.get("retry-after"), retryAfter?.toString() ?? null);
}

/** Refreshes readiness until it reads `ready` (the background ping runs every second). */
async function waitForReadiness(service: TestService, ready: boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while ((await service.app.storeHealth.refresh()) !== ready) {
    if (Date.now() > deadline) throw new Error(`readiness never became ${ready}`);
    await sleep(100);
  }
}

describe("PostgreSQL store", () => {
  let databaseUrl: string;
  let service: TestService;
  before(async () => {
    databaseUrl = await postgres.freshDatabase();
    service = await startTestService({
      store: "postgres",
      databaseUrl,
      env: { ADDRESS_THROTTLING: "true" },
    });
  });
  after(() => service.close());

  test("the whole flow: enroll, verify, recover, DPoP, delete, enroll again", async () => {
    const userId = uniqueUserId("pg-flow");
    const rpc = clientsFor(service, "grpc");
    const issue = () =>
      rpc.mfaToken.issueMfaToken(
        { userId, clientId: CLIENTS.post.id, scope: "openid" },
        internalAuth,
      );

    const first = await issue();
    assert.deepEqual(
      first.mfaRequirements?.enroll.map((r) => r.type),
      ["otp"],
    );
    const association = await associateResponse(service, first.mfaToken, "grpc");
    totpSecrets.push(association.secret);
    recoveryCodes.push(...association.recoveryCodes);
    const [recoveryCode = ""] = association.recoveryCodes;

    // The first success activates the pending authenticator.
    const code = freshCode(service, association.secret);
    assert.equal((await postTokenForm(service, otpGrantParams(first.mfaToken, code))).status, 200);
    assertOAuthError(
      await postTokenForm(service, otpGrantParams(first.mfaToken, code)),
      400,
      "expired_token",
      "mfa_token is expired",
    );
    const second = await issue();
    assert.deepEqual(
      second.mfaRequirements?.challenge.map((r) => r.type),
      ["otp"],
    );
    await assertRpcError(
      rpc.mfa.associate({ mfaToken: second.mfaToken }),
      Code.PermissionDenied,
      "access_denied",
      "User is already enrolled.",
    );

    // A wrong code (charges both failure buckets), then the recovery grant.
    assertOAuthError(
      await postTokenForm(
        service,
        otpGrantParams(second.mfaToken, wrongCode(service, association.secret)),
      ),
      400,
      "invalid_grant",
      "Invalid otp_code.",
    );
    const recovered = await postTokenForm(
      service,
      recoveryGrantParams(second.mfaToken, recoveryCode),
    );
    assert.equal(recovered.status, 200);
    assert.deepEqual(decodeJwt(String(recovered.body.access_token)).amr, ["mfa"]);
    const newRecoveryCode = String(recovered.body.recovery_code);
    recoveryCodes.push(newRecoveryCode);
    assert.notEqual(newRecoveryCode, recoveryCode);
    assertOAuthError(
      await postTokenForm(service, recoveryGrantParams((await issue()).mfaToken, recoveryCode)),
      400,
      "invalid_grant",
      "Invalid recovery_code.",
    );

    // A DPoP-bound verify (records the proof's jti).
    const dpopCode = freshCode(service, association.secret);
    const bound = await postTokenForm(service, otpGrantParams((await issue()).mfaToken, dpopCode), {
      dpop: await dpopProof(service),
    });
    assert.equal(bound.status, 200);
    assert.equal(bound.body.token_type, "DPoP");

    // Delete, then enroll again: a new pending authenticator, no new recovery code.
    const listed = await rpc.mfa.listAuthenticators({ mfaToken: (await issue()).mfaToken });
    assert.deepEqual(
      listed.authenticators.map((a) => a.authenticatorType),
      ["otp", "recovery-code"],
    );
    const [authenticator] = listed.authenticators;
    const deleteToken = await mfaApiToken(service, userId, association.secret);
    const deleted = await fetch(
      `${service.baseUrl}/mfa/authenticators/${encodeURIComponent(authenticator?.id ?? "")}`,
      { method: "DELETE", headers: { authorization: `Bearer ${deleteToken}` } },
    );
    assert.equal(deleted.status, 204);
    const again = await issue();
    assert.deepEqual(
      again.mfaRequirements?.enroll.map((r) => r.type),
      ["otp"],
    );
    const reassociation = await associateResponse(service, again.mfaToken, "connect-h2");
    totpSecrets.push(reassociation.secret);
    assert.deepEqual(reassociation.recoveryCodes, []);
    const reactivated = await rpc.token.verifyMfaOtp(
      otpRpcRequest(again.mfaToken, freshCode(service, reassociation.secret)),
    );
    assert.equal(reactivated.tokenType, "Bearer");
  });

  test("round trips: a success is 2 statements (DPoP included), a wrong code 1", async (t) => {
    const counter = await postgres.countStatements(databaseUrl);
    if (counter === undefined) {
      t.skip("statement counts need a server of our own (pg_stat_statements)");
      return;
    }
    t.after(() => counter.stop());
    const { userId, secret } = await enrolledUser(service);
    totpSecrets.push(secret);
    // pg_stat_statements counts per statement: the names, sorted.
    const names = async () =>
      (await counter.take()).map((q) => /ts_[a-z_]+/.exec(q)?.[0] ?? q).sort();
    const rpc = clientsFor(service, "grpc");
    const verify = (surface: "REST" | "gRPC", mfaToken: string, otp: string, dpop?: string) =>
      surface === "REST"
        ? postTokenForm(service, otpGrantParams(mfaToken, otp), dpop ? { dpop } : {}).then((r) =>
            r.status === 200 ? "ok" : String(r.body.error),
          )
        : rpc.token.verifyMfaOtp(otpRpcRequest(mfaToken, otp)).then(
            () => "ok",
            (error: unknown) => String(rpcFailureOf(error).detail?.error),
          );

    for (const surface of ["REST", "gRPC"] as const) {
      const successToken = await issueMfaToken(service, userId);
      const code = freshCode(service, secret);
      await counter.take();
      assert.equal(await verify(surface, successToken, code), "ok");
      assert.deepEqual(await names(), ["ts_begin_verify", "ts_commit_otp"], surface);

      const failureToken = await issueMfaToken(service, userId);
      await counter.take();
      assert.equal(
        await verify(surface, failureToken, wrongCode(service, secret)),
        "invalid_grant",
      );
      assert.deepEqual(await names(), ["ts_begin_verify"], surface);
    }
    // The address's bucket is charged inside those statements: two attempts taken.
    const buckets = await withClient(databaseUrl, async (client) => {
      const { rows } = await client.query<{ full_at: string }>(
        "SELECT full_at FROM address_failure_buckets",
      );
      return rows.map((r) => Number(r.full_at));
    });
    assert.equal(buckets.length, 1);
    const refillMs = service.app.ctx.config.addressThrottling.refillSeconds * 1000;
    assert.ok((buckets[0] ?? 0) - service.clock.nowMs() > refillMs, "two attempts are taken");

    const dpopToken = await issueMfaToken(service, userId);
    const dpopCode = freshCode(service, secret);
    const proof = await dpopProof(service);
    await counter.take();
    assert.equal(await verify("REST", dpopToken, dpopCode, proof), "ok");
    assert.deepEqual(await names(), ["ts_begin_verify", "ts_commit_otp"]);
  });

  test("a pg_dump holds no secret in clear: no TOTP secret, recovery code or client secret", async () => {
    const dump = await postgres.dump(databaseUrl);
    // The dump covers the service's tables, rows included.
    const tables = [...dump.matchAll(/^CREATE TABLE (?:[\w]+\.)?(\w+) /gm)].map((m) => m[1]).sort();
    assert.deepEqual(tables, [
      "address_failure_buckets",
      "authenticators",
      "consumed_mfa_tokens",
      "recovery_codes",
      "refresh_token_families",
      "refresh_token_revocations",
      "schema_migrations",
      "single_use_values",
      "user_failure_buckets",
    ]);
    for (const table of ["authenticators", "recovery_codes", "consumed_mfa_tokens"]) {
      assert.match(dump, new RegExp(`COPY (?:\\w+\\.)?${table} [^;]+;\\n[^\\\\]`), `${table} rows`);
    }

    assert.ok(totpSecrets.length >= 3 && recoveryCodes.length >= 2);
    const needles: string[] = [];
    for (const secret of totpSecrets) {
      const raw = Buffer.from(decodeBase32Secret(secret));
      needles.push(
        secret,
        secret.toLowerCase(),
        raw.toString("hex"),
        raw.toString("base64"),
        raw.toString("base64url"),
      );
    }
    for (const code of recoveryCodes) needles.push(code, code.toLowerCase());
    for (const client of Object.values(CLIENTS)) {
      if ("secret" in client) needles.push(client.secret);
    }
    for (const needle of needles) {
      assert.equal(dump.includes(needle), false, "a secret is in the dump in clear");
    }
  });
});

describe("PostgreSQL down, then back", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({
      store: "postgres",
      databaseUrl: await postgres.freshDatabase(),
    });
  });
  after(() => service.close());

  test("503 and readiness 503 while it is down; recovery without restarting the service", async () => {
    const { userId, secret } = await enrolledUser(service);
    await waitForReadiness(service, true);
    const mfaToken = await issueMfaToken(service, userId);
    const code = freshCode(service, secret);

    await postgres.halt();
    try {
      const rpc = clientsFor(service, "connect-h1");
      const [rest, associate] = await Promise.all([
        postTokenForm(service, otpGrantParams(mfaToken, code)),
        fetch(`${service.baseUrl}/mfa/associate`, {
          method: "POST",
          headers: { authorization: `Bearer ${mfaToken}` },
        }),
        assertRpcError(
          rpc.token.verifyMfaOtp(otpRpcRequest(mfaToken, code)),
          Code.Unavailable,
          "temporarily_unavailable",
          "Service temporarily unavailable",
          1,
        ),
      ]);
      assertUnavailable(rest);
      assert.equal(associate.status, 503);

      await waitForReadiness(service, false);
      const [readyz, healthz] = await Promise.all([
        fetch(`${service.baseUrl}/readyz`),
        fetch(`${service.baseUrl}/healthz`),
      ]);
      assert.equal(readyz.status, 503);
      assert.equal(healthz.status, 200);
      const health = createClient(Health, transportFor(service.baseUrl, "grpc"));
      assert.equal((await health.check({})).status, ServingStatus.NOT_SERVING);
    } finally {
      await postgres.start();
    }

    // The same service, the same pool: ready again once the server answers.
    await waitForReadiness(service, true);
    assert.equal((await fetch(`${service.baseUrl}/readyz`)).status, 200);
    const health = createClient(Health, transportFor(service.baseUrl, "grpc"));
    assert.equal((await health.check({})).status, ServingStatus.SERVING);
    // The refused attempts consumed nothing: the same mfa_token and code succeed now.
    const result = await postTokenForm(service, otpGrantParams(mfaToken, code));
    assert.equal(result.status, 200, JSON.stringify(result.body));
  });
});

describe("PostgreSQL crash (pg_ctl restart -m immediate)", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({
      store: "postgres",
      databaseUrl: await postgres.freshDatabase(),
    });
  });
  after(() => service.close());

  test("loses nothing acknowledged: mfa_tokens, steps, recovery codes, sessions, DPoP jtis", async (t) => {
    // Acknowledged before the crash, one of each kind.
    const userId = uniqueUserId("pg-crash");
    const first = await issueMfaToken(service, userId);
    const association = await associateResponse(service, first);
    const [recoveryCode = ""] = association.recoveryCodes;
    const activation = freshCode(service, association.secret);
    assert.equal((await postTokenForm(service, otpGrantParams(first, activation))).status, 200);
    const redeemed = await postTokenForm(
      service,
      recoveryGrantParams(await issueMfaToken(service, userId), recoveryCode),
    );
    assert.equal(redeemed.status, 200);
    const sessionUser = { userId, secret: association.secret };
    const firstRefresh = await loginForRefreshToken(service, sessionUser);
    const secondRefresh = await rotate(service, SESSION_CLIENTS.rotating, firstRefresh);
    const boundCode = freshCode(service, association.secret);
    const proofAt = service.clock.nowMs();
    const proof = await dpopProof(service);
    const bound = await postTokenForm(
      service,
      otpGrantParams(await issueMfaToken(service, userId), boundCode),
      { dpop: proof },
    );
    assert.equal(bound.status, 200);

    // More verifies, of other users, while the server crashes and recovers.
    // One at a time: each enrollment moves the (shared) fake clock on.
    const users: Array<{ userId: string; secret: string }> = [];
    for (let i = 0; i < 30; i++) users.push(await enrolledUser(service));
    nextStep(service);
    const attempts = await Promise.all(
      users.map(async (user) => ({
        mfaToken: await issueMfaToken(service, user.userId),
        code: codeAt(service, user.secret),
      })),
    );
    const before = await Promise.all(
      attempts.slice(0, 10).map((a) => postTokenForm(service, otpGrantParams(a.mfaToken, a.code))),
    );
    assert.deepEqual(
      before.map((r) => r.status),
      Array(10).fill(200),
    );
    const crash = postgres.crashRestart();
    const during = await Promise.all(
      attempts.slice(10).map(async (a, i) => {
        await sleep(i * 40);
        return postTokenForm(service, otpGrantParams(a.mfaToken, a.code));
      }),
    );
    await crash;
    for (const result of during) {
      if (result.status !== 200) assertUnavailable(result);
    }
    await waitForReadiness(service, true);

    // Every acknowledged success is still spent (the clock has not moved: the
    // codes are still current): its mfa_token, and its time step.
    const acknowledged = attempts.filter((_, i) => [...before, ...during][i]?.status === 200);
    assert.ok(acknowledged.length >= 10, `${acknowledged.length} acknowledged`);
    t.diagnostic(
      `${acknowledged.length} of ${attempts.length} verifies acknowledged, ${attempts.length - acknowledged.length} refused (503) around the crash`,
    );
    for (const [i, { mfaToken, code }] of acknowledged.entries()) {
      assertOAuthError(
        await postTokenForm(service, otpGrantParams(mfaToken, code)),
        400,
        "expired_token",
        "mfa_token is expired",
      );
      const user = users[attempts.findIndex((a) => a.mfaToken === mfaToken)];
      assert.ok(user, `user of attempt ${i}`);
      assertOAuthError(
        await postTokenForm(
          service,
          otpGrantParams(await issueMfaToken(service, user.userId), code),
        ),
        400,
        "invalid_grant",
        "Invalid otp_code.",
      );
    }
    // The authenticator activated before the crash is active: no open enrollment.
    const again = await clientsFor(service).mfaToken.issueMfaToken(
      { userId, clientId: CLIENTS.post.id },
      internalAuth,
    );
    assert.deepEqual(
      again.mfaRequirements?.challenge.map((r) => r.type),
      ["otp"],
    );
    // The redeemed recovery code is gone, its successor works.
    assertOAuthError(
      await postTokenForm(
        service,
        recoveryGrantParams(await issueMfaToken(service, userId), recoveryCode),
      ),
      400,
      "invalid_grant",
      "Invalid recovery_code.",
    );
    assert.equal(
      (
        await postTokenForm(
          service,
          recoveryGrantParams(
            await issueMfaToken(service, userId),
            String(redeemed.body.recovery_code),
          ),
        )
      ).status,
      200,
    );
    // The DPoP proof's jti is still remembered (at the time the proof was made,
    // so that only its jti can refuse it).
    const later = service.clock.nowMs();
    service.clock.set(proofAt);
    const replayed = await postTokenForm(
      service,
      otpGrantParams(await issueMfaToken(service, userId), boundCode),
      { dpop: proof },
    );
    service.clock.set(later);
    assert.equal(replayed.status, 400);
    assert.equal(replayed.body.error, "invalid_dpop_proof");
    assert.match(String(replayed.body.error_description), /already been used/);
    // The rotated refresh token is retired: presenting it is a reuse.
    assertOAuthError(
      await postRefresh(service, SESSION_CLIENTS.rotating, firstRefresh),
      400,
      "invalid_grant",
      INVALID_REFRESH_TOKEN,
    );
    assertOAuthError(
      await postRefresh(service, SESSION_CLIENTS.rotating, secondRefresh),
      400,
      "invalid_grant",
      INVALID_REFRESH_TOKEN,
    );
  });
});
