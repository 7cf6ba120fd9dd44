// Start-up refusals of the configuration loader (docs/configuration.md): a persistent store
// without SECRETS_KEY is refused in every mode, and production recognises the
// demo client by its secret wherever its file lives. The messages as the
// running service prints them are checked in test/integration/startup-refusals.test.ts.

import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { type Config, ConfigError, DEMO_CLIENTS_FILE, loadConfig } from "../../src/config.js";
import { DEMO_CLIENT_SECRET } from "../../src/oauth/demo-client.js";

type Env = Record<string, string>;

const SECRETS_KEY = Buffer.alloc(32, 3).toString("base64");
const DEMO_FILE_TEXT = readFileSync(DEMO_CLIENTS_FILE, "utf8");
const OWN_CLIENTS = JSON.stringify({
  clients: [{ client_id: "web-app", client_secret: "web-app-secret-0123456789" }],
});
const KEYS = JSON.stringify({
  keys: [
    {
      ...generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" }),
      kid: "k1",
      alg: "ES256",
    },
    {
      ...generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" }),
      kid: "k2",
      alg: "RS256",
    },
  ],
});

const PRODUCTION: Env = {
  NODE_ENV: "production",
  ISSUER_URL: "https://auth.example.test/",
  REDIS_URL: "redis://redis.internal:6379",
  CLIENTS_FILE: "/etc/token/clients.json",
  SIGNING_KEYS_FILE: "/etc/token/keys.json",
  SECRETS_KEY,
  INTERNAL_API_KEY: "internal-api-key-0123456789-abcdef",
};

function load(env: Env, files: Record<string, string> = {}): Config {
  const all: Record<string, string> = {
    [DEMO_CLIENTS_FILE]: DEMO_FILE_TEXT,
    "/etc/token/clients.json": OWN_CLIENTS,
    "/etc/token/keys.json": KEYS,
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

function problemsOf(env: Env, files: Record<string, string> = {}): readonly string[] {
  try {
    load(env, files);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  return assert.fail("the configuration was accepted");
}

const SECRETS_KEY_REQUIRED = (variable: string) =>
  `SECRETS_KEY is required with ${variable}: a key generated per run cannot decrypt what earlier runs stored, so every enrolled user would be locked out at the next restart (generate one with \`token-service secrets-key\`)`;

describe("a persistent store without SECRETS_KEY", () => {
  for (const nodeEnv of [undefined, "development", "test"]) {
    const mode = nodeEnv === undefined ? "NODE_ENV unset" : `NODE_ENV=${nodeEnv}`;
    const base: Env = nodeEnv === undefined ? {} : { NODE_ENV: nodeEnv };

    test(`REDIS_URL is refused with one message (${mode})`, () => {
      assert.deepEqual(problemsOf({ ...base, REDIS_URL: "redis://127.0.0.1:6379" }), [
        SECRETS_KEY_REQUIRED("REDIS_URL"),
      ]);
    });

    test(`DATABASE_URL is refused with one message (${mode})`, () => {
      assert.deepEqual(problemsOf({ ...base, DATABASE_URL: "postgres://127.0.0.1/token" }), [
        SECRETS_KEY_REQUIRED("DATABASE_URL"),
      ]);
    });

    test(`REDIS_CLUSTER_NODES is refused with one message (${mode})`, () => {
      assert.deepEqual(problemsOf({ ...base, REDIS_CLUSTER_NODES: "10.0.0.1:7000" }), [
        SECRETS_KEY_REQUIRED("REDIS_CLUSTER_NODES"),
      ]);
    });
  }

  test("production names it among the refused defaults, once", () => {
    const { SECRETS_KEY: _omitted, ...env } = PRODUCTION;
    assert.deepEqual(problemsOf(env), [
      "NODE_ENV=production refuses development defaults: a missing SECRETS_KEY (`token-service secrets-key`)",
    ]);
  });

  test("with SECRETS_KEY the store is accepted", () => {
    assert.deepEqual(load({ REDIS_URL: "redis://127.0.0.1:6379", SECRETS_KEY }).store, {
      kind: "redis",
      url: "redis://127.0.0.1:6379",
    });
  });

  test("the memory store still runs on a per-run key (the embedded default)", () => {
    const config = load({});
    assert.equal(config.devDefaults.ephemeralSecretsKey, true);
    assert.equal(config.secretsKey.length, 32);
  });
});

describe("the demo client in production", () => {
  const DEMO_REFUSAL =
    "NODE_ENV=production refuses development defaults: the demo client (recognised by its public secret wherever the file lives; set CLIENTS_FILE to your own clients: `token-service client new --id <id> --add-to clients.json`)";

  test("the secret the code recognises is the example file's", () => {
    const secrets = (
      JSON.parse(DEMO_FILE_TEXT) as { clients: { client_secret?: string }[] }
    ).clients.map((c) => c.client_secret);
    assert.deepEqual(secrets, [DEMO_CLIENT_SECRET]);
  });

  test("refused when the example file is copied elsewhere", () => {
    assert.deepEqual(problemsOf(PRODUCTION, { "/etc/token/clients.json": DEMO_FILE_TEXT }), [
      DEMO_REFUSAL,
    ]);
  });

  test("refused when the demo client is renamed or sits among real clients", () => {
    const clients = JSON.stringify({
      clients: [
        { client_id: "web-app", client_secret: "web-app-secret-0123456789" },
        { client_id: "renamed", client_secret: DEMO_CLIENT_SECRET },
      ],
    });
    assert.deepEqual(problemsOf(PRODUCTION, { "/etc/token/clients.json": clients }), [
      DEMO_REFUSAL,
    ]);
  });

  test("refused when CLIENTS_FILE names the shipped example itself", () => {
    assert.deepEqual(problemsOf({ ...PRODUCTION, CLIENTS_FILE: DEMO_CLIENTS_FILE }), [
      DEMO_REFUSAL,
    ]);
  });

  test("outside production a copy is flagged as a development default (the start-up warning)", () => {
    const config = load(
      { CLIENTS_FILE: "/etc/token/clients.json" },
      { "/etc/token/clients.json": DEMO_FILE_TEXT },
    );
    assert.equal(config.devDefaults.demoClients, true);
  });

  test("own clients are accepted", () => {
    const config = load(PRODUCTION);
    assert.deepEqual([...config.clients.keys()], ["web-app"]);
    assert.equal(config.devDefaults.demoClients, false);
  });
});

describe("the production issuer (SPEC §6)", () => {
  const { ISSUER_URL: _omitted, ...withoutIssuer } = PRODUCTION;
  const PREFIX = "NODE_ENV=production refuses development defaults: ";

  test("a missing ISSUER_URL is refused, naming what to set", () => {
    assert.deepEqual(problemsOf(withoutIssuer), [
      `${PREFIX}a missing ISSUER_URL (set it to the https:// URL clients reach, e.g. ISSUER_URL=https://auth.example.com/)`,
    ]);
  });

  test("plain http is refused on any host but a loopback one", () => {
    for (const issuer of [
      "http://auth.example.test/",
      "http://10.0.0.1:8080/",
      "http://[::2]/",
      "http://128.0.0.1/",
      "http://localhost.example.test/",
    ]) {
      assert.deepEqual(
        problemsOf({ ...PRODUCTION, ISSUER_URL: issuer }),
        [
          `${PREFIX}a plain-http ISSUER_URL ("${issuer}": http:// only for a loopback host, 127.0.0.0/8, [::1] or localhost; use https://)`,
        ],
        issuer,
      );
    }
  });

  test("https anywhere, and http on 127.0.0.0/8, [::1] and localhost, are accepted", () => {
    for (const issuer of [
      "https://auth.example.test/",
      "https://10.0.0.1:8443/base/",
      "http://127.0.0.1:8080/",
      "http://127.255.0.9/",
      "http://[::1]:8080/",
      "http://localhost:8080/",
    ]) {
      assert.equal(load({ ...PRODUCTION, ISSUER_URL: issuer }).issuerUrl, issuer);
    }
  });

  test("outside production a missing or plain-http issuer is the development default", () => {
    const { NODE_ENV: _production, ...development } = withoutIssuer;
    assert.equal(load(development).issuerUrl, "http://localhost:8080/");
    assert.equal(
      load({ ...development, ISSUER_URL: "http://auth.example.test" }).issuerUrl,
      "http://auth.example.test/",
    );
  });
});

describe("INTERNAL_API_KEY strength in production (SPEC §2)", () => {
  const WEAK =
    "INTERNAL_API_KEY is too weak for NODE_ENV=production: it needs at least 32 characters and at least 8 distinct ones (generate one with `token-service internal-api-key`)";

  for (const [why, key] of [
    ["one repeated character", "a".repeat(40)],
    ["7 distinct characters", "abcdefg".repeat(6)],
    ["31 characters", "0123456789abcdefghijklmnopqrstu"],
  ] as const) {
    test(`${why}: refused with one line naming the command, never the key`, () => {
      const problems = problemsOf({ ...PRODUCTION, INTERNAL_API_KEY: key });
      assert.deepEqual(problems, [WEAK]);
      assert.ok(!problems.join("\n").includes(key));
    });
  }

  test("a hex key of 32 characters and a generated key pass", () => {
    const hex = "3f9a0c7be14d2865a0b3c9d7e1f24680";
    assert.equal(load({ ...PRODUCTION, INTERNAL_API_KEY: hex }).internalApiKey, hex);
    const generated = "Qm0sYl3o8cR2v1Ff7nXkGhU9tWzJpA4bEdS6iN5yTqL";
    assert.equal(load({ ...PRODUCTION, INTERNAL_API_KEY: generated }).internalApiKey, generated);
  });

  test("outside production a weak key of 16 characters or more is accepted", () => {
    assert.equal(load({ INTERNAL_API_KEY: "a".repeat(16) }).internalApiKey, "a".repeat(16));
  });
});

describe("INTERNAL_PORT / INTERNAL_HOST", () => {
  test("unset: no internal listener (MfaTokenService on the public port)", () => {
    assert.equal(load({}).internal, undefined);
  });

  test("set: the listener, on 127.0.0.1 by default", () => {
    assert.deepEqual(load({ INTERNAL_PORT: "9090" }).internal, { port: 9090, host: "127.0.0.1" });
    assert.deepEqual(load({ INTERNAL_PORT: "0", INTERNAL_HOST: "10.0.0.5" }).internal, {
      port: 0,
      host: "10.0.0.5",
    });
  });

  test("refusals: the public or management port, a bad port, a host without a port", () => {
    assert.deepEqual(problemsOf({ PORT: "9090", INTERNAL_PORT: "9090" }), [
      "INTERNAL_PORT must differ from PORT (MfaTokenService would be public again)",
    ]);
    assert.deepEqual(problemsOf({ MANAGEMENT_PORT: "9090", INTERNAL_PORT: "9090" }), [
      "INTERNAL_PORT must differ from MANAGEMENT_PORT",
    ]);
    assert.deepEqual(problemsOf({ INTERNAL_PORT: "http" }), [
      'INTERNAL_PORT must be an integer from 0 to 65535 (got "http")',
    ]);
    assert.deepEqual(problemsOf({ INTERNAL_HOST: "10.0.0.5" }), [
      "INTERNAL_HOST needs INTERNAL_PORT (the internal listener is off without it)",
    ]);
  });
});
