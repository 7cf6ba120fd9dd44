// SIGHUP re-reads SIGNING_KEYS_FILE and CLIENTS_FILE without a restart: the
// key-rotation procedure step by step, a broken file that changes nothing,
// and WORKERS=2 (the primary passes the signal to every worker).

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { decodeProtectedHeader } from "jose";
import { generateSigningJwk } from "../../src/cli/keys-generate.js";
import { h1Request, jsonOf } from "../support/http-clients.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import { runBin } from "../support/run-process.js";
import { type ServiceProcess, startServiceProcess } from "../support/service-process.js";

const MFA_OTP_GRANT = "http://auth0.com/oauth/grant-type/mfa-otp";
const INTERNAL_API_KEY = "reload-internal-api-key-0123456789";
const SECRETS_KEY = Buffer.alloc(32, 9).toString("base64");

const dir = mkdtempSync(join(tmpdir(), "reload-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const keysFile = join(dir, "keys.json");
const clientsFile = join(dir, "clients.json");
const [es1, rs1, es2] = await Promise.all([
  generateSigningJwk("ES256", "es-1"),
  generateSigningJwk("RS256", "rs-1"),
  generateSigningJwk("ES256", "es-2"),
]);
const client = (id: string) => ({
  client_id: id,
  client_secret: `${id}-secret-0123456789`,
  grant_types: [MFA_OTP_GRANT],
});
const writeKeys = (keys: unknown[]) => writeFileSync(keysFile, JSON.stringify({ keys }));
const writeClients = (ids: string[]) =>
  writeFileSync(clientsFile, JSON.stringify({ clients: ids.map(client) }));

async function kids(service: ServiceProcess): Promise<string[]> {
  const jwks = (await (await fetch(`${service.baseUrl}/.well-known/jwks.json`)).json()) as {
    keys: { kid: string }[];
  };
  return jwks.keys.map((k) => k.kid);
}

/** The kid of the access token a fresh login gets (enroll + verify with the TOTP tool's code). */
async function accessTokenKid(service: ServiceProcess, clientId: string): Promise<string> {
  const rpc = (path: string, body: unknown) =>
    fetch(`${service.baseUrl}/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${INTERNAL_API_KEY}` },
      body: JSON.stringify(body),
    }).then((r) => r.json() as Promise<Record<string, unknown>>);
  const userId = `reload-${Math.random().toString(36).slice(2)}`;
  const issue = async () =>
    String((await rpc("token.v1.MfaTokenService/IssueMfaToken", { userId, clientId })).mfaToken);
  const associated = (await (
    await fetch(`${service.baseUrl}/mfa/associate`, {
      method: "POST",
      headers: { authorization: `Bearer ${await issue()}`, "content-type": "application/json" },
      body: "{}",
    })
  ).json()) as { secret: string };
  const { generateTotp, decodeBase32Secret } = await import("../../src/mfa/totp.js");
  const otp = generateTotp(decodeBase32Secret(associated.secret), Math.floor(Date.now() / 1000));
  const response = await fetch(`${service.baseUrl}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: MFA_OTP_GRANT,
      client_id: clientId,
      client_secret: `${clientId}-secret-0123456789`,
      mfa_token: await issue(),
      otp,
    }).toString(),
  });
  const body = (await response.json()) as { access_token?: string };
  assert.equal(response.status, 200, JSON.stringify(body));
  return String(decodeProtectedHeader(String(body.access_token)).kid);
}

async function reload(service: ServiceProcess, event: "reloaded" | "reload_failed", count = 1) {
  const from = service.lines().length;
  service.child.kill("SIGHUP");
  for (let i = 0; i < count; i++) {
    await service.waitForLine(
      (line) =>
        line.event === event &&
        service
          .lines()
          .slice(from)
          .filter((l) => l.event === event).length > i,
      { from },
    );
  }
}

describe("SIGHUP with one process", () => {
  let service: ServiceProcess;
  before(async () => {
    writeKeys([es1, rs1]);
    writeClients(["app-1"]);
    service = await startServiceProcess({
      SIGNING_KEYS_FILE: keysFile,
      CLIENTS_FILE: clientsFile,
      INTERNAL_API_KEY,
      SECRETS_KEY,
    });
  });
  after(() => service.stop());

  test("key rotation: add last (published), move first (signing), remove the old one", async () => {
    assert.deepEqual(await kids(service), ["es-1", "rs-1"]);
    assert.equal(await accessTokenKid(service, "app-1"), "es-1");

    writeKeys([es1, rs1, es2]);
    await reload(service, "reloaded");
    assert.deepEqual(await kids(service), ["es-1", "rs-1", "es-2"]);
    assert.equal(await accessTokenKid(service, "app-1"), "es-1", "a key added last does not sign");

    writeKeys([es2, rs1, es1]);
    await reload(service, "reloaded");
    assert.equal(await accessTokenKid(service, "app-1"), "es-2");

    writeKeys([es2, rs1]);
    await reload(service, "reloaded");
    assert.deepEqual(await kids(service), ["es-2", "rs-1"]);
  });

  test("clients: a new client works after the reload", async () => {
    writeClients(["app-1", "app-2"]);
    await reload(service, "reloaded");
    assert.equal(await accessTokenKid(service, "app-2"), "es-2");
  });

  test("a broken file changes nothing, logs one error, and the process lives on", async () => {
    const before = await kids(service);
    writeFileSync(keysFile, "{ not json");
    await reload(service, "reload_failed");
    const failure = [...service.lines()].reverse().find((line) => line.event === "reload_failed");
    assert.deepEqual(failure?.problems, [`SIGNING_KEYS_FILE (${keysFile}) is not valid JSON`]);
    assert.deepEqual(await kids(service), before);
    assert.equal(service.child.exitCode, null);
    // A valid file whose client has no key for its ID-token algorithm: refused too.
    writeKeys([es2]);
    await reload(service, "reload_failed");
    assert.deepEqual(await kids(service), before);
    assert.equal(await accessTokenKid(service, "app-2"), "es-2");
  });

  test("the same rotation with the commands: keys generate --add-to, keys promote, keys retire", async () => {
    writeKeys([es2, rs1]);
    await reload(service, "reloaded");
    const env = { SIGNING_KEYS_FILE: keysFile };
    const step = async (args: string[]) => {
      const result = await runBin(args, env);
      assert.equal(result.code, 0, result.stderr);
      await reload(service, "reloaded");
    };
    await step(["keys", "generate", "--alg", "ES256", "--kid", "es-3", "--add-to", keysFile]);
    assert.deepEqual(await kids(service), ["es-2", "rs-1", "es-3"]);
    assert.equal(await accessTokenKid(service, "app-1"), "es-2");
    await step(["keys", "promote", "es-3"]);
    assert.deepEqual(await kids(service), ["es-3", "es-2", "rs-1"]);
    assert.equal(await accessTokenKid(service, "app-1"), "es-3");
    await step(["keys", "retire", "es-2"]);
    assert.deepEqual(await kids(service), ["es-3", "rs-1"]);
  });
});

describe("SIGHUP with WORKERS=2", () => {
  let redis: RedisServerHandle;
  let service: ServiceProcess;
  before(async () => {
    redis = await startRedisServer({ dedicated: true });
    writeKeys([es1, rs1]);
    writeClients(["app-1"]);
    service = await startServiceProcess(
      {
        SIGNING_KEYS_FILE: keysFile,
        CLIENTS_FILE: clientsFile,
        INTERNAL_API_KEY,
        SECRETS_KEY,
        REDIS_URL: redis.url,
        WORKERS: "2",
      },
      { listeningLines: 2 },
    );
  });
  after(async () => {
    await service.stop();
    await redis.stop();
  });

  test("the primary passes the signal on: every worker publishes the new key", async () => {
    writeKeys([es1, rs1, es2]);
    await reload(service, "reloaded", 2);
    // A new connection each time: the primary deals connections to the workers
    // in turn (round-robin), so both answer; every answer has the new key.
    for (let i = 0; i < 10; i++) {
      const answer = await h1Request(service.baseUrl, {
        method: "GET",
        path: "/.well-known/jwks.json",
        headers: { connection: "close" },
      });
      assert.deepEqual(
        (jsonOf(answer) as { keys: { kid: string }[] }).keys.map((k) => k.kid),
        ["es-1", "rs-1", "es-2"],
      );
    }
  });
});
