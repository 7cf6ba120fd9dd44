/**
 * The Store and SessionStore contract suites (test/support/store-contract.ts,
 * session-store-contract.ts) on a real PostgreSQL server, plus what only
 * PostgreSQL has: one statement per method (two per successful verify, DPoP
 * and address bucket included), rows and their absolute expiries, the
 * expiry sweeper, and failures (unreachable server, statement timeout,
 * serialization failures retried once).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { createDatabase, type Statement } from "../../src/store/postgres-client.js";
import { singleUseKey } from "../../src/store/postgres-statements.js";
import { createPostgresStores, type PostgresStores } from "../../src/store/postgres-stores.js";
import { createSweeper, SWEPT_TABLES } from "../../src/store/postgres-sweeper.js";
import { StoreUnavailableError } from "../../src/store/store.js";
import type { PostgresSettings } from "../../src/store/store-config.js";
import { createFakeClock } from "../../src/util/clock.js";
import {
  type PostgresServerHandle,
  startPostgresServer,
  withClient,
} from "../support/postgres-server.js";
import { freePort } from "../support/redis-server.js";
import {
  defineSessionStoreContract,
  newFamilyRef,
  newHash,
  ROTATING,
} from "../support/session-store-contract.js";
import {
  authenticator,
  defineStoreContract,
  MINUTE,
  newAddress,
  newUser,
  POLICY,
} from "../support/store-contract.js";

const settingsFor = (url: string, overrides: Partial<PostgresSettings> = {}): PostgresSettings => ({
  url,
  poolSize: 10,
  statementTimeoutMs: 2000,
  connectTimeoutMs: 2000,
  ...overrides,
});

let server: PostgresServerHandle;
before(async () => {
  server = await startPostgresServer();
});
after(() => server?.stop());

/** Stores on a fresh database, on a fake clock, without the background sweeper. */
async function freshStores(overrides: Partial<PostgresSettings> = {}) {
  const url = await server.freshDatabase();
  const clock = createFakeClock(Date.now());
  const stores = createPostgresStores(settingsFor(url, overrides), { clock, sweeper: false });
  return { url, clock, stores };
}

defineStoreContract("postgres", async () => {
  // Real time plus what the tests let pass (the suite's users start at the
  // real time whenever their test runs), as the memory harness.
  let skipped = 0;
  const url = await server.freshDatabase();
  const stores = createPostgresStores(settingsFor(url, {}), {
    clock: { nowMs: () => Date.now() + skipped },
    sweeper: false,
  });
  return {
    store: stores.store,
    advance: async (ms) => {
      skipped += ms;
    },
    close: () => stores.store.close(),
  };
});

defineSessionStoreContract("postgres", async () => {
  const { stores } = await freshStores();
  return {
    sessions: stores.sessions,
    advance: async () => {},
    close: () => stores.store.close(),
  };
});

describe("postgres store", () => {
  let url: string;
  let clock: ReturnType<typeof createFakeClock>;
  let stores: PostgresStores;
  before(async () => {
    ({ url, clock, stores } = await freshStores());
  });
  after(() => stores.store.close());

  const rows = (sql: string, values: unknown[] = []) =>
    withClient(url, async (client) => (await client.query(sql, values)).rows);

  it("costs one statement per method, two for a successful verify (DPoP and address included)", async (t) => {
    const counter = await server.countStatements(url);
    if (counter === undefined) {
      t.skip("statement counts need a server of our own (pg_stat_statements)");
      return;
    }
    const { store, sessions } = stores;
    try {
      const expectOne = async (label: string, op: () => Promise<unknown>) => {
        await op();
        const ran = await counter.take();
        assert.equal(ran.length, 1, `${label}: ${JSON.stringify(ran)}`);
      };
      const { userId, token, t0 } = newUser();
      const auth = authenticator();
      const address = newAddress(POLICY);
      const proof = () => ({ id: `jkt.${randomUUID()}`, ttlMs: MINUTE });
      await expectOne("associatePending", () => store.associatePending(userId, auth, "rc"));
      await expectOne("getAuthenticator", () => store.getAuthenticator(userId));
      await expectOne("getFactors", () => store.getFactors(userId));
      await expectOne("isMfaTokenConsumed", () => store.isMfaTokenConsumed(token()));
      await expectOne("redeemRecoveryCode", () =>
        store.redeemRecoveryCode(token(), "rc", "rc2", t0, POLICY, proof(), address),
      );
      await expectOne("rememberOnce", () => store.rememberOnce("dpop", randomUUID(), 1000));
      await expectOne("ping", () => store.ping());
      const family = newFamilyRef();
      const first = newHash();
      await expectOne("createFamily", () =>
        sessions.createFamily({ family, tokenHash: first, nowMs: t0, policy: ROTATING }),
      );
      await expectOne("exchange with a DPoP proof", () =>
        sessions.exchange({
          family,
          presentedHash: first,
          successorHash: newHash(),
          nowMs: t0,
          policy: ROTATING,
          proof: proof(),
        }),
      );
      await expectOne("revokeFamilyByToken", () => sessions.revokeFamilyByToken(family, t0));
      await expectOne("revokeUserFamilies", () => sessions.revokeUserFamilies(userId, t0));

      // A whole successful verify with a DPoP proof and the address bucket: exactly 2.
      const tok = token();
      const begun = await store.beginVerify(tok, t0, POLICY, proof(), address);
      assert.equal(begun.kind, "ready");
      assert.equal(
        await store.commitOtp({
          token: tok,
          authenticatorId: auth.id,
          step: 1,
          nowMs: t0,
          bucket: POLICY,
          address,
        }),
        "committed",
      );
      const ran = await counter.take();
      assert.equal(ran.length, 2, JSON.stringify(ran));
      assert.match(ran.join("\n"), /ts_begin_verify/);
      assert.match(ran.join("\n"), /ts_commit_otp/);
      await expectOne("deleteAuthenticator", () => store.deleteAuthenticator(userId, auth.id));
    } finally {
      await counter.stop();
    }
  });

  it("stores the sealed secret as given; only authenticators and recovery codes never expire", async () => {
    const { userId, token, t0 } = newUser();
    const auth = authenticator();
    const address = newAddress(POLICY);
    const { store, sessions } = stores;
    await store.associatePending(userId, auth, "rc-hash");
    const tok = token(5 * MINUTE);
    await store.beginVerify(tok, t0, POLICY, { id: `jkt.${randomUUID()}`, ttlMs: MINUTE }, address);
    await store.beginVerify(token(), t0, POLICY); // a failure: the bucket stays charged
    await store.commitOtp({
      token: tok,
      authenticatorId: auth.id,
      step: 9,
      nowMs: t0,
      bucket: POLICY,
      address,
    });
    await sessions.createFamily({
      family: newFamilyRef(userId),
      tokenHash: newHash(),
      nowMs: t0,
      policy: { ...ROTATING, absoluteLifetimeMs: 100_000, idleLifetimeMs: 60_000 },
    });

    assert.deepEqual(
      await rows("SELECT id, secret, active, last_step FROM authenticators WHERE user_id = $1", [
        userId,
      ]),
      [{ id: auth.id, secret: auth.encryptedSecret, active: true, last_step: "9" }],
    );
    assert.deepEqual(
      await rows("SELECT code_hash FROM recovery_codes WHERE user_id = $1", [userId]),
      [{ code_hash: "rc-hash" }],
    );
    // Absolute expiries, from the caller's clock: the mark until the token's
    // expiry, the bucket until it is full again, the family at its idle deadline.
    assert.deepEqual(
      await rows("SELECT expires_at FROM consumed_mfa_tokens WHERE user_id = $1", [userId]),
      [{ expires_at: String(t0 + 5 * MINUTE) }],
    );
    assert.deepEqual(
      await rows("SELECT full_at FROM user_failure_buckets WHERE user_id = $1", [userId]),
      [{ full_at: String(t0 + MINUTE) }],
    );
    assert.deepEqual(
      await rows("SELECT full_at FROM address_failure_buckets WHERE address_id = $1", [address.id]),
      [{ full_at: String(t0) }],
    );
    assert.deepEqual(
      await rows("SELECT started_at, expires_at FROM refresh_token_families WHERE user_id = $1", [
        userId,
      ]),
      [{ started_at: String(t0), expires_at: String(t0 + 60_000) }],
    );
    const now = clock.nowMs();
    await store.rememberOnce("assertion:client", "jti-1", 30_000);
    const [once] = await rows("SELECT key, expires_at FROM single_use_values WHERE key = $1", [
      singleUseKey("assertion:client", "jti-1"),
    ]);
    assert.equal(once?.expires_at, String(now + 30_000));
    assert.equal(
      (once?.key as Buffer | undefined)?.length,
      32,
      "a SHA-256, whatever the value's length",
    );
  });

  it("reads an expired row as absent before any sweep", async () => {
    const { userId, token, t0 } = newUser();
    const auth = authenticator();
    const { store } = stores;
    await store.associatePending(userId, auth, "rc");
    const tok = token(MINUTE);
    await store.beginVerify(tok, t0, POLICY);
    await store.commitOtp({
      token: tok,
      authenticatorId: auth.id,
      step: 1,
      nowMs: t0,
      bucket: POLICY,
    });
    clock.set(t0);
    assert.equal(await store.isMfaTokenConsumed(tok), true);
    clock.set(t0 + MINUTE);
    assert.equal(await store.isMfaTokenConsumed(tok), false);
    assert.equal(
      (await rows("SELECT 1 FROM consumed_mfa_tokens WHERE user_id = $1", [userId])).length,
      1,
    );
    // Its mark expired, the token would be refused by its own expiry; the store
    // no longer counts it as consumed, and a new commit may reuse the row.
    assert.equal((await store.beginVerify(tok, t0 + MINUTE, POLICY)).kind, "ready");
    assert.equal(await store.rememberOnce("dpop", "x", 100), true);
    clock.advance(100);
    assert.equal(await store.rememberOnce("dpop", "x", 100), true);
  });
});

describe("postgres expiry sweeper", () => {
  it("deletes expired rows in bounded batches, skips locked ones, keeps live ones", async () => {
    const { url, clock, stores } = await freshStores();
    const { store } = stores;
    try {
      const t0 = clock.nowMs();
      // 25 expired single-use values, 5 live ones.
      for (let i = 0; i < 25; i++) await store.rememberOnce("dpop", `old-${i}`, 10);
      clock.advance(1_000);
      for (let i = 0; i < 5; i++) await store.rememberOnce("dpop", `live-${i}`, 10 * MINUTE);
      // An expired failure bucket of one user (a wrong recovery code).
      const { userId, token } = newUser();
      await store.redeemRecoveryCode(token(MINUTE), "x", "y", t0, POLICY);
      // An expired pending enrollment and an active authenticator (durable).
      const pending = newUser();
      await store.associatePending(pending.userId, { id: "p1", encryptedSecret: "s" }, "rc", {
        nowMs: t0,
        ttlMs: MINUTE,
      });
      const active = newUser();
      await store.associatePending(active.userId, { id: "a1", encryptedSecret: "s" }, "rc", {
        nowMs: t0,
        ttlMs: MINUTE,
      });
      const activeToken = active.token(MINUTE);
      await store.beginVerify(activeToken, t0, POLICY);
      await store.commitOtp({
        token: activeToken,
        authenticatorId: "a1",
        step: 1,
        nowMs: t0,
        bucket: POLICY,
      });
      clock.set(t0 + 10 * MINUTE);
      // Another transaction holds one expired row: the sweeper skips it, never waits.
      await withClient(url, async (holder) => {
        await holder.query("BEGIN");
        await holder.query(
          "SELECT 1 FROM single_use_values ORDER BY expires_at LIMIT 1 FOR UPDATE",
        );
        const sweeper = createSweeper(stores.db, {
          clock,
          batchSize: 10,
          maxBatches: 2,
          graceMs: 0,
          intervalMs: 3_600_000,
        });
        try {
          const first = await sweeper.sweepOnce();
          assert.equal(first.single_use_values, 20, "two batches of 10 per round");
          // The wrong recovery code's, and the activation's (its attempt given back).
          assert.equal(first.user_failure_buckets, 2);
          assert.equal(first.authenticators, 1, "the expired pending enrollment only");
          const second = await sweeper.sweepOnce();
          assert.equal(second.single_use_values, 4, "the held row is skipped");
        } finally {
          sweeper.stop();
          await holder.query("ROLLBACK");
        }
      });
      const left = await withClient(
        url,
        async (client) =>
          (await client.query("SELECT count(*)::int AS n FROM single_use_values")).rows[0],
      );
      assert.equal(left?.n, 6, "the five live values and the one that was held");
      assert.deepEqual(
        await withClient(
          url,
          async (client) =>
            (await client.query("SELECT 1 FROM user_failure_buckets WHERE user_id = $1", [userId]))
              .rows,
        ),
        [],
      );
      assert.deepEqual(
        await withClient(
          url,
          async (client) =>
            (await client.query("SELECT user_id, active FROM authenticators ORDER BY active")).rows,
        ),
        [{ user_id: active.userId, active: true }],
      );
      const idle = createSweeper(stores.db, { clock, intervalMs: 3_600_000 });
      assert.deepEqual(Object.keys(await idle.sweepOnce()), [...SWEPT_TABLES]);
      idle.stop();
    } finally {
      await store.close();
    }
  });
});

describe("postgres failures", () => {
  it("an unreachable server gives StoreUnavailableError within the connect timeout", async () => {
    const port = await freePort(); // nothing listens there
    const stores = createPostgresStores(
      settingsFor(`postgres://token_service@127.0.0.1:${port}/none`, { connectTimeoutMs: 500 }),
      { clock: createFakeClock(Date.now()), sweeper: false },
    );
    try {
      const { token, t0 } = newUser();
      const results = await Promise.allSettled([
        stores.store.beginVerify(token(), t0, POLICY),
        stores.store.rememberOnce("dpop", "x", 1000),
        stores.store.ping(),
        stores.sessions.revokeUserFamilies("u", t0),
      ]);
      for (const result of results) {
        assert.equal(result.status, "rejected");
        assert.ok(result.reason instanceof StoreUnavailableError, String(result.reason));
      }
      // An unreachable server does not refuse the start (readiness tells).
      await stores.startupCheck();
    } finally {
      await stores.store.close();
    }
  });

  it("a statement waiting past DATABASE_STATEMENT_TIMEOUT_MS is StoreUnavailableError, and changed nothing", async () => {
    const { url, stores } = await freshStores({ statementTimeoutMs: 300 });
    const { userId, token, t0 } = newUser();
    try {
      // Another session holds the user's lock (as a long step of that user would).
      await withClient(url, async (holder) => {
        await holder.query("SELECT pg_advisory_lock(1953459045, hashtext($1))", [userId]);
        await assert.rejects(stores.store.beginVerify(token(), t0, POLICY), (error: unknown) => {
          assert.ok(error instanceof StoreUnavailableError);
          assert.match(error.message, /57014/); // query_canceled: the statement timeout
          return true;
        });
      });
      // Nothing was taken from the bucket: capacity attempts are all there.
      for (let i = 0; i < POLICY.capacity; i++) {
        assert.equal((await stores.store.beginVerify(token(), t0, POLICY)).kind, "ready");
      }
      assert.equal((await stores.store.beginVerify(token(), t0, POLICY)).kind, "locked");
    } finally {
      await stores.store.close();
    }
  });

  it("a serialization failure is sent once more, then StoreUnavailableError", async () => {
    const url = await server.freshDatabase({ migrateTo: 0 });
    await withClient(url, (client) =>
      client.query(`
        CREATE SEQUENCE attempts;
        CREATE FUNCTION fails_every_other() RETURNS integer LANGUAGE plpgsql AS $$
        DECLARE n bigint := nextval('attempts');
        BEGIN
          IF n % 2 = 1 THEN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END IF;
          RETURN n;
        END $$;
        CREATE FUNCTION always_deadlocks() RETURNS integer LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM nextval('attempts');
          RAISE EXCEPTION 'deadlock' USING ERRCODE = 'deadlock_detected';
        END $$;`),
    );
    const db = createDatabase(settingsFor(url));
    const flaky: Statement = { name: "flaky", text: "SELECT fails_every_other() AS n" };
    const deadlocked: Statement = { name: "deadlocked", text: "SELECT always_deadlocks() AS n" };
    try {
      assert.deepEqual(await db.query(flaky, []), [{ n: 2 }]);
      await assert.rejects(db.query(deadlocked, []), StoreUnavailableError);
      const [after] = await db.query<{ n: string }>(
        { name: "attempts", text: "SELECT last_value AS n FROM attempts" },
        [],
      );
      assert.equal(after?.n, "4", "the deadlocked statement was sent exactly twice");
    } finally {
      await db.close();
    }
  });
});

describe("postgres over TLS (DATABASE_URL's sslmode and sslrootcert)", () => {
  let tlsServer: PostgresServerHandle;
  before(async () => {
    tlsServer = await startPostgresServer({ tls: true });
  });
  after(() => tlsServer?.stop());

  const storesAt = (url: string) =>
    createPostgresStores(settingsFor(url), { clock: createFakeClock(Date.now()), sweeper: false });

  it("verify-full against the server's CA: connected, and the connection is encrypted", async () => {
    const url = new URL(await tlsServer.freshDatabase());
    url.searchParams.set("sslmode", "verify-full");
    url.searchParams.set("sslrootcert", tlsServer.certificateFile ?? "");
    const stores = storesAt(url.toString());
    try {
      await stores.store.ping();
      const rows = await stores.db.query<{ ssl: boolean }>(
        { name: "ssl", text: "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" },
        [],
      );
      assert.deepEqual(rows, [{ ssl: true }]);
    } finally {
      await stores.store.close();
    }
  });

  it("a certificate the given CA did not sign: StoreUnavailableError, never a plain connection", async () => {
    const other = await startPostgresServer({ tls: true });
    try {
      const url = new URL(await tlsServer.freshDatabase({ migrateTo: 0 }));
      url.searchParams.set("sslmode", "verify-full");
      url.searchParams.set("sslrootcert", other.certificateFile ?? "");
      const stores = storesAt(url.toString());
      try {
        await assert.rejects(stores.store.ping(), (error: unknown) => {
          assert.ok(error instanceof StoreUnavailableError);
          assert.match(error.message, /certificate/i);
          return true;
        });
      } finally {
        await stores.store.close();
      }
    } finally {
      await other.stop();
    }
  });
});
