// Configuration (docs/configuration.md): defaults, validation of every variable, all problems reported
// at once in one ConfigError, and production refusing the development defaults.

import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { type Config, ConfigError, DEMO_CLIENTS_FILE, loadConfig } from "../../src/config.js";

type Env = Record<string, string>;

const CLIENTS_JSON = JSON.stringify({
  clients: [
    {
      client_id: "web-app",
      client_secret: "web-app-secret",
      grant_types: ["http://auth0.com/oauth/grant-type/mfa-otp"],
    },
  ],
});

function es256Jwk(kid: string | undefined, alg = "ES256", curve = "P-256") {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: curve });
  const jwk = privateKey.export({ format: "jwk" });
  return { ...jwk, ...(kid === undefined ? {} : { kid }), alg };
}

function rs256Jwk(kid: string) {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { ...privateKey.export({ format: "jwk" }), kid, alg: "RS256" };
}
const RS256_KEY = rs256Jwk("key-2");
const SECRETS_KEY = Buffer.alloc(32, 1).toString("base64");

const PRODUCTION_ENV: Env = {
  NODE_ENV: "production",
  ISSUER_URL: "https://auth.example.test/",
  REDIS_URL: "redis://redis.internal:6379",
  CLIENTS_FILE: "/etc/token/clients.json",
  SIGNING_KEYS_FILE: "/etc/token/keys.json",
  SECRETS_KEY,
  INTERNAL_API_KEY: "internal-api-key-0123456789-abcdef",
};

/** loadConfig with an in-memory file system (the demo clients file included). */
function load(env: Env, files: Record<string, string> = {}): Config {
  const all: Record<string, string> = {
    [DEMO_CLIENTS_FILE]: readFileSync(DEMO_CLIENTS_FILE, "utf8"),
    "/etc/token/clients.json": CLIENTS_JSON,
    "/etc/token/keys.json": JSON.stringify({ keys: [es256Jwk("key-1"), RS256_KEY] }),
    ...files,
  };
  return loadConfig(env, {
    readFile: (path) => {
      const content = all[path];
      if (content === undefined) throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
      return content;
    },
  });
}

/** The problems of a configuration that must be refused. */
function problemsOf(env: Env, files: Record<string, string> = {}): readonly string[] {
  try {
    load(env, files);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    for (const problem of error.problems) assert.ok(error.message.includes(problem));
    return error.problems;
  }
  return assert.fail("the configuration was accepted");
}

/** Exactly one problem, matching `pattern`. */
function assertOneProblem(env: Env, pattern: RegExp, files: Record<string, string> = {}): void {
  const problems = problemsOf(env, files);
  assert.equal(problems.length, 1, problems.join("\n"));
  assert.match(problems[0] ?? "", pattern);
}

describe("defaults", () => {
  test("with nothing set: the documented defaults and the embedded dev defaults", () => {
    const config = load({});
    assert.deepEqual(
      {
        port: config.port,
        host: config.host,
        issuerUrl: config.issuerUrl,
        store: config.store,
        mfaTokenTtlSeconds: config.mfaTokenTtlSeconds,
        accessTokenTtlSeconds: config.accessTokenTtlSeconds,
        mfaApiTokenTtlSeconds: config.mfaApiTokenTtlSeconds,
        pendingEnrollmentTtlSeconds: config.pendingEnrollmentTtlSeconds,
        maxSessionsPerUser: config.maxSessionsPerUser,
        otpMaxFailures: config.otpMaxFailures,
        otpFailureRefillSeconds: config.otpFailureRefillSeconds,
        logLevel: config.logLevel,
        workers: config.workers,
        clients: [...config.clients.keys()],
        signingKeys: config.signingKeys.map((k) => k.alg),
        secretsKeyBytes: config.secretsKey.length,
        devDefaults: config.devDefaults,
      },
      {
        port: 8080,
        host: "127.0.0.1",
        issuerUrl: "http://localhost:8080/",
        store: { kind: "memory" },
        mfaTokenTtlSeconds: 600,
        accessTokenTtlSeconds: 86_400,
        mfaApiTokenTtlSeconds: 300,
        pendingEnrollmentTtlSeconds: 900,
        maxSessionsPerUser: 100,
        otpMaxFailures: 10,
        otpFailureRefillSeconds: 360,
        logLevel: "info",
        workers: 1,
        clients: ["demo-app"],
        signingKeys: ["ES256", "RS256"],
        secretsKeyBytes: 32,
        devDefaults: {
          memoryStore: true,
          ephemeralSigningKey: true,
          demoClients: true,
          generatedInternalApiKey: true,
          ephemeralSecretsKey: true,
        },
      },
    );
    assert.ok(config.internalApiKey.length >= 16);
    assert.ok(Object.isFrozen(config));
  });

  test("ISSUER_URL follows PORT and always ends with a slash", () => {
    assert.equal(load({ PORT: "9000" }).issuerUrl, "http://localhost:9000/");
    assert.equal(
      load({ ISSUER_URL: "https://auth.example.com/tenant" }).issuerUrl,
      "https://auth.example.com/tenant/",
    );
  });

  test("explicit values are used", () => {
    const config = load({
      PORT: "0",
      HOST: "0.0.0.0",
      MFA_TOKEN_TTL_SECONDS: "60",
      ACCESS_TOKEN_TTL_SECONDS: "300",
      OTP_MAX_FAILURES: "3",
      OTP_FAILURE_REFILL_SECONDS: "30",
      LOG_LEVEL: "debug",
      REDIS_CLUSTER_NODES: "10.0.0.1:7000, 10.0.0.2:7001",
      SECRETS_KEY,
    });
    assert.deepEqual(
      [
        config.port,
        config.host,
        config.mfaTokenTtlSeconds,
        config.accessTokenTtlSeconds,
        config.otpMaxFailures,
        config.otpFailureRefillSeconds,
        config.logLevel,
        config.store,
      ],
      [
        0,
        "0.0.0.0",
        60,
        300,
        3,
        30,
        "debug",
        {
          kind: "redis-cluster",
          nodes: [
            { host: "10.0.0.1", port: 7000 },
            { host: "10.0.0.2", port: 7001 },
          ],
        },
      ],
    );
  });
});

describe("every invalid value is reported", () => {
  const cases: [Env, RegExp][] = [
    [{ PORT: "abc" }, /^PORT .*"abc"/],
    [{ PORT: "65536" }, /^PORT .*"65536"/],
    [{ PORT: "-1" }, /^PORT .*"-1"/],
    [{ PORT: "80.5" }, /^PORT .*"80.5"/],
    [{ MFA_TOKEN_TTL_SECONDS: "0" }, /^MFA_TOKEN_TTL_SECONDS .*"0"/],
    [{ ACCESS_TOKEN_TTL_SECONDS: "1d" }, /^ACCESS_TOKEN_TTL_SECONDS .*"1d"/],
    [{ MFA_API_TOKEN_TTL_SECONDS: "0" }, /^MFA_API_TOKEN_TTL_SECONDS .*"0"/],
    [{ PENDING_ENROLLMENT_TTL_SECONDS: "30" }, /^PENDING_ENROLLMENT_TTL_SECONDS .*"30"/],
    [{ MAX_SESSIONS_PER_USER: "0" }, /^MAX_SESSIONS_PER_USER .*"0"/],
    [{ OTP_MAX_FAILURES: "0" }, /^OTP_MAX_FAILURES .*"0"/],
    [{ OTP_FAILURE_REFILL_SECONDS: "6m" }, /^OTP_FAILURE_REFILL_SECONDS .*"6m"/],
    [{ ISSUER_URL: "ftp://example.com/" }, /^ISSUER_URL .*"ftp:\/\/example\.com\/"/],
    [{ ISSUER_URL: "https://example.com/?a=1" }, /^ISSUER_URL /],
    [{ ISSUER_URL: "not a url" }, /^ISSUER_URL .*"not a url"/],
    // A persistent store needs SECRETS_KEY (its own refusal, below).
    [{ REDIS_URL: "http://localhost:6379", SECRETS_KEY }, /^REDIS_URL /],
    [{ REDIS_CLUSTER_NODES: "a:7000,b", SECRETS_KEY }, /^REDIS_CLUSTER_NODES .*"b"/],
    [
      { REDIS_URL: "redis://a:6379", REDIS_CLUSTER_NODES: "b:7000", SECRETS_KEY },
      /REDIS_URL.*REDIS_CLUSTER/,
    ],
    [{ DATABASE_URL: "mysql://db/token", SECRETS_KEY }, /^DATABASE_URL must start with /],
    [
      { DATABASE_URL: "postgres://db/token", REDIS_URL: "redis://a:6379", SECRETS_KEY },
      /^set DATABASE_URL or REDIS_URL, not both: one store at a time$/,
    ],
    [
      { DATABASE_URL: "postgres://db/token", REDIS_CLUSTER_NODES: "b:7000", SECRETS_KEY },
      /^set DATABASE_URL or REDIS_CLUSTER_NODES, not both/,
    ],
    [
      {
        DATABASE_URL: "postgres://db/token",
        REDIS_SENTINELS: "s:26379",
        REDIS_SENTINEL_NAME: "tokens",
        SECRETS_KEY,
      },
      /^set DATABASE_URL or REDIS_SENTINELS, not both/,
    ],
    [
      { DATABASE_URL: "postgres://db/t", DATABASE_POOL_SIZE: "0", SECRETS_KEY },
      /^DATABASE_POOL_SIZE /,
    ],
    [
      { DATABASE_URL: "postgres://db/t", DATABASE_STATEMENT_TIMEOUT_MS: "2s", SECRETS_KEY },
      /^DATABASE_STATEMENT_TIMEOUT_MS .*"2s"/,
    ],
    [
      { DATABASE_URL: "postgres://db/t", DATABASE_CONNECT_TIMEOUT_MS: "10", SECRETS_KEY },
      /^DATABASE_CONNECT_TIMEOUT_MS .*"10"/,
    ],
    [{ SECRETS_KEY: Buffer.alloc(16).toString("base64") }, /^SECRETS_KEY /],
    [{ SECRETS_KEY: "not base64 at all!" }, /^SECRETS_KEY /],
    [{ INTERNAL_API_KEY: "short" }, /^INTERNAL_API_KEY /],
    [{ LOG_LEVEL: "verbose" }, /^LOG_LEVEL /],
    [{ CLIENTS_FILE: "/nowhere.json" }, /^CLIENTS_FILE \(\/nowhere\.json\) cannot be read/],
    [{ SIGNING_KEYS_FILE: "/nowhere.json" }, /^SIGNING_KEYS_FILE \(\/nowhere\.json\) cannot/],
  ];
  for (const [env, pattern] of cases) {
    test(JSON.stringify(env), () => assertOneProblem(env, pattern));
  }

  test("a file that is not JSON", () => {
    assertOneProblem({ CLIENTS_FILE: "/c.json" }, /^CLIENTS_FILE \(\/c\.json\) is not valid JSON/, {
      "/c.json": "{clients:",
    });
  });
});

test("several problems are reported at once, in one ConfigError", () => {
  const problems = problemsOf({
    PORT: "http",
    LOG_LEVEL: "loud",
    SECRETS_KEY: "c2hvcnQ=",
    OTP_MAX_FAILURES: "many",
    CLIENTS_FILE: "/missing.json",
  });
  assert.equal(problems.length, 5, problems.join("\n"));
  for (const name of ["PORT", "LOG_LEVEL", "SECRETS_KEY", "OTP_MAX_FAILURES", "CLIENTS_FILE"]) {
    assert.equal(problems.filter((p) => p.startsWith(name)).length, 1, name);
  }
});

describe("NODE_ENV=production", () => {
  test("refuses every development default in one message", () => {
    const problems = problemsOf({ NODE_ENV: "production" });
    assert.equal(problems.length, 1, problems.join("\n"));
    const [message = ""] = problems;
    assert.match(message, /^NODE_ENV=production refuses development defaults: /);
    for (const fix of [
      "REDIS_URL",
      "SIGNING_KEYS_FILE",
      "CLIENTS_FILE",
      "SECRETS_KEY",
      "INTERNAL_API_KEY",
    ]) {
      assert.ok(message.includes(fix), `${fix} missing from: ${message}`);
    }
  });

  test("names only the defaults still in use", () => {
    const { SECRETS_KEY: _secrets, ...withoutSecretsKey } = PRODUCTION_ENV;
    assertOneProblem(
      withoutSecretsKey,
      /^NODE_ENV=production refuses development defaults: a missing SECRETS_KEY \(`token-service secrets-key`\)$/,
    );
  });

  test("accepts DATABASE_URL as the persistent store, with the DATABASE_* defaults", () => {
    const { REDIS_URL: _redis, ...env } = PRODUCTION_ENV;
    const config = load({
      ...env,
      DATABASE_URL: "postgresql://token_service@db.internal/token_service?sslmode=verify-full",
    });
    assert.deepEqual(config.store, {
      kind: "postgres",
      url: "postgresql://token_service@db.internal/token_service?sslmode=verify-full",
      poolSize: 10,
      statementTimeoutMs: 2000,
      connectTimeoutMs: 2000,
    });
    assert.equal(config.devDefaults.memoryStore, false);
    const tuned = load({
      ...env,
      DATABASE_URL: "postgres://db.internal/token_service",
      DATABASE_POOL_SIZE: "25",
      DATABASE_STATEMENT_TIMEOUT_MS: "500",
      DATABASE_CONNECT_TIMEOUT_MS: "1500",
    });
    assert.deepEqual(
      tuned.store.kind === "postgres" && [
        tuned.store.poolSize,
        tuned.store.statementTimeoutMs,
        tuned.store.connectTimeoutMs,
      ],
      [25, 500, 1500],
    );
  });

  test("starts with everything set", () => {
    const config = load(PRODUCTION_ENV);
    assert.deepEqual(config.store, { kind: "redis", url: "redis://redis.internal:6379" });
    assert.deepEqual(
      config.signingKeys.map((k) => [k.kid, k.alg]),
      [
        ["key-1", "ES256"],
        ["key-2", "RS256"],
      ],
    );
    assert.deepEqual([...config.clients.keys()], ["web-app"]);
    assert.equal(config.internalApiKey, "internal-api-key-0123456789-abcdef");
    assert.deepEqual(config.secretsKey, Buffer.alloc(32, 1));
    assert.deepEqual(Object.values(config.devDefaults), [false, false, false, false, false]);
  });

  test("waits 5 s after SIGTERM before it stops accepting (SHUTDOWN_DELAY_SECONDS)", () => {
    assert.deepEqual(load(PRODUCTION_ENV).shutdown, { delaySeconds: 5, timeoutSeconds: 10 });
    const now = load({ ...PRODUCTION_ENV, SHUTDOWN_DELAY_SECONDS: "0" });
    assert.deepEqual(now.shutdown, { delaySeconds: 0, timeoutSeconds: 10 });
  });
});

describe("SIGNING_KEYS_FILE", () => {
  const keysProblems = (jwks: unknown) =>
    problemsOf({ SIGNING_KEYS_FILE: "/keys.json" }, { "/keys.json": JSON.stringify(jwks) });

  test("the first key signs, all are loaded", () => {
    const config = load(
      { SIGNING_KEYS_FILE: "/keys.json" },
      { "/keys.json": JSON.stringify({ keys: [es256Jwk("new"), es256Jwk("old"), RS256_KEY] }) },
    );
    assert.deepEqual(
      config.signingKeys.map((k) => k.kid),
      ["new", "old", "key-2"],
    );
    assert.equal(config.devDefaults.ephemeralSigningKey, false);
  });

  test("every bad key is reported, by index", () => {
    const { d: _d, ...publicOnly } = es256Jwk("public");
    const problems = keysProblems({
      keys: [
        es256Jwk(undefined),
        es256Jwk("hs", "HS256"),
        es256Jwk("p384", "ES256", "P-384"),
        publicOnly,
        { ...es256Jwk("bad-point"), x: "AAAA" },
        "not a key",
      ],
    });
    assert.deepEqual(problems, [
      'SIGNING_KEYS_FILE keys[0]: "kid" is required',
      'SIGNING_KEYS_FILE keys[1]: "alg" must be one of ES256, EdDSA, Ed25519, RS256, PS256',
      "SIGNING_KEYS_FILE keys[2]: alg ES256 needs kty EC and crv P-256",
      'SIGNING_KEYS_FILE keys[3]: not a private key (no "d")',
      "SIGNING_KEYS_FILE keys[4]: not a valid ES256 private key",
      "SIGNING_KEYS_FILE keys[5]: not a JSON object",
    ]);
  });

  test("a private part that does not belong to the public part is refused", () => {
    // Node imports such a JWK and publishes its x/y, so every token would fail verification.
    const key = es256Jwk("mixed");
    const { d: foreignD } = es256Jwk("other");
    const problems = keysProblems({ keys: [{ ...key, d: foreignD }] });
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.match(problems[0] ?? "", /^SIGNING_KEYS_FILE keys\[0\]: /);
  });

  test("an EdDSA alg on an EC key is refused", () => {
    assert.deepEqual(keysProblems({ keys: [es256Jwk("k", "EdDSA")] }), [
      "SIGNING_KEYS_FILE keys[0]: alg EdDSA needs kty OKP and crv Ed25519",
    ]);
  });

  test("a client's ID-token algorithm without a key is refused with one message", () => {
    // The demo client asks for RS256 (the default); the file has ES256 keys only.
    assert.deepEqual(keysProblems({ keys: [es256Jwk("only")] }), [
      'CLIENTS_FILE: client "demo-app" has id_token_signed_response_alg RS256, but no signing key has that alg (add one with `token-service keys generate --alg RS256 --add-to <SIGNING_KEYS_FILE>`, or set the client\'s id_token_signed_response_alg to one of ES256)',
    ]);
    const config = load(
      { SIGNING_KEYS_FILE: "/keys.json", CLIENTS_FILE: "/clients.json" },
      {
        "/keys.json": JSON.stringify({ keys: [es256Jwk("only")] }),
        "/clients.json": JSON.stringify({
          clients: [{ client_id: "es", client_secret: "s", id_token_signed_response_alg: "ES256" }],
        }),
      },
    );
    assert.equal(config.clients.get("es")?.idTokenSigningAlg, "ES256");
  });

  test("an empty or missing key list, and duplicate kids", () => {
    assert.equal(keysProblems({ keys: [] }).length, 1);
    assert.equal(keysProblems({}).length, 1);
    assert.deepEqual(keysProblems({ keys: [es256Jwk("same"), es256Jwk("same")] }), [
      "SIGNING_KEYS_FILE has duplicate kids",
    ]);
  });
});

describe("CLIENTS_FILE", () => {
  const clientsProblems = (json: unknown) =>
    problemsOf({ CLIENTS_FILE: "/clients.json" }, { "/clients.json": JSON.stringify(json) });

  test("id_token_signed_response_alg and allowed_origins are validated", () => {
    assert.deepEqual(
      clientsProblems({
        clients: [
          {
            client_id: "a",
            client_secret: "s",
            id_token_signed_response_alg: "HS256",
            allowed_origins: ["https://app.example.com/path", "*"],
          },
        ],
      }),
      [
        'CLIENTS_FILE: clients[0]: "id_token_signed_response_alg" must be one of ES256, EdDSA, Ed25519, RS256, PS256',
        'CLIENTS_FILE: clients[0]: "allowed_origins" must be an array of origins such as "https://app.example.com" (scheme, host and port only)',
      ],
    );
    const config = load(
      { CLIENTS_FILE: "/clients.json" },
      {
        "/clients.json": JSON.stringify({
          clients: [
            {
              client_id: "spa",
              token_endpoint_auth_method: "none",
              allowed_origins: ["https://app.example.com", "http://localhost:3000"],
            },
          ],
        }),
      },
    );
    const spa = config.clients.get("spa");
    assert.equal(spa?.idTokenSigningAlg, "RS256");
    assert.deepEqual(spa?.allowedOrigins, ["https://app.example.com", "http://localhost:3000"]);
  });

  test("not a clients document", () => {
    assert.deepEqual(clientsProblems([]), ['CLIENTS_FILE: expected {"clients": [...]}']);
  });

  test("every bad entry is reported, by index", () => {
    const problems = clientsProblems({
      clients: [
        { client_secret: "s" },
        { client_id: "a", token_endpoint_auth_method: "client_secret_jwt" },
        { client_id: "b", token_endpoint_auth_method: "client_secret_basic" },
        { client_id: "c", client_secret: "s", grant_types: "mfa-otp" },
        { client_id: "d", token_endpoint_auth_method: "private_key_jwt" },
        { client_id: "e", token_endpoint_auth_method: "none" },
        { client_id: "e", token_endpoint_auth_method: "none" },
      ],
    });
    assert.equal(problems.length, 6, problems.join("\n"));
    const expected: [number, RegExp][] = [
      [0, /"client_id"/],
      [1, /"token_endpoint_auth_method"/],
      [2, /"client_secret" is required for client_secret_basic/],
      [3, /"grant_types"/],
      [4, /"jwks"/],
      [6, /duplicate client_id "e"/],
    ];
    expected.forEach(([index, pattern], i) => {
      assert.match(problems[i] ?? "", new RegExp(`^CLIENTS_FILE: clients\\[${index}\\]: `));
      assert.match(problems[i] ?? "", pattern);
    });
  });
});
