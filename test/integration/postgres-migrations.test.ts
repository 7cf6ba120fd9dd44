/**
 * The PostgreSQL schema's versions as an operator meets them: `token-service
 * db migrate` (the bin, a child process) from an empty schema and from the
 * previous version, again (a no-op), three at once (each migration applied
 * once); the service (src/main.ts) refusing to start on an older or empty
 * schema with one line naming the command, and serving the data the previous
 * version held once migrated; a failed migration changing nothing; the role
 * needing no superuser and no extension.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { sealTotpSecret } from "../../src/mfa/authenticator-secret.js";
import { createSecretBox } from "../../src/mfa/secret-box.js";
import { decodeBase32Secret, generateTotpSecret } from "../../src/mfa/totp.js";
import {
  listMigrations,
  migrate,
  requiredSchemaVersion,
} from "../../src/store/postgres-migrations.js";
import { createPostgresStores } from "../../src/store/postgres-stores.js";
import { createFakeClock } from "../../src/util/clock.js";
import {
  type PostgresServerHandle,
  startPostgresServer,
  withClient,
} from "../support/postgres-server.js";
import { codeNow, fixtureEnv, issueMfaTokenAt, otpForm } from "../support/process-flows.js";
import { freePort } from "../support/redis-server.js";
import { runBin, runMain } from "../support/run-process.js";
import { startServiceProcess } from "../support/service-process.js";
import { TEST_SECRETS_KEY } from "../support/test-service.js";

const REQUIRED = requiredSchemaVersion();
/** Every migration as schema_migrations records it ("1 store", "2 sessions", …). */
const VERSIONS = listMigrations().map((m) => `${m.version} ${m.name}`);
/** The newest migration's file name without `.sql` (e.g. 0004-admin). */
const LAST = listMigrations()
  .slice(-1)
  .map((m) => `${String(m.version).padStart(4, "0")}-${m.name}`)
  .join("");
const refusal = (found: number) =>
  `token-service: start-up failed: the database schema is at version ${found}, this release needs version ${REQUIRED}: run \`token-service db migrate\`\n`;
const ALL = listMigrations()
  .map((m) => `${String(m.version).padStart(4, "0")}-${m.name}`)
  .join(", ");

let postgres: PostgresServerHandle;
before(async () => {
  postgres = await startPostgresServer();
});
after(() => postgres?.stop());

const versionsOf = (url: string) =>
  withClient(url, async (client) => {
    const { rows } = await client.query<{ version: number; name: string }>(
      "SELECT version, name FROM schema_migrations ORDER BY version",
    );
    return rows.map((r) => `${r.version} ${r.name}`);
  });

describe("token-service db migrate", () => {
  test("from an empty schema: the service refuses, migrate applies every version, then nothing", async () => {
    assert.equal(REQUIRED, VERSIONS.length);
    const url = await postgres.freshDatabase({ migrateTo: 0 });
    const extensions = () =>
      withClient(url, async (c) => (await c.query("SELECT extname FROM pg_extension")).rows);
    const before = await extensions();

    const refused = await runMain(fixtureEnv({ DATABASE_URL: url }));
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr, refusal(0));
    assert.doesNotMatch(refused.stdout, /"event":"listening"/);

    const first = await runBin(["db", "migrate"], { DATABASE_URL: url });
    assert.deepEqual([first.code, first.stderr], [0, ""]);
    assert.equal(first.stdout, `schema migrated from version 0 to ${REQUIRED} (${ALL})\n`);
    const again = await runBin(["db", "migrate"], { DATABASE_URL: url });
    assert.deepEqual(
      [again.code, again.stdout, again.stderr],
      [0, `schema is current (version ${REQUIRED})\n`, ""],
    );
    assert.deepEqual(await versionsOf(url), VERSIONS);

    // The schema's owner is the service's role, which needs no extension.
    assert.deepEqual(await extensions(), before);
    if (!postgres.external) {
      const owners = await withClient(url, async (c) => {
        const { rows } = await c.query<{ owner: string; superuser: boolean }>(
          `SELECT DISTINCT tableowner AS owner, r.rolsuper AS superuser
           FROM pg_tables t JOIN pg_roles r ON r.rolname = t.tableowner
           WHERE t.schemaname = current_schema()`,
        );
        return rows;
      });
      assert.deepEqual(owners, [{ owner: "token_service", superuser: false }]);
    }
  });

  test("three runs at once: each migration applied once, every run exits 0", async () => {
    const url = await postgres.freshDatabase({ migrateTo: 0 });
    const runs = await Promise.all(
      [1, 2, 3].map(() => runBin(["db", "migrate"], { DATABASE_URL: url })),
    );
    for (const run of runs) assert.deepEqual([run.code, run.stderr], [0, ""]);
    assert.deepEqual(runs.map((r) => r.stdout).sort(), [
      `schema is current (version ${REQUIRED})\n`,
      `schema is current (version ${REQUIRED})\n`,
      `schema migrated from version 0 to ${REQUIRED} (${ALL})\n`,
    ]);
    assert.deepEqual(await versionsOf(url), VERSIONS);
  });

  test("from the previous version: refused, migrated, and the user enrolled before logs in", async () => {
    const url = await postgres.freshDatabase({ migrateTo: REQUIRED - 1 });
    // A user enrolled and active under the previous version, written by its own
    // functions (0003's ts_associate_pending: no expiry for this pending one).
    const userId = `migrated-${randomUUID()}`;
    const secret = generateTotpSecret();
    const raw = decodeBase32Secret(secret);
    const box = createSecretBox(Buffer.from(TEST_SECRETS_KEY, "base64"), "totp-secret");
    await withClient(url, async (client) => {
      await client.query("SELECT ts_associate_pending($1, $2, $3, $4, $5, NULL)", [
        userId,
        "a1",
        sealTotpSecret(box, userId, "a1", raw),
        "recovery-code-hash",
        Date.now(),
      ]);
      await client.query("UPDATE authenticators SET active = true WHERE user_id = $1", [userId]);
    });

    const refused = await runMain(fixtureEnv({ DATABASE_URL: url }));
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr, refusal(REQUIRED - 1));

    const migrated = await runBin(["db", "migrate"], { DATABASE_URL: url });
    assert.deepEqual(
      [migrated.code, migrated.stdout, migrated.stderr],
      [0, `schema migrated from version ${REQUIRED - 1} to ${REQUIRED} (${LAST})\n`, ""],
    );

    const service = await startServiceProcess(fixtureEnv({ DATABASE_URL: url }));
    try {
      const mfaToken = await issueMfaTokenAt(service.baseUrl, userId);
      const response = await fetch(`${service.baseUrl}/oauth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: otpForm(mfaToken, codeNow(secret)),
      });
      assert.equal(response.status, 200, await response.clone().text());
      assert.equal(((await response.json()) as { token_type?: string }).token_type, "Bearer");
    } finally {
      await service.stop();
    }
  });

  test("a schema newer than this release is served (a rolling upgrade migrates first)", async () => {
    const url = await postgres.freshDatabase();
    await withClient(url, (client) =>
      client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, 'future')", [
        REQUIRED + 1,
      ]),
    );
    const run = await runBin(["db", "migrate"], { DATABASE_URL: url });
    assert.deepEqual(
      [run.code, run.stdout],
      [
        0,
        `schema at version ${REQUIRED + 1}, newer than this release's ${REQUIRED}: nothing to do\n`,
      ],
    );
    const stores = createPostgresStores(
      { url, poolSize: 1, statementTimeoutMs: 2000, connectTimeoutMs: 2000 },
      { clock: createFakeClock(Date.now()), sweeper: false },
    );
    try {
      await stores.startupCheck();
      await stores.store.ping();
    } finally {
      await stores.store.close();
    }
  });

  test("a migration that fails is rolled back whole; the runner reports which", async () => {
    const url = await postgres.freshDatabase({ migrateTo: 0 });
    const [first] = listMigrations();
    assert.ok(first);
    const broken = {
      version: 2,
      name: "broken",
      sql: "CREATE TABLE half_done (x int); SELECT 1/0;",
    };
    await assert.rejects(
      migrate({ url, connectTimeoutMs: 5000 }, { migrations: [first, broken] }),
      /^Error: migration 2 \(broken\) failed: division by zero$/,
    );
    assert.deepEqual(await versionsOf(url), ["1 store"]);
    const [table] = await withClient(
      url,
      async (c) => (await c.query("SELECT to_regclass('half_done') AS t")).rows,
    );
    assert.deepEqual(table, { t: null });
  });

  test("an unreachable server: exit 1, one line; no DATABASE_URL: exit 78", async () => {
    const port = await freePort();
    const unreachable = await runBin(["db", "migrate"], {
      DATABASE_URL: `postgres://token_service@127.0.0.1:${port}/token_service`,
    });
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /^token-service: db migrate: [^\n]*ECONNREFUSED[^\n]*\n$/);
    const missing = await runBin(["db", "migrate"], {});
    assert.deepEqual(
      [missing.code, missing.stderr],
      [78, "token-service: db migrate: DATABASE_URL is not set\n"],
    );
  });
});
