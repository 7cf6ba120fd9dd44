// The store's configuration (docs/configuration.md "Store", "Redis Sentinel"): one store at
// a time with every conflict and mistake reported at once, REDIS_SENTINELS with its name,
// passwords and TLS, and the ioredis options they become.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { summarize } from "../../src/cli/config-check.js";
import { ConfigError, DEMO_CLIENTS_FILE, loadConfig } from "../../src/config.js";
import { sentinelClientOptions } from "../../src/store/redis-sentinel-client.js";

const SECRETS_KEY = Buffer.alloc(32, 1).toString("base64");
const CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const FILES: Record<string, string> = {
  [DEMO_CLIENTS_FILE]: readFileSync(DEMO_CLIENTS_FILE, "utf8"),
  "/etc/token/redis-ca.pem": CA_PEM,
  "/etc/token/not-a-ca.txt": "hello",
};

function load(env: Record<string, string>) {
  return loadConfig(
    { SECRETS_KEY, ...env },
    {
      readFile: (path) => {
        const content = FILES[path];
        if (content === undefined) throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
        return content;
      },
    },
  );
}

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    load(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  return assert.fail("the configuration was accepted");
}

const SENTINELS = { REDIS_SENTINELS: "10.0.0.1:26379, s2.internal:26380,[::1]:26381" };

describe("REDIS_SENTINELS", () => {
  test("the sentinels, the name and the defaults", () => {
    assert.deepEqual(load({ ...SENTINELS, REDIS_SENTINEL_NAME: "tokens" }).store, {
      kind: "redis-sentinel",
      sentinels: [
        { host: "10.0.0.1", port: 26379 },
        { host: "s2.internal", port: 26380 },
        { host: "::1", port: 26381 },
      ],
      name: "tokens",
      sentinelUsername: undefined,
      sentinelPassword: undefined,
      username: undefined,
      password: undefined,
      tls: false,
      sentinelTls: false,
      tlsCa: undefined,
    });
  });

  test("passwords and TLS become ioredis's Sentinel options", () => {
    const config = load({
      ...SENTINELS,
      REDIS_SENTINEL_NAME: "tokens",
      REDIS_SENTINEL_USERNAME: "sentinel-user",
      REDIS_SENTINEL_PASSWORD: "sentinel-pass",
      REDIS_USERNAME: "token-service",
      REDIS_PASSWORD: "redis-pass",
      REDIS_TLS: "true",
      REDIS_SENTINEL_TLS: "1",
      REDIS_TLS_CA_FILE: "/etc/token/redis-ca.pem",
    });
    assert.equal(config.store.kind, "redis-sentinel");
    if (config.store.kind !== "redis-sentinel") return;
    const options = sentinelClientOptions(config.store);
    assert.deepEqual(
      {
        name: options.name,
        role: options.role,
        sentinelUsername: options.sentinelUsername,
        sentinelPassword: options.sentinelPassword,
        username: options.username,
        password: options.password,
        enableTLSForSentinelMode: options.enableTLSForSentinelMode,
        tls: options.tls,
        sentinelTLS: options.sentinelTLS,
        failoverDetector: options.failoverDetector,
      },
      {
        name: "tokens",
        role: "master",
        sentinelUsername: "sentinel-user",
        sentinelPassword: "sentinel-pass",
        username: "token-service",
        password: "redis-pass",
        enableTLSForSentinelMode: true,
        tls: { ca: CA_PEM },
        sentinelTLS: { ca: CA_PEM },
        failoverDetector: true,
      },
    );
    // A demoted master makes the client reconnect (to whatever the Sentinels name now).
    assert.equal(options.reconnectOnError?.(new Error("READONLY You can't write")), true);
    assert.equal(options.reconnectOnError?.(new Error("WRONGTYPE")), false);
  });

  test("config check names the group and the Sentinels, never a password", () => {
    const summary = summarize(
      load({
        ...SENTINELS,
        REDIS_SENTINEL_NAME: "tokens",
        REDIS_SENTINEL_PASSWORD: "sentinel-pass",
        REDIS_PASSWORD: "redis-pass",
      }),
      undefined,
    );
    assert.match(
      summary,
      /^configuration OK: store redis-sentinel \(tokens via 10\.0\.0\.1:26379,s2\.internal:26380,\[::1\]:26381\), /,
    );
    assert.doesNotMatch(summary, /pass/);
  });

  test("without TLS no TLS option is passed", () => {
    const config = load({ ...SENTINELS, REDIS_SENTINEL_NAME: "tokens" });
    if (config.store.kind !== "redis-sentinel") return assert.fail(config.store.kind);
    const options = sentinelClientOptions(config.store);
    assert.deepEqual(
      [options.tls, options.sentinelTLS, options.enableTLSForSentinelMode],
      [undefined, undefined, false],
    );
  });

  test("every mistake is reported at once", () => {
    assert.deepEqual(
      problemsOf({
        REDIS_SENTINELS: "a:26379,b,c:99999",
        REDIS_TLS: "yes",
        REDIS_TLS_CA_FILE: "/etc/token/not-a-ca.txt",
      }),
      [
        "REDIS_SENTINEL_NAME is required with REDIS_SENTINELS: the master group name the Sentinels monitor (`sentinel monitor <name> …`)",
        "REDIS_TLS_CA_FILE (/etc/token/not-a-ca.txt) holds no PEM certificate",
        'REDIS_TLS must be true or false (got "yes")',
        "REDIS_TLS_CA_FILE is set but neither REDIS_TLS nor REDIS_SENTINEL_TLS is true",
        'REDIS_SENTINELS entry "b" is not host:port',
        'REDIS_SENTINELS entry "c:99999" is not host:port',
      ],
    );
  });

  test("a missing CA file is named", () => {
    assert.deepEqual(
      problemsOf({
        ...SENTINELS,
        REDIS_SENTINEL_NAME: "tokens",
        REDIS_TLS: "true",
        REDIS_TLS_CA_FILE: "/etc/token/missing.pem",
      }),
      ["REDIS_TLS_CA_FILE (/etc/token/missing.pem) cannot be read"],
    );
  });

  test("Sentinel-only variables without REDIS_SENTINELS are refused", () => {
    assert.deepEqual(
      problemsOf({
        REDIS_URL: "redis://a:6379",
        REDIS_SENTINEL_NAME: "tokens",
        REDIS_PASSWORD: "x",
      }),
      [
        "REDIS_SENTINEL_NAME, REDIS_PASSWORD are only used with REDIS_SENTINELS (REDIS_URL carries its own credentials and rediss://)",
      ],
    );
  });
});

describe("one store at a time", () => {
  const cases: [Record<string, string>, string][] = [
    [
      { REDIS_URL: "redis://a:6379", REDIS_SENTINELS: "s:26379", REDIS_SENTINEL_NAME: "t" },
      "set REDIS_URL or REDIS_SENTINELS, not both: one store at a time",
    ],
    [
      { REDIS_CLUSTER_NODES: "c:7000", REDIS_SENTINELS: "s:26379", REDIS_SENTINEL_NAME: "t" },
      "set REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both: one store at a time",
    ],
    [
      {
        DATABASE_URL: "postgres://db/t",
        REDIS_URL: "redis://a:6379",
        REDIS_CLUSTER_NODES: "c:7000",
        REDIS_SENTINELS: "s:26379",
        REDIS_SENTINEL_NAME: "t",
      },
      "set one of DATABASE_URL, REDIS_URL, REDIS_CLUSTER_NODES, REDIS_SENTINELS, not several: one store at a time",
    ],
  ];
  for (const [env, message] of cases) {
    test(Object.keys(env).join(" + "), () => {
      assert.deepEqual(problemsOf(env), [message]);
    });
  }

  test("a conflict does not hide the other variables' mistakes", () => {
    assert.deepEqual(problemsOf({ REDIS_URL: "http://a", REDIS_SENTINELS: "s" }), [
      "set REDIS_URL or REDIS_SENTINELS, not both: one store at a time",
      "REDIS_URL must start with redis:// or rediss://",
      "REDIS_SENTINEL_NAME is required with REDIS_SENTINELS: the master group name the Sentinels monitor (`sentinel monitor <name> …`)",
      'REDIS_SENTINELS entry "s" is not host:port',
    ]);
  });

  test("a Sentinel store needs SECRETS_KEY like every persistent store", () => {
    const problems = loadConfigProblems({ ...SENTINELS, REDIS_SENTINEL_NAME: "tokens" });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? "", /^SECRETS_KEY is required with REDIS_SENTINELS: /);
  });
});

function loadConfigProblems(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env, { readFile: (path) => FILES[path] ?? "" });
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  return assert.fail("the configuration was accepted");
}
