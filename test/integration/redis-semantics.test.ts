/**
 * The service on a real redis-server (docs/api.md error row 12, docs/architecture.md): the whole
 * flow, Redis round trips per verify, key hygiene (TTLs, nothing secret in
 * clear) and behaviour while Redis is down. Per-address throttling is on
 * (as in production), so its bucket is in every count and in the scan.
 *
 * This file spawns its own redis-server (`dedicated`) even when REDIS_URL is
 * set: MONITOR counts every client's commands and the hygiene scan reads every
 * key, so another suite sharing the server would make both inexact.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { decodeJwt } from "jose";
import { decodeBase32Secret } from "../../src/mfa/totp.js";
import { dpopProof } from "../support/dpop.js";
import {
  associateResponse,
  clientsFor,
  enrolledUser,
  freshCode,
  internalAuth,
  issueMfaToken,
  mfaApiToken,
  otpGrantParams,
  otpRpcRequest,
  postTokenForm,
  recoveryGrantParams,
  uniqueUserId,
  wrongCode,
} from "../support/flows.js";
import { assertOAuthError, assertRpcError, rpcFailureOf } from "../support/oauth-assertions.js";
import {
  countCommands,
  type RedisServerHandle,
  startRedisServer,
} from "../support/redis-server.js";
import { CLIENTS, startTestService, type TestService } from "../support/test-service.js";

/** Every TOTP secret and recovery code this file's flows saw in clear. */
const totpSecrets: string[] = [];
const recoveryCodes: string[] = [];

describe("Redis store", () => {
  let redis: RedisServerHandle;
  let service: TestService;
  let inspector: Redis;
  before(async () => {
    redis = await startRedisServer({ dedicated: true });
    service = await startTestService({
      store: "redis",
      redisUrl: redis.url,
      env: { ADDRESS_THROTTLING: "true" },
    });
    inspector = new Redis(redis.url);
  });
  after(async () => {
    await service.close();
    await inspector.quit();
    await redis.stop();
  });

  test("the whole flow: enroll, verify, recover, DPoP, delete, enroll again", async () => {
    const userId = uniqueUserId("redis-flow");
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
    assert.equal(association.recoveryCodes.length, 1);
    const [recoveryCode = ""] = association.recoveryCodes;

    // The first success activates the pending authenticator.
    const code = freshCode(service, association.secret);
    const verified = await postTokenForm(service, otpGrantParams(first.mfaToken, code));
    assert.equal(verified.status, 200);
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

    // A wrong code (leaves a failure-bucket key), then the recovery grant.
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
    assert.match(newRecoveryCode, /^[0-9A-Z]{24}$/);
    assert.notEqual(newRecoveryCode, recoveryCode);
    assertOAuthError(
      await postTokenForm(service, recoveryGrantParams((await issue()).mfaToken, recoveryCode)),
      400,
      "invalid_grant",
      "Invalid recovery_code.",
    );

    // A DPoP-bound verify (leaves a `ts:once:` key for the proof's jti).
    const dpopCode = freshCode(service, association.secret);
    const bound = await postTokenForm(service, otpGrantParams((await issue()).mfaToken, dpopCode), {
      dpop: await dpopProof(service),
    });
    assert.equal(bound.status, 200);
    assert.equal(bound.body.token_type, "DPoP");
    assert.equal(
      typeof (decodeJwt(String(bound.body.access_token)).cnf as { jkt?: unknown }).jkt,
      "string",
    );

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
    const pending = await rpc.mfa.listAuthenticators({ mfaToken: again.mfaToken });
    assert.deepEqual(
      pending.authenticators.map((a) => a.active),
      [false, true],
    );
    const reactivated = await rpc.token.verifyMfaOtp(
      otpRpcRequest(again.mfaToken, freshCode(service, reassociation.secret)),
    );
    assert.equal(reactivated.tokenType, "Bearer");
  });

  test("round trips: a success costs at most 2 Redis commands, a wrong code exactly 1", async (t) => {
    // Scripts are sent as EVAL the first time on a connection and as EVALSHA
    // afterwards; either way one command is one round trip. The client
    // address's bucket is one more key of the same scripts (a wrong code
    // leaves it charged: checked below).
    const { userId, secret } = await enrolledUser(service);
    totpSecrets.push(secret);
    const counter = await countCommands(redis.url);
    t.after(() => counter.stop());
    const measure = async (request: () => Promise<void>): Promise<string[]> => {
      await counter.take();
      await request();
      return (await counter.take()).map((command) => command[0] ?? "");
    };
    const scripts = (commands: string[]) =>
      commands.every((name) => name === "evalsha" || name === "eval");

    const rpc = clientsFor(service, "grpc");
    /** One verify; "ok" or the OAuth `error`. */
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
      const success = await measure(async () => {
        assert.equal(await verify(surface, successToken, code), "ok");
      });
      t.diagnostic(`${surface} success: ${success.length} commands (${success.join(", ")})`);
      assert.ok(success.length <= 2, `success used ${success.length} commands`);
      assert.ok(scripts(success), success.join(", "));

      const failureToken = await issueMfaToken(service, userId);
      const failure = await measure(async () => {
        assert.equal(
          await verify(surface, failureToken, wrongCode(service, secret)),
          "invalid_grant",
        );
      });
      t.diagnostic(`${surface} wrong code: ${failure.length} commands (${failure.join(", ")})`);
      assert.equal(failure.length, 1, failure.join(", "));
      assert.ok(scripts(failure), failure.join(", "));
    }
    // Those commands charged the address's bucket: one key, two attempts taken.
    const addressKeys = await inspector.keys("ts:ab:*");
    assert.equal(addressKeys.length, 1, addressKeys.join(", "));
    const [addressKey = ""] = addressKeys;
    const fullAtMs = Number(await inspector.get(addressKey));
    const refillMs = service.app.ctx.config.addressThrottling.refillSeconds * 1000;
    assert.ok(fullAtMs - service.clock.nowMs() > refillMs, "two attempts are taken");

    // On standalone Redis the proof's jti is recorded inside the first script
    // (a cluster needs one SET NX more, see redis-store.ts): still two.
    const dpopToken = await issueMfaToken(service, userId);
    const dpopCode = freshCode(service, secret);
    const proof = await dpopProof(service);
    const withDpop = await measure(async () => {
      assert.equal(await verify("REST", dpopToken, dpopCode, proof), "ok");
    });
    t.diagnostic(`REST success with DPoP: ${withDpop.length} commands (${withDpop.join(", ")})`);
    assert.equal(withDpop.length, 2, withDpop.join(", "));
    assert.ok(scripts(withDpop), withDpop.join(", "));
  });

  test("hygiene: TTLs on everything but authenticator data, no secret in clear", async () => {
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = await inspector.scan(cursor, "MATCH", "*", "COUNT", 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== "0");

    const kinds = new Set<string>();
    const stored: Buffer[] = [];
    for (const key of keys) {
      assert.match(key, /^ts:/, "only the service's keys");
      const kind = /^ts:(?:(once|ab):|\{u:[^}]*\}:(otp|rc|fb|mt):)/.exec(`${key}:`);
      assert.ok(kind, `known key layout: ${key}`);
      kinds.add(kind[1] ?? kind[2] ?? "");
      const pttl = await inspector.pttl(key);
      if (kind[2] === "otp" || kind[2] === "rc") {
        assert.equal(pttl, -1, `durable authenticator data has no TTL: ${key}`);
      } else {
        assert.ok(pttl > 0, `${key} has a TTL (pttl ${pttl})`);
      }
      stored.push(Buffer.from(key, "utf8"));
      const type = await inspector.type(key);
      if (type === "string") {
        stored.push((await inspector.getBuffer(key)) ?? Buffer.alloc(0));
      } else if (type === "hash") {
        for (const [field, value] of Object.entries(await inspector.hgetallBuffer(key))) {
          stored.push(Buffer.from(field, "utf8"), value);
        }
      } else {
        assert.fail(`unexpected ${type} key ${key}`);
      }
    }
    // The scan covered every kind of key the flows create.
    assert.deepEqual([...kinds].sort(), ["ab", "fb", "mt", "once", "otp", "rc"]);

    assert.ok(totpSecrets.length >= 3 && recoveryCodes.length >= 2);
    const needles: Buffer[] = [];
    for (const secret of totpSecrets) {
      const raw = Buffer.from(decodeBase32Secret(secret));
      needles.push(raw);
      for (const text of [
        secret,
        secret.toLowerCase(),
        raw.toString("hex"),
        raw.toString("hex").toUpperCase(),
        raw.toString("base64"),
        raw.toString("base64url"),
      ]) {
        needles.push(Buffer.from(text, "utf8"));
      }
    }
    for (const code of recoveryCodes)
      needles.push(Buffer.from(code), Buffer.from(code.toLowerCase()));
    for (const value of stored) {
      for (const needle of needles) {
        assert.equal(value.includes(needle), false, "a secret is stored in clear");
      }
    }
  });
});

describe("Redis down", () => {
  let redis: RedisServerHandle;
  let service: TestService;
  before(async () => {
    redis = await startRedisServer({ dedicated: true });
    service = await startTestService({ store: "redis", redisUrl: redis.url });
  });
  after(async () => {
    await service.close();
    await redis.stop();
  });

  test("REST 503 temporarily_unavailable, RPC Unavailable, /readyz 503, /healthz 200", async () => {
    const ready = await fetch(`${service.baseUrl}/readyz`);
    assert.equal(ready.status, 200);
    const userId = uniqueUserId("outage");
    const mfaToken = await issueMfaToken(service, userId);

    await redis.stop();

    const rpc = clientsFor(service, "connect-h1");
    const [rest, associateRest] = await Promise.all([
      postTokenForm(service, otpGrantParams(mfaToken, "123456")),
      fetch(`${service.baseUrl}/mfa/associate`, {
        method: "POST",
        headers: { authorization: `Bearer ${mfaToken}` },
      }),
      assertRpcError(
        rpc.token.verifyMfaOtp(otpRpcRequest(mfaToken, "123456")),
        Code.Unavailable,
        "temporarily_unavailable",
        "Service temporarily unavailable",
        1,
      ),
      assertRpcError(
        clientsFor(service, "grpc").mfaToken.issueMfaToken(
          { userId, clientId: CLIENTS.post.id },
          internalAuth,
        ),
        Code.Unavailable,
        "temporarily_unavailable",
        "Service temporarily unavailable",
        1,
      ),
    ]);
    assertOAuthError(rest, 503, "temporarily_unavailable", "Service temporarily unavailable");
    assert.equal(rest.headers.get("retry-after"), "1");
    assert.equal(associateRest.status, 503);
    assert.deepEqual(await associateRest.json(), {
      error: "temporarily_unavailable",
      error_description: "Service temporarily unavailable",
    });

    // Readiness is the background health state (pinged every second); refresh it now.
    await service.app.storeHealth.refresh();
    const [readyz, healthz] = await Promise.all([
      fetch(`${service.baseUrl}/readyz`),
      fetch(`${service.baseUrl}/healthz`),
    ]);
    assert.equal(readyz.status, 503);
    assert.equal(healthz.status, 200);
  });
});
