// Per-address throttling and the client-address variables: off for the
// embedded default, on with NODE_ENV=production, ADDRESS_THROTTLING overriding
// both; defaults, validation, every problem reported at once.

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

test("the embedded default: off; the client address is the socket's (no header believed)", () => {
  const config = loadConfig({});
  assert.deepEqual(config.addressThrottling, {
    enabled: false,
    maxFailures: 100,
    refillSeconds: 36,
  });
  assert.deepEqual(config.clientAddress, { trustProxyHops: 0, trustAuth0ForwardedFor: false });
});

test("NODE_ENV=production: on, with the same defaults", () => {
  assert.deepEqual(load(PRODUCTION).addressThrottling, {
    enabled: true,
    maxFailures: 100,
    refillSeconds: 36,
  });
  assert.deepEqual(load(PRODUCTION).clientAddress, {
    trustProxyHops: 0,
    trustAuth0ForwardedFor: false,
  });
});

test("ADDRESS_THROTTLING overrides both defaults", () => {
  assert.equal(
    load({ ...PRODUCTION, ADDRESS_THROTTLING: "false" }).addressThrottling.enabled,
    false,
  );
  assert.equal(load({ ...PRODUCTION, ADDRESS_THROTTLING: "0" }).addressThrottling.enabled, false);
  assert.equal(loadConfig({ ADDRESS_THROTTLING: "true" }).addressThrottling.enabled, true);
  assert.equal(loadConfig({ ADDRESS_THROTTLING: "1" }).addressThrottling.enabled, true);
});

test("every variable is read", () => {
  const config = loadConfig({
    ADDRESS_THROTTLING: "true",
    ADDRESS_MAX_FAILURES: "500",
    ADDRESS_FAILURE_REFILL_SECONDS: "10",
    TRUST_PROXY: "2",
    TRUST_AUTH0_FORWARDED_FOR: "true",
  });
  assert.deepEqual(config.addressThrottling, {
    enabled: true,
    maxFailures: 500,
    refillSeconds: 10,
  });
  assert.deepEqual(config.clientAddress, { trustProxyHops: 2, trustAuth0ForwardedFor: true });
});

test("invalid values are all reported at once", () => {
  assert.throws(
    () =>
      loadConfig({
        ADDRESS_THROTTLING: "yes",
        ADDRESS_MAX_FAILURES: "0",
        ADDRESS_FAILURE_REFILL_SECONDS: "soon",
        TRUST_PROXY: "true",
        TRUST_AUTH0_FORWARDED_FOR: "on",
      }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems, [
        'ADDRESS_THROTTLING must be true or false (got "yes")',
        'ADDRESS_MAX_FAILURES must be an integer from 1 to 1000000 (got "0")',
        'ADDRESS_FAILURE_REFILL_SECONDS must be an integer from 1 to 86400 (got "soon")',
        'TRUST_PROXY must be an integer from 0 to 16 (got "true")',
        'TRUST_AUTH0_FORWARDED_FOR must be true or false (got "on")',
      ]);
      return true;
    },
  );
});
