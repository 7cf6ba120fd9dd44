/**
 * Refresh-token sessions on a real PostgreSQL server, through the wire (the
 * twin of sessions-redis.test.ts): 20 parallel exchanges of one token
 * through `POST /oauth/token` (exactly one success with leeway 0, the family
 * revoked by the others, nothing left of it in the database), statements
 * counted per step (one round trip per exchange, DPoP included), no refresh
 * token in clear anywhere in a `pg_dump`, and the RefreshToken, RevokeToken
 * and RevokeUserSessions RPCs over gRPC.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { dpopProofFor, generateTestKey } from "../support/dpop.js";
import {
  clientsFor,
  freshCode,
  internalAuth,
  issueMfaToken,
  MFA_OTP_GRANT,
  postTokenForm,
} from "../support/flows.js";
import { assertOAuthError, assertRpcError } from "../support/oauth-assertions.js";
import {
  type PostgresServerHandle,
  startPostgresServer,
  withClient,
} from "../support/postgres-server.js";
import {
  INVALID_REFRESH_TOKEN,
  loginForRefreshToken,
  postRefresh,
  postRevoke,
  restCredentials,
  rotate,
  rpcCredentials,
  SESSION_CLIENTS,
  SESSION_SCOPE,
  sessionUser,
} from "../support/session-flows.js";
import { startTestService, type TestService } from "../support/test-service.js";

const { rotating, leeway, nonRotating } = SESSION_CLIENTS;
const publicClient = SESSION_CLIENTS.public;

describe("sessions on PostgreSQL", () => {
  let postgres: PostgresServerHandle;
  let databaseUrl: string;
  let service: TestService;
  /** Every refresh token this file saw. */
  const seenTokens: string[] = [];
  before(async () => {
    postgres = await startPostgresServer();
    databaseUrl = await postgres.freshDatabase();
    service = await startTestService({ store: "postgres", databaseUrl });
  });
  after(async () => {
    await service.close();
    await postgres.stop();
  });

  /** The user's family rows still in the database. */
  async function familiesOf(userId: string): Promise<number> {
    return withClient(databaseUrl, async (client) => {
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM refresh_token_families WHERE user_id = $1",
        [userId],
      );
      return rows[0]?.n ?? -1;
    });
  }

  it("20 parallel exchanges of one token (leeway 0): one success, the family revoked by the others", async () => {
    const user = await sessionUser(service);
    const token = await loginForRefreshToken(service, user, rotating);
    seenTokens.push(token);
    assert.equal(await familiesOf(user.userId), 1);

    const results = await Promise.all(
      Array.from({ length: 20 }, () => postRefresh(service, rotating, token)),
    );
    const successes = results.filter((r) => r.status === 200);
    assert.equal(successes.length, 1);
    for (const failure of results.filter((r) => r.status !== 200)) {
      assertOAuthError(failure, 400, "invalid_grant", INVALID_REFRESH_TOKEN);
    }
    // Auth0's reuse detection: the winner's successor fails too.
    const successor = String(successes[0]?.body.refresh_token);
    seenTokens.push(successor);
    assertOAuthError(
      await postRefresh(service, rotating, successor),
      400,
      "invalid_grant",
      INVALID_REFRESH_TOKEN,
    );
    // Consistent afterwards: nothing of the family is left.
    assert.equal(await familiesOf(user.userId), 0);
  });

  it("20 parallel exchanges with a leeway: every one succeeds, the family lives on", async () => {
    const user = await sessionUser(service);
    const token = await loginForRefreshToken(service, user, leeway);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => postRefresh(service, leeway, token)),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      Array(20).fill(200),
    );
    const successors = results.map((r) => String(r.body.refresh_token));
    seenTokens.push(token, ...successors);
    assert.equal(new Set(successors).size, 20);
    // One family, still live: the last successor (kept among the live ones) rotates.
    assert.equal(await familiesOf(user.userId), 1);
    seenTokens.push(await rotate(service, leeway, successors.at(-1) ?? ""));
  });

  it("round trips: an exchange is one statement; a session start adds one to the login", async (t) => {
    const counter = await postgres.countStatements(databaseUrl);
    if (counter === undefined) {
      t.skip("statement counts need a server of our own (pg_stat_statements)");
      return;
    }
    t.after(() => counter.stop());
    const names = (ran: string[]) => ran.map((q) => /ts_[a-z_]+/.exec(q)?.[0] ?? q);
    const user = await sessionUser(service);

    // A login without offline_access: 2 (beginVerify, commitOtp); with it: 3 (+ createFamily).
    const mfaToken = await issueMfaToken(service, user.userId, {
      clientId: rotating.id,
      scope: "openid",
    });
    const code = freshCode(service, user.secret);
    await counter.take();
    const plain = await postTokenForm(service, {
      grant_type: MFA_OTP_GRANT,
      ...restCredentials(rotating).params,
      mfa_token: mfaToken,
      otp: code,
    });
    assert.equal(plain.status, 200);
    assert.deepEqual(names(await counter.take()).sort(), ["ts_begin_verify", "ts_commit_otp"]);

    const sessionToken = await issueMfaToken(service, user.userId, {
      clientId: rotating.id,
      scope: SESSION_SCOPE,
    });
    const sessionCode = freshCode(service, user.secret);
    await counter.take();
    const body = (
      await postTokenForm(service, {
        grant_type: MFA_OTP_GRANT,
        ...restCredentials(rotating).params,
        mfa_token: sessionToken,
        otp: sessionCode,
      })
    ).body;
    seenTokens.push(String(body.refresh_token));
    assert.deepEqual(names(await counter.take()).sort(), [
      "ts_begin_verify",
      "ts_commit_otp",
      "ts_create_family",
    ]);

    const next = await rotate(service, rotating, String(body.refresh_token));
    seenTokens.push(next);
    assert.deepEqual(names(await counter.take()), ["ts_exchange"]);

    // With a DPoP proof the proof is recorded inside the same statement.
    const key = await generateTestKey();
    const bound = await loginForRefreshToken(service, user, publicClient, {
      dpop: await dpopProofFor(service, key),
    });
    seenTokens.push(bound);
    await counter.take();
    seenTokens.push(
      await rotate(service, publicClient, bound, { dpop: await dpopProofFor(service, key) }),
    );
    assert.deepEqual(names(await counter.take()), ["ts_exchange"]);

    // Revocation and revoke-all: one each.
    await postRevoke(service, rotating, { token: next });
    assert.deepEqual(names(await counter.take()), ["ts_revoke_family"]);
    await clientsFor(service).mfaToken.revokeUserSessions({ userId: user.userId }, internalAuth);
    assert.deepEqual(names(await counter.take()), ["ts_revoke_user_families"]);
  });

  it("RefreshToken, RevokeToken, RevokeUserSessions over gRPC", async () => {
    const rpc = clientsFor(service, "grpc");
    const user = await sessionUser(service);
    const token = await loginForRefreshToken(service, user, rotating);
    const { fields } = rpcCredentials(rotating);
    const refreshed = await rpc.token.refreshToken({ refreshToken: token, ...fields });
    assert.match(refreshed.refreshToken, /^rt1\./);
    assert.equal(refreshed.scope, SESSION_SCOPE);
    seenTokens.push(token, refreshed.refreshToken);
    await assertRpcError(
      rpc.token.refreshToken({ refreshToken: token, ...fields }),
      Code.FailedPrecondition,
      "invalid_grant",
      INVALID_REFRESH_TOKEN,
    );

    const second = await loginForRefreshToken(service, user, rotating);
    seenTokens.push(second);
    await rpc.token.revokeToken({ token: second, ...fields });
    await assertRpcError(
      rpc.token.refreshToken({ refreshToken: second, ...fields }),
      Code.FailedPrecondition,
      "invalid_grant",
      INVALID_REFRESH_TOKEN,
    );

    const third = await loginForRefreshToken(service, user, nonRotating);
    const fourth = await loginForRefreshToken(service, user, leeway);
    seenTokens.push(third, fourth);
    const { revoked } = await rpc.mfaToken.revokeUserSessions(
      { userId: user.userId },
      internalAuth,
    );
    assert.equal(revoked, 2);
    assert.equal(await familiesOf(user.userId), 0);
  });

  it("no refresh token, nor any 16 characters of one, anywhere in a pg_dump", async () => {
    // A few live sessions of each kind, so there is something to look at.
    const user = await sessionUser(service);
    for (const client of [rotating, leeway, nonRotating]) {
      const token = await loginForRefreshToken(service, user, client);
      seenTokens.push(token);
      if (client !== nonRotating) seenTokens.push(await rotate(service, client, token));
    }
    assert.ok(seenTokens.length > 30, `${seenTokens.length} tokens seen`);

    const text = await postgres.dump(databaseUrl);
    assert.match(text, /COPY [\w.]*refresh_token_families /, "the dump holds the families");
    assert.ok(text.includes(user.userId), "and their rows");
    for (const token of seenTokens) {
      for (let start = 0; start + 16 <= token.length; start += 8) {
        const window = token.slice(start, start + 16);
        assert.ok(!text.includes(window), `a piece of a refresh token is in the dump: ${window}`);
      }
    }
  });
});
