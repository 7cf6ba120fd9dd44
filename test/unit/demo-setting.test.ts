// DEMO (src/demo/demo-setting.ts through the loader): the demo page is on by
// default only with the demo client outside production, DEMO=false turns it
// off, and DEMO=true is refused with one message in production or without
// the demo client.

import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { type Config, ConfigError, DEMO_CLIENTS_FILE, loadConfig } from "../../src/config.js";

type Env = Record<string, string>;

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
const FILES: Record<string, string> = {
  [DEMO_CLIENTS_FILE]: readFileSync(DEMO_CLIENTS_FILE, "utf8"),
  "/etc/token/clients.json": OWN_CLIENTS,
  "/etc/token/keys.json": KEYS,
};
/** Production without any development default: only DEMO itself can be refused. */
const PRODUCTION: Env = {
  NODE_ENV: "production",
  ISSUER_URL: "https://auth.example.test/",
  REDIS_URL: "redis://redis.internal:6379",
  CLIENTS_FILE: "/etc/token/clients.json",
  SIGNING_KEYS_FILE: "/etc/token/keys.json",
  SECRETS_KEY: Buffer.alloc(32, 5).toString("base64"),
  INTERNAL_API_KEY: "internal-api-key-0123456789-abcdef",
};
const OWN_CLIENTS_DEV: Env = { CLIENTS_FILE: "/etc/token/clients.json" };

function load(env: Env): Config {
  return loadConfig(env, {
    readFile: (path) => {
      const content = FILES[path];
      if (content === undefined) throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
      return content;
    },
  });
}

function problemsOf(env: Env): readonly string[] {
  try {
    load(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  return assert.fail("the configuration was accepted");
}

describe("DEMO", () => {
  test("unset: on with the embedded default's demo client", () => {
    assert.equal(load({}).demo, true);
  });

  test("unset: off with the operator's own clients", () => {
    assert.equal(load(OWN_CLIENTS_DEV).demo, false);
  });

  test("unset: off in production", () => {
    assert.equal(load(PRODUCTION).demo, false);
  });

  test("DEMO=false (or 0) turns it off on the embedded default", () => {
    assert.equal(load({ DEMO: "false" }).demo, false);
    assert.equal(load({ DEMO: "0" }).demo, false);
    assert.equal(load({ DEMO: "FALSE" }).demo, false);
  });

  test("DEMO=true (or 1) keeps it on with the demo client", () => {
    assert.equal(load({ DEMO: "true" }).demo, true);
    assert.equal(load({ DEMO: "1" }).demo, true);
  });

  test("DEMO=true in production is refused with one message", () => {
    assert.deepEqual(problemsOf({ ...PRODUCTION, DEMO: "true" }), [
      "DEMO=true is refused with NODE_ENV=production: the demo page gives any browser mfa_tokens and the demo client's secret, so it runs only on the embedded development default (unset DEMO)",
    ]);
  });

  test("DEMO=false in production is accepted (it only says what production does anyway)", () => {
    assert.equal(load({ ...PRODUCTION, DEMO: "false" }).demo, false);
  });

  test("DEMO=true without the demo client is refused", () => {
    assert.deepEqual(problemsOf({ ...OWN_CLIENTS_DEV, DEMO: "true" }), [
      "DEMO=true needs the demo client (config/clients.example.json's demo-app, recognised by its secret) in CLIENTS_FILE: the page logs in as that client",
    ]);
  });

  test("a value that is not a boolean is refused", () => {
    assert.deepEqual(problemsOf({ DEMO: "yes" }), ['DEMO must be true or false (got "yes")']);
  });
});
