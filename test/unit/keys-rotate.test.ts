// `token-service keys promote|retire <kid>` (src/cli/keys-rotate.ts, run
// in-process on real files): the key order a rotation needs, the file
// rewritten whole with its 0600 mode kept, the loader accepting the result and
// signing with the promoted key; refusals are one line with the exit status.

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, beforeEach, describe, test } from "node:test";
import type { CliIo } from "../../src/cli/cli-io.js";
import { runCli } from "../../src/cli/run-cli.js";
import { DEMO_CLIENTS_FILE, loadConfig } from "../../src/config.js";

const dir = mkdtempSync(join(tmpdir(), "token-service-rotate-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function cli(env: Record<string, string>, ...args: string[]) {
  let out = "";
  let err = "";
  const io: CliIo = {
    out: (text) => {
      out += text;
    },
    err: (text) => {
      err += text;
    },
    env,
  };
  const code = await runCli(args, io);
  return { code, out, err };
}

const kidsOf = (file: string) =>
  (JSON.parse(readFileSync(file, "utf8")) as { keys: { kid: string }[] }).keys.map((k) => k.kid);

describe("keys promote / retire", () => {
  let file: string;
  let env: Record<string, string>;
  beforeEach(async () => {
    file = join(mkdtempSync(join(dir, "case-")), "signing-keys.json");
    env = { SIGNING_KEYS_FILE: file };
    // The rotation's start: the old ES256 signer, an RS256 key, a new ES256 key added last.
    for (const [alg, kid] of [
      ["ES256", "old"],
      ["RS256", "rs"],
      ["ES256", "new"],
    ] as const) {
      const run = await cli(env, "keys", "generate", "--alg", alg, "--kid", kid, "--add-to", file);
      assert.equal(run.code, 0, run.err);
    }
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  test("promote moves the key first (it signs after a reload); the mode stays 0600", async () => {
    const run = await cli(env, "keys", "promote", "new");
    assert.equal(run.code, 0, run.err);
    assert.equal(
      run.out,
      `moved ES256 key "new" to keys[0] of ${file}: it signs access tokens once the service reloads (send SIGHUP: kill -HUP <pid>)\n`,
    );
    assert.deepEqual(kidsOf(file), ["new", "old", "rs"]);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    // No temporary file left beside it.
    assert.deepEqual(readdirSync(join(file, "..")), ["signing-keys.json"]);
    // The loader takes it, and the promoted key signs.
    const config = loadConfig({ SIGNING_KEYS_FILE: file, CLIENTS_FILE: DEMO_CLIENTS_FILE });
    assert.equal(config.signingKeys[0]?.kid, "new");
  });

  test("promote of the first key changes nothing; --file names another file", async () => {
    const run = await cli({}, "keys", "promote", "old", "--file", file);
    assert.equal(run.code, 0, run.err);
    assert.match(run.out, /"old" is already keys\[0\] .*nothing changed/);
    assert.deepEqual(kidsOf(file), ["old", "rs", "new"]);
  });

  test("retire removes a key that no longer signs", async () => {
    assert.equal((await cli(env, "keys", "promote", "new")).code, 0);
    const run = await cli(env, "keys", "retire", "old");
    assert.equal(run.code, 0, run.err);
    assert.match(
      run.out,
      /^removed ES256 key "old" from .*kill -HUP <pid>\); tokens it signed stop verifying then\n$/,
    );
    assert.deepEqual(kidsOf(file), ["new", "rs"]);
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  test("retiring the last key of an algorithm warns about ID tokens", async () => {
    const run = await cli(env, "keys", "retire", "rs");
    assert.equal(run.code, 0, run.err);
    assert.match(run.out, /No RS256 key is left: .*token-service config check\)\n$/);
  });

  test("refusals: one line, the file untouched", async () => {
    const before = readFileSync(file, "utf8");
    const cases: Array<[string[], Record<string, string>, number, RegExp]> = [
      [
        ["keys", "retire", "old"],
        env,
        65,
        /keys\[0\] .*the key that signs: promote another key first \(token-service keys promote <kid>\)/,
      ],
      [
        ["keys", "promote", "nope"],
        env,
        65,
        /has no key with kid "nope" \(it has "old", "rs", "new"\)/,
      ],
      [["keys", "promote"], env, 64, /give one <kid>/],
      [["keys", "promote", "a", "b"], env, 64, /give one <kid>/],
      [["keys", "promote", "old"], {}, 64, /no file: set SIGNING_KEYS_FILE or give --file <file>/],
      [["keys", "retire", "old", "--file", join(dir, "missing.json")], {}, 74, /does not exist/],
    ];
    for (const [args, runEnv, code, pattern] of cases) {
      const run = await cli(runEnv, ...args);
      assert.equal(run.code, code, `${args.join(" ")}: ${run.err}`);
      assert.equal(run.out, "");
      assert.match(run.err, /^token-service: keys (promote|retire): [^\n]+\n$/);
      assert.match(run.err, pattern, args.join(" "));
    }
    assert.equal(readFileSync(file, "utf8"), before);
  });

  test("the only key cannot be retired; a file the service would refuse is left alone", async () => {
    const single = join(dir, "single.json");
    assert.equal((await cli({}, "keys", "generate", "--kid", "only", "--add-to", single)).code, 0);
    const only = await cli({}, "keys", "retire", "only", "--file", single);
    assert.equal(only.code, 65);
    assert.match(only.err, /"only" is the only key of .*add another first/);
    const broken = join(dir, "broken.json");
    writeFileSync(broken, JSON.stringify({ keys: [{ kid: "x", alg: "HS256" }] }));
    const refused = await cli({}, "keys", "promote", "x", "--file", broken);
    assert.equal(refused.code, 65);
    assert.match(refused.err, /keys\[0\]: "alg" must be one of/);
  });

  test("help: the rotation's steps, and --version in the top-level help", async () => {
    for (const command of ["promote", "retire"]) {
      const run = await cli({}, "keys", command, "--help");
      assert.equal(run.code, 0);
      assert.match(run.out, new RegExp(`^Usage: token-service keys ${command} <kid>`));
      assert.match(run.out, /3\. token-service keys promote <new kid>/);
    }
    const help = await cli({}, "--help");
    assert.match(help.out, /^ {2}--version, -v {3}the version of token-service$/m);
    assert.match(help.out, /keys promote <kid> \[--file <file>\]/);
    assert.match(help.out, /keys retire <kid> \[--file <file>\]/);
    const version = await cli({}, "--version");
    assert.match(version.out, /^token-service \d+\.\d+\.\d+\n$/);
  });
});
