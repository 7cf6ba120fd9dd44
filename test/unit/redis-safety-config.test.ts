// The Redis checks (SPEC §7, docs/configuration.md): REDIS_DURABILITY_CHECK and
// REDIS_DATASET_CHECK on with NODE_ENV=production and off otherwise,
// REDIS_MIN_REPLICAS_ACK decided at start-up unless set, REDIS_ACK_TIMEOUT_MS
// 200; validation with every problem reported at once.

import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { test } from "node:test";
import { ConfigError, loadConfig } from "../../src/config.js";

const FILES: Record<string, string> = {
  "/etc/token/clients.json": JSON.stringify({
    clients: [
      {
        client_id: "web-app",
        client_secret: "web-app-secret",
        grant_types: ["http://auth0.com/oauth/grant-type/mfa-otp"],
        id_token_signed_response_alg: "ES256",
      },
    ],
  }),
  "/etc/token/keys.json": JSON.stringify({
    keys: [
      {
        ...generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" }),
        kid: "key-1",
        alg: "ES256",
      },
    ],
  }),
};

/** A production configuration with no development default left. */
const PRODUCTION = {
  NODE_ENV: "production",
  ISSUER_URL: "https://auth.example.test/",
  REDIS_URL: "redis://redis.internal:6379",
  CLIENTS_FILE: "/etc/token/clients.json",
  SIGNING_KEYS_FILE: "/etc/token/keys.json",
  SECRETS_KEY: Buffer.alloc(32, 1).toString("base64"),
  INTERNAL_API_KEY: "internal-api-key-0123456789-abcdef",
};

const load = (env: Record<string, string>) =>
  loadConfig(env, {
    readFile: (path) => {
      const content = FILES[path];
      if (content === undefined) throw new Error("ENOENT");
      return content;
    },
  });

/** The same files and secrets outside production. */
const { NODE_ENV: _production, ...DEVELOPMENT } = PRODUCTION;

test("production: both checks on, replicas decided at start-up, 200 ms", () => {
  assert.deepEqual(load(PRODUCTION).redisSafety, {
    durabilityCheck: true,
    durabilityCheckDisabled: false,
    datasetCheck: true,
    minReplicasAck: undefined,
    ackTimeoutMs: 200,
  });
});

test("outside production: both checks off (the test Redis runs without AOF)", () => {
  assert.deepEqual(load(DEVELOPMENT).redisSafety, {
    durabilityCheck: false,
    durabilityCheckDisabled: false,
    datasetCheck: false,
    minReplicasAck: undefined,
    ackTimeoutMs: 200,
  });
});

test("REDIS_DURABILITY_CHECK=off in production: off, and remembered for the start-up warning", () => {
  const config = load({ ...PRODUCTION, REDIS_DURABILITY_CHECK: "off", REDIS_DATASET_CHECK: "off" });
  assert.equal(config.redisSafety.durabilityCheck, false);
  assert.equal(config.redisSafety.durabilityCheckDisabled, true);
  assert.equal(config.redisSafety.datasetCheck, false);
});

test("on outside production; explicit replicas and timeout", () => {
  const config = load({
    ...DEVELOPMENT,
    REDIS_DURABILITY_CHECK: "on",
    REDIS_DATASET_CHECK: "true",
    REDIS_MIN_REPLICAS_ACK: "2",
    REDIS_ACK_TIMEOUT_MS: "500",
  });
  assert.deepEqual(config.redisSafety, {
    durabilityCheck: true,
    durabilityCheckDisabled: false,
    datasetCheck: true,
    minReplicasAck: 2,
    ackTimeoutMs: 500,
  });
  assert.equal(load({ ...DEVELOPMENT, REDIS_MIN_REPLICAS_ACK: "0" }).redisSafety.minReplicasAck, 0);
});

test("invalid values: every problem at once", () => {
  assert.throws(
    () =>
      load({
        ...DEVELOPMENT,
        REDIS_DURABILITY_CHECK: "maybe",
        REDIS_DATASET_CHECK: "yes",
        REDIS_MIN_REPLICAS_ACK: "-1",
        REDIS_ACK_TIMEOUT_MS: "0",
      }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems, [
        'REDIS_DURABILITY_CHECK must be on or off (got "maybe")',
        'REDIS_DATASET_CHECK must be on or off (got "yes")',
        'REDIS_MIN_REPLICAS_ACK must be an integer from 0 to 100 (got "-1")',
        'REDIS_ACK_TIMEOUT_MS must be an integer from 1 to 1500 (got "0")',
      ]);
      return true;
    },
  );
});
