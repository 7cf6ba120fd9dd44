// `npm run demo`: the demo flow in a terminal against a started service on
// the embedded default (the demo client, a generated key per run, the real
// clock, as `npm start` runs it). Success prints the QR code, the token
// response, the decoded claims and the MFA API deletion and exits 0; a
// service that is down or answers an error is one line on stderr and a
// non-zero exit.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type App, createApp } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { runTerminalDemo } from "../../src/demo/terminal-demo.js";
import { generateTotp } from "../../src/mfa/totp.js";
import { freePort } from "../support/redis-server.js";
import { baseEnv, runProcess } from "../support/run-process.js";
import { TEST_INTERNAL_API_KEY } from "../support/test-service.js";

let app: App;
let url: string;
before(async () => {
  app = createApp(
    loadConfig({ PORT: "0", INTERNAL_API_KEY: TEST_INTERNAL_API_KEY, LOG_LEVEL: "silent" }),
  );
  const { port } = await app.listen(0);
  url = `http://127.0.0.1:${port}`;
});
after(async () => {
  await app.close(1000);
});

const npmRunDemo = (args: string[], env: Record<string, string> = {}) =>
  runProcess("npm", ["run", "-s", "demo", "--", ...args], {
    env: { ...baseEnv(), ...env },
    timeoutMs: 60_000,
  });

// biome-ignore lint/suspicious/noControlCharactersInRegex: the QR code's ANSI colours are removed.
const plain = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, "");

/** The JSON block printed after a heading line (indented by three spaces). */
function jsonAfter(output: string, heading: string): Record<string, unknown> {
  const start = output.indexOf(`${heading}\n`);
  assert.ok(start >= 0, `"${heading}" was printed`);
  const lines = output.slice(start + heading.length + 1).split("\n");
  const end = lines.findIndex((line) => line === "   }" || line === "   ]");
  return JSON.parse(lines.slice(0, end + 1).join("\n"));
}

describe("npm run demo -- --auto", () => {
  test("runs the whole flow and exits 0", async () => {
    const result = await npmRunDemo(["--auto", "--url", url], {
      INTERNAL_API_KEY: TEST_INTERNAL_API_KEY,
    });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    const out = plain(result.stdout);
    // The QR code as text: rows of block characters.
    assert.ok(out.split("\n").filter((line) => /^[ ▄▀█]{25,}$/.test(line)).length >= 15);
    const userId = /new user (demo-[A-Za-z0-9_-]{22})\n/.exec(out)?.[1];
    assert.ok(userId);
    assert.match(out, /\n {3}code \(computed, --auto\): \d{6}\n/);
    const tokens = jsonAfter(out, "   token response:");
    assert.deepEqual(
      { token_type: tokens.token_type, scope: tokens.scope },
      { token_type: "Bearer", scope: "openid profile" },
    );
    const access = jsonAfter(out, "   access token:") as {
      header: Record<string, unknown>;
      claims: Record<string, unknown>;
    };
    assert.equal(access.header.typ, "at+jwt");
    assert.deepEqual(
      { sub: access.claims.sub, client_id: access.claims.client_id, amr: access.claims.amr },
      { sub: userId, client_id: "demo-app", amr: ["mfa", "otp"] },
    );
    const id = jsonAfter(out, "   ID token:") as { claims: Record<string, unknown> };
    assert.deepEqual({ sub: id.claims.sub, aud: id.claims.aud }, { sub: userId, aud: "demo-app" });
    const recovered = jsonAfter(out, "   POST /oauth/token, grant mfa-recovery-code:");
    assert.deepEqual(recovered.amr, ["mfa"]);
    assert.match(out, /\n {3}DELETE \/mfa\/authenticators\/totp%7C[A-Za-z0-9_-]+ → 204\n/);
    assert.match(out, /\nDone: /);
    // The service agrees: the user's OTP authenticator is gone.
    assert.equal(await app.ctx.store.getAuthenticator(userId), null);
  });

  test("a service that is down: one line on stderr, exit 1", async () => {
    const port = await freePort(); // nothing listens there
    const result = await npmRunDemo([
      "--auto",
      "--url",
      `http://127.0.0.1:${port}`,
      "--internal-key",
      TEST_INTERNAL_API_KEY,
    ]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      `demo: cannot reach the service at http://127.0.0.1:${port} (ECONNREFUSED); start it with npm start, or pass --url\n`,
    );
  });

  test("a service that answers an error (a wrong internal key): one line, exit 1", async () => {
    const result = await npmRunDemo([
      "--auto",
      "--url",
      url,
      "--internal-key",
      "not-the-internal-api-key",
    ]);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      "demo: POST /token.v1.MfaTokenService/IssueMfaToken answered 401 unauthenticated: Unauthorized\n",
    );
  });

  test("without an internal key: one usage line, exit 64", async () => {
    const result = await npmRunDemo(["--auto", "--url", url]);
    assert.equal(result.code, 64);
    assert.equal(
      result.stderr,
      "demo: the internal API key is needed: pass --internal-key <key> or set INTERNAL_API_KEY (npm start prints the generated one)\n",
    );
  });
});

describe("the demo without --auto", () => {
  test("asks for the code, retries after a wrong one, and completes", async () => {
    let out = "";
    const prompts: string[] = [];
    const code = await runTerminalDemo(["--url", url, "--internal-key", TEST_INTERNAL_API_KEY], {
      out: (text) => {
        out += text;
      },
      err: (text) => assert.fail(`unexpected stderr: ${text}`),
      env: {},
      nowMs: () => Date.now(),
      // The person reads the secret off the screen; the first try is a typo.
      async readLine(prompt) {
        prompts.push(prompt);
        const secret = /secret: +([A-Z2-7]+)\n/.exec(out)?.[1];
        assert.ok(secret, "the secret was shown before the prompt");
        const now = Math.floor(Date.now() / 1000);
        if (prompts.length > 1) return generateTotp(secret, now);
        // Wrong at the step before, now and after (the clock may move on meanwhile).
        const near = new Set([-30, 0, 30].map((d) => generateTotp(secret, now + d)));
        return ["000000", "111111", "222222", "333333"].find((c) => !near.has(c));
      },
    });
    assert.equal(code, 0);
    assert.equal(prompts.length, 2);
    assert.match(out, /answered 400 invalid_grant: Invalid otp_code\.; try again\n/);
    assert.match(out, /\nDone: /);
  });
});
