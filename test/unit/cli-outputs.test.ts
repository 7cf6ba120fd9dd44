// The starter kit (src/cli/, run in-process): what `token-service keys generate`,
// `secrets-key`, `internal-api-key` and `client new` print is accepted by the
// configuration loader, and the loaded keys sign tokens that verify against the
// published JWKS. The command itself, as a child process, is in
// test/integration/cli.test.ts.

import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { createLocalJWKSet, jwtVerify } from "jose";
import type { CliIo } from "../../src/cli/cli-io.js";
import { runCli } from "../../src/cli/run-cli.js";
import { totp } from "../../src/cli/totp-command.js";
import { loadConfig } from "../../src/config.js";
import { generateTotp } from "../../src/mfa/totp.js";
import { signJwt } from "../../src/tokens/jwt-signer.js";

const dir = mkdtempSync(join(tmpdir(), "token-service-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number;
  out: string;
  err: string;
}

async function cli(...args: string[]): Promise<Run> {
  let out = "";
  let err = "";
  const io: CliIo = {
    out: (text) => {
      out += text;
    },
    err: (text) => {
      err += text;
    },
    env: {},
  };
  const code = await runCli(args, io);
  return { code, out, err };
}

async function ok(...args: string[]): Promise<string> {
  const run = await cli(...args);
  assert.equal(run.code, 0, run.err);
  assert.equal(run.err, "");
  return run.out;
}

/** A failure: the exit status and exactly one line on stderr, nothing on stdout. */
async function fails(code: number, pattern: RegExp, ...args: string[]): Promise<void> {
  const run = await cli(...args);
  assert.equal(run.code, code, `${run.err}${run.out}`);
  assert.equal(run.out, "");
  assert.match(run.err, /^token-service: [^\n]+\n$/);
  assert.match(run.err, pattern);
}

const ALGS = ["ES256", "EdDSA", "Ed25519", "RS256", "PS256"] as const;

describe("outputs the loader accepts", () => {
  test("a key of each algorithm, a secrets key, an internal key and clients: production starts and signs", async () => {
    const keys = [];
    for (const alg of ALGS) {
      const jwks = JSON.parse(await ok("keys", "generate", "--alg", alg));
      assert.equal(jwks.keys.length, 1);
      const [key] = jwks.keys;
      assert.equal(key.alg, alg);
      assert.equal(key.use, "sig");
      assert.match(key.kid, /^[A-Za-z0-9_-]{43}$/, "an RFC 7638 SHA-256 thumbprint");
      assert.equal(typeof key.d, "string", "a private key");
      keys.push(key);
    }
    const secretsKey = (await ok("secrets-key")).trim();
    assert.equal(Buffer.from(secretsKey, "base64").length, 32);
    const internalApiKey = (await ok("internal-api-key")).trim();
    assert.match(internalApiKey, /^[A-Za-z0-9_-]{43}$/);

    const post = JSON.parse(await ok("client", "new", "--id", "web-app"));
    const basic = JSON.parse(
      await ok("client", "new", "--id", "backend", "--auth-method", "client_secret_basic"),
    );
    const spa = JSON.parse(
      await ok("client", "new", "--id", "spa", "--auth-method", "none", "--grant", "mfa-otp"),
    );
    const clientKeyFile = join(dir, "client-key.json");
    writeFileSync(clientKeyFile, await ok("keys", "generate", "--alg", "ES256"));
    const jwt = JSON.parse(
      await ok(
        "client",
        "new",
        "--id",
        "jwt-client",
        "--auth-method",
        "private_key_jwt",
        "--jwks",
        clientKeyFile,
        "--grant",
        "mfa-otp",
        "--grant",
        "refresh_token",
      ),
    );

    const keysFile = join(dir, "signing-keys.json");
    const clientsFile = join(dir, "clients.json");
    writeFileSync(keysFile, JSON.stringify({ keys }));
    writeFileSync(clientsFile, JSON.stringify({ clients: [post, basic, spa, jwt] }));
    const config = loadConfig({
      NODE_ENV: "production",
      ISSUER_URL: "https://auth.example.test/",
      REDIS_URL: "redis://127.0.0.1:6379",
      SIGNING_KEYS_FILE: keysFile,
      CLIENTS_FILE: clientsFile,
      SECRETS_KEY: secretsKey,
      INTERNAL_API_KEY: internalApiKey,
    });

    assert.deepEqual(Object.values(config.devDefaults), [false, false, false, false, false]);
    assert.deepEqual(config.secretsKey, Buffer.from(secretsKey, "base64"));
    assert.equal(config.internalApiKey, internalApiKey);
    assert.deepEqual(
      config.signingKeys.map((k) => [k.kid, k.alg]),
      keys.map((k) => [k.kid, k.alg]),
    );
    assert.deepEqual(
      [...config.clients.values()].map((c) => [c.clientId, c.authMethod, c.clientSecret]),
      [
        ["web-app", "client_secret_post", post.client_secret],
        ["backend", "client_secret_basic", basic.client_secret],
        ["spa", "none", undefined],
        ["jwt-client", "private_key_jwt", undefined],
      ],
    );
    assert.deepEqual(config.clients.get("web-app")?.grantTypes, [
      "http://auth0.com/oauth/grant-type/mfa-otp",
      "http://auth0.com/oauth/grant-type/mfa-recovery-code",
    ]);
    assert.deepEqual(config.clients.get("jwt-client")?.grantTypes, [
      "http://auth0.com/oauth/grant-type/mfa-otp",
      "refresh_token",
    ]);
    // Only the public half of the client's key is registered.
    const [registered] = config.clients.get("jwt-client")?.jwks?.keys ?? [];
    assert.equal(registered?.d, undefined);
    assert.equal(registered?.x, JSON.parse(readFileSync(clientKeyFile, "utf8")).keys[0].x);

    // Every loaded key signs a token that verifies against the published JWKS.
    const published = createLocalJWKSet({ keys: config.signingKeys.map((k) => k.publicJwk) });
    for (const key of config.signingKeys) {
      const token = signJwt(key, "at+jwt", { sub: "user-1", iss: config.issuerUrl });
      const { payload, protectedHeader } = await jwtVerify(token, published);
      assert.deepEqual(
        [protectedHeader.kid, protectedHeader.alg, payload.sub],
        [key.kid, key.alg, "user-1"],
      );
    }
  });

  test("several --alg give one file, first key first; --kid names a single key", async () => {
    const jwks = JSON.parse(await ok("keys", "generate", "--alg", "ES256", "--alg", "RS256"));
    assert.deepEqual(
      jwks.keys.map((k: { alg: string }) => k.alg),
      ["ES256", "RS256"],
    );
    const named = JSON.parse(await ok("keys", "generate", "--kid", "2026-12"));
    assert.deepEqual(
      named.keys.map((k: { kid: string; alg: string }) => [k.kid, k.alg]),
      [["2026-12", "ES256"]],
    );
  });

  test("every secret is new", async () => {
    assert.notEqual(await ok("secrets-key"), await ok("secrets-key"));
    assert.notEqual(await ok("internal-api-key"), await ok("internal-api-key"));
    const a = JSON.parse(await ok("client", "new", "--id", "a"));
    const b = JSON.parse(await ok("client", "new", "--id", "a"));
    assert.notEqual(a.client_secret, b.client_secret);
  });
});

describe("--add-to", () => {
  test("keys: creates the file 0600, then appends last (published, not signing)", async () => {
    const file = join(dir, "rotation.json");
    assert.match(
      await ok("keys", "generate", "--kid", "old", "--add-to", file),
      /^wrote .*rotation\.json with ES256 key "old" as keys\[0\]; keys\[0\] signs\n$/,
    );
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(
      await ok("keys", "generate", "--alg", "RS256", "--kid", "new", "--add-to", file),
      /^added RS256 key "new" as keys\[1\] to .*rotation\.json: published, and signing once moved to keys\[0\]\n$/,
    );
    const config = loadConfig({ SIGNING_KEYS_FILE: file });
    assert.deepEqual(
      config.signingKeys.map((k) => k.kid),
      ["old", "new"],
    );
    await fails(
      65,
      /already has a key with kid "new"/,
      "keys",
      "generate",
      "--kid",
      "new",
      "--add-to",
      file,
    );
  });

  test("a missing folder is created 0700 (secrets/ for compose.yaml)", async () => {
    const file = join(dir, "new-folder", "signing-keys.json");
    await ok("keys", "generate", "--add-to", file);
    assert.equal(statSync(join(dir, "new-folder")).mode & 0o777, 0o700);
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  test("keys: a file the service would refuse is left alone", async () => {
    const file = join(dir, "broken-keys.json");
    writeFileSync(file, JSON.stringify({ keys: [{ kid: "x", alg: "HS256" }] }));
    await fails(
      65,
      /broken-keys\.json keys\[0\]: "alg" must be one of/,
      "keys",
      "generate",
      "--add-to",
      file,
    );
    writeFileSync(file, "{not json");
    await fails(65, /broken-keys\.json is not valid JSON/, "keys", "generate", "--add-to", file);
    assert.equal(readFileSync(file, "utf8"), "{not json");
  });

  test("clients: creates 0600, appends, refuses a duplicate id; the entry is still printed", async () => {
    const file = join(dir, "clients-add.json");
    const first = await cli("client", "new", "--id", "one", "--add-to", file);
    assert.equal(first.code, 0, first.err);
    assert.match(first.err, /^added client "one" to .*clients-add\.json/);
    const entry = JSON.parse(first.out);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const second = await cli(
      "client",
      "new",
      "--id",
      "two",
      "--auth-method",
      "none",
      "--add-to",
      file,
    );
    assert.equal(second.code, 0, second.err);
    const config = loadConfig({ CLIENTS_FILE: file });
    assert.deepEqual([...config.clients.keys()], ["one", "two"]);
    assert.equal(config.clients.get("one")?.clientSecret, entry.client_secret);
    await fails(65, /already has a client "one"/, "client", "new", "--id", "one", "--add-to", file);
  });

  test("client new --jwks refuses a key the service would refuse at load (exit 65)", async () => {
    // An RSA key with a huge public exponent: each signature check would cost
    // milliseconds, so the key policy refuses it (bounded key cost).
    const { publicKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicExponent: 65539,
    });
    const file = join(dir, "weak-client-key.json");
    writeFileSync(
      file,
      JSON.stringify({ keys: [{ ...publicKey.export({ format: "jwk" }), alg: "RS256" }] }),
    );
    await fails(
      65,
      /^token-service: client new: --jwks keys\[0\] is refused \(RSA public exponent must be 65537\): keys must be RSA of 2048 to 4096 bits with exponent 65537, EC on P-256 or P-384, or Ed25519\n$/,
      "client",
      "new",
      "--id",
      "weak",
      "--auth-method",
      "private_key_jwt",
      "--jwks",
      file,
    );
  });
});

describe("usage errors: one line, exit 64", () => {
  const cases: [string[], RegExp][] = [
    [["nope"], /unknown command "nope"/],
    [
      ["keys", "generate", "--alg", "HS256"],
      /--alg must be one of ES256, EdDSA, Ed25519, RS256, PS256/,
    ],
    [["keys", "generate", "--bits", "4096"], /unknown option '--bits'/],
    [["keys", "generate", "--alg", "ES256", "--alg", "RS256", "--kid", "k"], /--kid names one key/],
    [["keys", "generate", "--alg"], /argument missing/],
    [["client", "new"], /--id <client_id> is required/],
    [["client", "new", "--id", "a b"], /--id must be printable ASCII/],
    [["client", "new", "--id", "x", "--auth-method", "client_secret_jwt"], /--auth-method must/],
    [["client", "new", "--id", "x", "--grant", "password"], /--grant must be one of/],
    [["client", "new", "--id", "x", "--auth-method", "private_key_jwt"], /needs --jwks/],
    [["client", "new", "--id", "x", "--jwks", "k.json"], /--jwks is only for/],
    [["totp"], /a base32 secret is required/],
    [["secrets-key", "extra"], /unexpected argument 'extra'/],
  ];
  for (const [args, pattern] of cases) {
    test(args.join(" "), () => fails(64, pattern, ...args));
  }

  test("db migrate without DATABASE_URL: exit 78, one line", () =>
    fails(78, /^token-service: db migrate: DATABASE_URL is not set\n$/, "db", "migrate"));

  test("no command prints the help on stderr", async () => {
    const run = await cli();
    assert.equal(run.code, 64);
    assert.match(run.err, /^Usage: token-service <command>/);
  });

  test("--help of every command is on stdout, exit 0", async () => {
    for (const command of [
      ["--help"],
      ["keys", "generate", "--help"],
      ["secrets-key", "--help"],
      ["internal-api-key", "--help"],
      ["client", "new", "--help"],
      ["config", "check", "--help"],
      ["db", "migrate", "--help"],
      ["totp", "-h"],
    ]) {
      assert.match(await ok(...command), /^Usage: token-service /, command.join(" "));
    }
  });
});

describe("totp", () => {
  // RFC 6238 Appendix B: the SHA-1 seed "12345678901234567890" at T = 59 s is 94287082;
  // six digits are its last six.
  const RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

  test("the RFC 6238 vector, also typed in groups and lower case", () => {
    for (const args of [
      [RFC_SECRET],
      ["gezd gnbv gy3t qojq gezd gnbv gy3t qojq"],
      ["GEZD", "GNBV", "GY3T", "QOJQ", "GEZDGNBVGY3TQOJQ"],
    ]) {
      let out = "";
      const code = totp(
        args,
        {
          out: (t) => {
            out += t;
          },
          err: () => {},
          env: {},
        },
        59_000,
      );
      assert.deepEqual([code, out], [0, "287082\n"]);
    }
  });

  test("the current code is the service's", async () => {
    const before = Math.floor(Date.now() / 1000);
    const out = await ok("totp", RFC_SECRET);
    const after = Math.floor(Date.now() / 1000);
    const candidates = new Set([
      generateTotp(Buffer.from("12345678901234567890"), before),
      generateTotp(Buffer.from("12345678901234567890"), after),
    ]);
    assert.ok(candidates.has(out.trim()), out);
  });

  test("a bad secret: one line, exit 65, the secret not echoed", async () => {
    await fails(65, /the secret is not base32/, "totp", "not-a-secret!");
    const run = await cli("totp", "not-a-secret!");
    assert.ok(!run.err.includes("not-a-secret"));
    await fails(65, /80 bits; TOTP secrets are at least 128 bits/, "totp", "JBSWY3DPEHPK3PXP");
  });
});
