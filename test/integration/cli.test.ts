// The `token-service` command as an operator runs it (bin/token-service.js in
// a child process): `config check` exits and prints as the service does,
// commands work from any folder, and a bad TOTP secret is one line.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { baseEnv, REPO, runBin, runMain, runProcess } from "../support/run-process.js";

const dir = mkdtempSync(join(tmpdir(), "token-service-cli-it-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A full production configuration made with the CLI itself. */
let production: Record<string, string>;
before(async () => {
  const keysFile = join(dir, "keys.json");
  const clientsFile = join(dir, "clients.json");
  // ES256 signs access tokens; RS256 signs the client's ID tokens (its default algorithm).
  for (const [alg, kid] of [
    ["ES256", "k1"],
    ["RS256", "k2"],
  ] as const) {
    const added = await runBin([
      "keys",
      "generate",
      "--alg",
      alg,
      "--kid",
      kid,
      "--add-to",
      keysFile,
    ]);
    assert.equal(added.code, 0, added.stderr);
  }
  const made = await Promise.all([
    runBin(["client", "new", "--id", "web-app", "--add-to", clientsFile]),
    runBin(["secrets-key"]),
    runBin(["internal-api-key"]),
  ]);
  for (const result of made) assert.equal(result.code, 0, result.stderr);
  production = {
    NODE_ENV: "production",
    // Loopback plain http is the one http issuer production accepts (SPEC §6).
    ISSUER_URL: "http://localhost:8080/",
    REDIS_URL: "redis://:hunter2-password@127.0.0.1:6379",
    SIGNING_KEYS_FILE: keysFile,
    CLIENTS_FILE: clientsFile,
    SECRETS_KEY: made[1]?.stdout.trim() ?? "",
    INTERNAL_API_KEY: made[2]?.stdout.trim() ?? "",
  };
});

describe("config check", () => {
  test("a good configuration: exit 0, one summary line, no secret", async () => {
    const result = await runBin(["config", "check"], production);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    assert.equal(
      result.stdout,
      'configuration OK: store redis (redis://127.0.0.1:6379), 2 signing keys (ES256 "k1" signs), 1 client, issuer http://localhost:8080/, listening on 127.0.0.1:8080, 1 worker, NODE_ENV=production\n',
    );
    for (const secret of ["hunter2", production.SECRETS_KEY, production.INTERNAL_API_KEY]) {
      assert.ok(!result.stdout.includes(secret ?? ""), "a secret was printed");
    }
  });

  test("on PostgreSQL: the store without its password or TLS file paths", async () => {
    const { REDIS_URL: _redis, ...env } = production;
    const result = await runBin(["config", "check"], {
      ...env,
      DATABASE_URL:
        "postgres://token_service:hunter2-password@db.internal:5432/token_service?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem",
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^configuration OK: store postgres \(postgres:\/\/db\.internal:5432\/token_service\), 2 signing keys/,
    );
    assert.ok(!result.stdout.includes("hunter2"), "the password was printed");
    assert.ok(!result.stdout.includes("db-ca.pem"));
  });

  test("the embedded default passes and names its development defaults", async () => {
    const result = await runBin(["config", "check"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^configuration OK: store memory \(in-process\), .*; development defaults in use: memory store, ephemeral signing key, demo client, generated INTERNAL_API_KEY, per-run SECRETS_KEY \(refused with NODE_ENV=production\)\n$/,
    );
  });

  const broken: [string, Record<string, string>][] = [
    ["production on the embedded defaults", { NODE_ENV: "production" }],
    ["a persistent store without SECRETS_KEY", { REDIS_URL: "redis://127.0.0.1:6379" }],
    ["several problems at once", { PORT: "http", LOG_LEVEL: "loud", WORKERS: "0" }],
  ];
  for (const [name, env] of broken) {
    test(`${name}: exit 78 and byte for byte what the service prints`, async () => {
      const [check, service] = await Promise.all([runBin(["config", "check"], env), runMain(env)]);
      assert.equal(check.code, 78);
      assert.equal(service.code, 78);
      assert.equal(check.stdout, "");
      assert.match(check.stderr, /^Invalid configuration:\n( {2}- [^\n]+\n)+$/);
      assert.equal(check.stderr, service.stderr);
    });
  }

  test("the REDIS_URL refusal reads as documented", async () => {
    const result = await runBin(["config", "check"], { REDIS_URL: "redis://127.0.0.1:6379" });
    assert.equal(
      result.stderr,
      "Invalid configuration:\n  - SECRETS_KEY is required with REDIS_URL: a key generated per run cannot decrypt what earlier runs stored, so every enrolled user would be locked out at the next restart (generate one with `token-service secrets-key`)\n",
    );
  });
});

describe("from any folder", () => {
  test("relative paths are the caller's; the JWKS is made where the command runs", async () => {
    const elsewhere = mkdtempSync(join(dir, "elsewhere-"));
    const result = await runBin(["keys", "generate", "--add-to", "k.json"], {}, elsewhere);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(existsSync(join(elsewhere, "k.json")));
    const check = await runBin(["config", "check"], { SIGNING_KEYS_FILE: "k.json" }, elsewhere);
    assert.equal(check.code, 0, check.stderr);
  });

  test("npm install -g <repo> puts token-service on the PATH, runnable from any folder", async () => {
    // A private prefix: the machine's global packages stay as they are. A folder
    // installs as a link, so nothing is fetched.
    const prefix = join(dir, "global");
    const install = await runProcess(
      "npm",
      ["install", "-g", "--prefix", prefix, "--no-audit", "--no-fund", REPO],
      { env: baseEnv(), cwd: dir },
    );
    assert.equal(install.code, 0, install.stderr);
    const result = await runProcess(join(prefix, "bin", "token-service"), ["internal-api-key"], {
      env: baseEnv(),
      cwd: tmpdir(),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^[A-Za-z0-9_-]{43}\n$/);
  });

  test("npx --no token-service inside the repository (a sub-folder too) runs this bin", async () => {
    // --no: never fetch a registry package of that name (one exists, and it is not this).
    const result = await runProcess("npx", ["--no", "token-service", "secrets-key"], {
      cwd: join(REPO, "test"),
      env: baseEnv(),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(Buffer.from(result.stdout.trim(), "base64").length, 32);
  });
});

describe("totp", () => {
  test("a bad secret: one line, non-zero, through the bin and through npm run totp", async () => {
    const results = await Promise.all([
      runBin(["totp", "definitely not base32!"]),
      runProcess("npm", ["run", "-s", "totp", "--", "definitely-not-base32!"], { env: baseEnv() }),
    ]);
    for (const result of results) {
      assert.equal(result.code, 65, result.stderr);
      assert.equal(
        result.stderr,
        "token-service: totp: the secret is not base32 (letters A-Z and digits 2-7, as Associate returns it)\n",
      );
      assert.equal(result.stdout, "");
    }
  });

  test("a good secret prints six digits", async () => {
    const result = await runBin(["totp", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^\d{6}\n$/);
  });
});
