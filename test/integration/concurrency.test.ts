/**
 * docs/api.md "Concurrent requests with one valid code yield exactly one token, on
 * every store": races of 50 parallel verifies over real sockets, on the memory
 * store, on a real redis-server and on a real PostgreSQL server.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import {
  associate,
  clientsFor,
  enrolledUser,
  freshCode,
  issueMfaToken,
  issueMfaTokens,
  otpGrantParams,
  otpRpcRequest,
  postTokenForm,
  uniqueUserId,
} from "../support/flows.js";
import { assertOAuthError, rpcFailureOf } from "../support/oauth-assertions.js";
import { type PostgresServerHandle, startPostgresServer } from "../support/postgres-server.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import { startTestService, type TestService } from "../support/test-service.js";

const PARALLEL = 50;

/**
 * The failure bucket would decide these races instead of the replay guard and
 * the mfa_token's single use: a verify takes one attempt in its first round
 * trip and only a success gives it back ("charge first", README), so 50
 * concurrent verifies hold up to 50 attempts at once, and the 49 losers of the
 * different-mfa_token race are 49 failures. With the default capacity of 10,
 * some requests would get `too_many_attempts` and the results would depend on
 * scheduling. 1000 (the configured maximum) keeps the bucket out of the way.
 */
const RACE_ENV = { OTP_MAX_FAILURES: "1000" };

/** Outcome counts, keyed "ok" or "<Connect code> <error>: <description>". */
async function tallyRpc(calls: Array<Promise<unknown>>): Promise<Record<string, number>> {
  const outcomes = await Promise.all(
    calls.map(async (call) => {
      try {
        await call;
        return "ok";
      } catch (error) {
        const failure = rpcFailureOf(error);
        return `${Code[failure.code]} ${failure.detail?.error}: ${failure.detail?.errorDescription}`;
      }
    }),
  );
  return tally(outcomes);
}

/** Outcome counts, keyed "<status> <error>: <description>" ("200" for a token). */
async function tallyRest(
  calls: Array<ReturnType<typeof postTokenForm>>,
): Promise<Record<string, number>> {
  const results = await Promise.all(calls);
  for (const result of results) assert.equal(result.headers.get("cache-control"), "no-store");
  return tally(
    results.map((r) =>
      r.status === 200 ? "200" : `${r.status} ${r.body.error}: ${r.body.error_description}`,
    ),
  );
}

function tally(outcomes: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1;
  return counts;
}

function defineRaces(storeName: string, start: () => Promise<TestService>) {
  describe(`races on the ${storeName} store`, () => {
    let service: TestService;
    before(async () => {
      service = await start();
    });
    after(() => service.close());

    test(`${PARALLEL} parallel verifies of one mfa_token and one valid code: one 200`, async () => {
      const { userId, secret } = await enrolledUser(service);
      const mfaToken = await issueMfaToken(service, userId);
      const params = otpGrantParams(mfaToken, freshCode(service, secret));
      const counts = await tallyRest(
        Array.from({ length: PARALLEL }, () => postTokenForm(service, params)),
      );
      // Every loser finds the mfa_token consumed (in round trip 1 or 2): row 6.
      assert.deepEqual(counts, {
        "200": 1,
        "400 expired_token: mfa_token is expired": PARALLEL - 1,
      });
    });

    test(`${PARALLEL} parallel verifies of one code with ${PARALLEL} mfa_tokens: one token (replay guard)`, async () => {
      const { userId, secret } = await enrolledUser(service);
      const mfaTokens = await issueMfaTokens(service, userId, PARALLEL);
      const code = freshCode(service, secret);
      const { token } = clientsFor(service, "grpc");
      const counts = await tallyRpc(
        mfaTokens.map((mfaToken) => token.verifyMfaOtp(otpRpcRequest(mfaToken, code))),
      );
      assert.deepEqual(counts, {
        ok: 1,
        "FailedPrecondition invalid_grant: Invalid otp_code.": PARALLEL - 1,
      });

      // The step stays spent for a later, unhurried request too.
      assertOAuthError(
        await postTokenForm(service, otpGrantParams(await issueMfaToken(service, userId), code)),
        400,
        "invalid_grant",
        "Invalid otp_code.",
      );
    });

    test(`${PARALLEL} parallel first verifies of a pending authenticator: one activation`, async () => {
      const userId = uniqueUserId("pending");
      const secret = await associate(service, await issueMfaToken(service, userId));
      const mfaTokens = await issueMfaTokens(service, userId, PARALLEL);
      const code = freshCode(service, secret);
      const counts = await tallyRest(
        mfaTokens.map((mfaToken) => postTokenForm(service, otpGrantParams(mfaToken, code))),
      );
      assert.deepEqual(counts, { "200": 1, "400 invalid_grant: Invalid otp_code.": PARALLEL - 1 });

      const listed = await clientsFor(service).mfa.listAuthenticators({
        mfaToken: await issueMfaToken(service, userId),
      });
      assert.deepEqual(
        listed.authenticators.map((a) => [a.authenticatorType, a.active]),
        [
          ["otp", true],
          ["recovery-code", true],
        ],
      );
    });
  });
}

defineRaces("memory", () => startTestService({ env: RACE_ENV }));

let redis: RedisServerHandle | undefined;
after(() => redis?.stop());
defineRaces("Redis", async () => {
  redis = await startRedisServer();
  return startTestService({ store: "redis", redisUrl: redis.url, env: RACE_ENV });
});

let postgres: PostgresServerHandle | undefined;
after(() => postgres?.stop());
defineRaces("PostgreSQL", async () => {
  postgres = await startPostgresServer();
  const databaseUrl = await postgres.freshDatabase();
  return startTestService({ store: "postgres", databaseUrl, env: RACE_ENV });
});
