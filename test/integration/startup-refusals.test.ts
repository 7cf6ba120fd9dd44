// Start-up refusals and failures as an operator meets them (docs/configuration.md): the
// service (src/main.ts, as `npm start` runs it) prints one clear message, no
// stack trace, and exits non-zero — 78 for the configuration, 1 otherwise.

import assert from "node:assert/strict";
import { once } from "node:events";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { generateSigningJwk } from "../../src/cli/keys-generate.js";
import { DEMO_CLIENTS_FILE } from "../../src/config.js";
import { freePort } from "../support/redis-server.js";
import { runMain } from "../support/run-process.js";
import {
  FIXTURE_CLIENTS_FILE,
  TEST_INTERNAL_API_KEY,
  TEST_SECRETS_KEY,
} from "../support/test-service.js";

const dir = mkdtempSync(join(tmpdir(), "token-service-refusals-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const keysFile = join(dir, "keys.json");
writeFileSync(
  keysFile,
  JSON.stringify({
    keys: [await generateSigningJwk("ES256", "k1"), await generateSigningJwk("RS256", "k2")],
  }),
);

/** No stack trace: no "    at " frame, no "Error:" dump, no node:internal path. */
function assertNoStackTrace(output: string): void {
  assert.doesNotMatch(output, /^\s+at |node:internal|^\w*Error: /m, output);
}

describe("configuration refusals: exit 78 with one message", () => {
  const SECRETS_KEY_REQUIRED = (variable: string) =>
    `Invalid configuration:\n  - SECRETS_KEY is required with ${variable}: a key generated per run cannot decrypt what earlier runs stored, so every enrolled user would be locked out at the next restart (generate one with \`token-service secrets-key\`)\n`;

  const cases: [string, Record<string, string>, string][] = [
    [
      "REDIS_URL without SECRETS_KEY",
      { REDIS_URL: "redis://127.0.0.1:6379" },
      SECRETS_KEY_REQUIRED("REDIS_URL"),
    ],
    [
      "DATABASE_URL without SECRETS_KEY",
      { DATABASE_URL: "postgres://token_service@127.0.0.1:5432/token_service" },
      SECRETS_KEY_REQUIRED("DATABASE_URL"),
    ],
    [
      "REDIS_CLUSTER_NODES without SECRETS_KEY, NODE_ENV=development",
      { NODE_ENV: "development", REDIS_CLUSTER_NODES: "127.0.0.1:7000,127.0.0.1:7001" },
      SECRETS_KEY_REQUIRED("REDIS_CLUSTER_NODES"),
    ],
  ];
  for (const [name, env, expected] of cases) {
    test(name, async () => {
      const result = await runMain(env);
      assert.equal(result.code, 78);
      assert.equal(result.stderr, expected);
      assert.equal(result.stdout, "");
    });
  }

  test("production on the embedded defaults: every one named in one message", async () => {
    const result = await runMain({ NODE_ENV: "production" });
    assert.equal(result.code, 78);
    assert.equal(
      result.stderr,
      "Invalid configuration:\n  - NODE_ENV=production refuses development defaults: the in-process memory store (set REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES or DATABASE_URL); an ephemeral signing key (set SIGNING_KEYS_FILE; write one with `token-service keys generate --add-to signing-keys.json`); the demo client (recognised by its public secret wherever the file lives; set CLIENTS_FILE to your own clients: `token-service client new --id <id> --add-to clients.json`); a missing SECRETS_KEY (`token-service secrets-key`); a missing INTERNAL_API_KEY (`token-service internal-api-key`); a missing ISSUER_URL (set it to the https:// URL clients reach, e.g. ISSUER_URL=https://auth.example.com/)\n",
    );
    assert.equal(result.stdout, "");
  });

  test("production with the demo clients file copied elsewhere", async () => {
    const copied = join(dir, "my-clients.json");
    copyFileSync(DEMO_CLIENTS_FILE, copied);
    const result = await runMain({
      NODE_ENV: "production",
      ISSUER_URL: "https://auth.example.test/",
      REDIS_URL: "redis://127.0.0.1:6379",
      CLIENTS_FILE: copied,
      SIGNING_KEYS_FILE: keysFile,
      SECRETS_KEY: TEST_SECRETS_KEY,
      INTERNAL_API_KEY: TEST_INTERNAL_API_KEY,
    });
    assert.equal(result.code, 78);
    assert.equal(
      result.stderr,
      "Invalid configuration:\n  - NODE_ENV=production refuses development defaults: the demo client (recognised by its public secret wherever the file lives; set CLIENTS_FILE to your own clients: `token-service client new --id <id> --add-to clients.json`)\n",
    );
  });

  test("production with a plain-http issuer on a network host (SPEC §6)", async () => {
    const result = await runMain({
      NODE_ENV: "production",
      ISSUER_URL: "http://auth.example.test/",
      REDIS_URL: "redis://127.0.0.1:6379",
      CLIENTS_FILE: FIXTURE_CLIENTS_FILE,
      SIGNING_KEYS_FILE: keysFile,
      SECRETS_KEY: TEST_SECRETS_KEY,
      INTERNAL_API_KEY: TEST_INTERNAL_API_KEY,
    });
    assert.equal(result.code, 78);
    assert.equal(
      result.stderr,
      'Invalid configuration:\n  - NODE_ENV=production refuses development defaults: a plain-http ISSUER_URL ("http://auth.example.test/": http:// only for a loopback host, 127.0.0.0/8, [::1] or localhost; use https://)\n',
    );
    assert.equal(result.stdout, "");
  });
});

describe("start-up failures: exit 1 with one line", () => {
  let holder: Server;
  let heldPort: number;
  before(async () => {
    holder = createServer();
    holder.listen(0, "127.0.0.1");
    await once(holder, "listening");
    heldPort = (holder.address() as { port: number }).port;
  });
  after(() => holder.close());

  const serviceEnv = () => ({
    PORT: String(heldPort),
    HOST: "127.0.0.1",
    CLIENTS_FILE: FIXTURE_CLIENTS_FILE,
    LOG_LEVEL: "error",
  });

  test("the port is already in use", async () => {
    const result = await runMain(serviceEnv());
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `token-service: cannot listen on 127.0.0.1:${heldPort}: the address is already in use (EADDRINUSE): stop the process listening there or set PORT\n`,
    );
    assertNoStackTrace(result.stdout);
  });

  test("the port is already in use, WORKERS=2: the primary prints it once and stops", async () => {
    const result = await runMain({
      ...serviceEnv(),
      WORKERS: "2",
      // Never reached: listening fails first (the store connects lazily).
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
      SECRETS_KEY: TEST_SECRETS_KEY,
      INTERNAL_API_KEY: TEST_INTERNAL_API_KEY,
      SIGNING_KEYS_FILE: keysFile,
    });
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `token-service: cannot listen on 127.0.0.1:${heldPort}: the address is already in use (EADDRINUSE): stop the process listening there or set PORT\n`,
    );
    assertNoStackTrace(result.stdout);
  });

  test("HOST is not an address of this machine", async () => {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): never assigned to a host; binding sends nothing.
    const port = await freePort();
    const result = await runMain({ ...serviceEnv(), HOST: "192.0.2.1", PORT: String(port) });
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `token-service: cannot listen on 192.0.2.1:${port}: no such address on this machine (EADDRNOTAVAIL): check HOST\n`,
    );
    assertNoStackTrace(result.stdout);
  });
});
