/**
 * The README's walk-through, run as a newcomer runs it: the service started
 * with the command the README gives (`npm start`, the embedded default) with
 * its printed INTERNAL_API_KEY read from stdout, then every ```sh block
 * between the walkthrough markers pasted, in order, into one bash session in
 * the repository folder (variables carry over from block to block). Only two
 * lines are changed: `KEY=<the printed key>` gets the printed key and
 * `B=http://localhost:8080` the port this test picked. A command of the README
 * that breaks shows up as a missing or wrong output of its block.
 *
 * No block waits for a new TOTP time step: each code is the first one of its
 * authenticator, and the lost-phone path uses the recovery code. So the test
 * runs in seconds on the real clock.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { fromBinary } from "@bufbuild/protobuf";
import { OAuthErrorSchema } from "@token-service/client";
import { decodeJwt } from "jose";
import {
  fencedBlocks,
  jsonDocuments,
  markedSection,
  readMarkdown,
} from "../support/markdown-blocks.js";
import { freePort } from "../support/redis-server.js";
import { baseEnv, REPO } from "../support/run-process.js";

const run = promisify(execFile);

const section = markedSection(readMarkdown(join(REPO, "README.md")), "walkthrough");
const blocks = fencedBlocks(section);
const shBlocks = blocks.filter((block) => block.lang === "sh").map((block) => block.code);
const KEY_LINE = "KEY=<the printed key>";
const BASE_LINE = "B=http://localhost:8080";

interface Started {
  child: ChildProcess;
  key: string;
  port: number;
  exited: Promise<void>;
  /** What it printed on stdout so far. */
  stdout(): string;
}

/** Stops npm, its shell and node together (their process group). */
async function stopStarted(started: Started): Promise<void> {
  if (started.child.exitCode !== null) return;
  process.kill(-(started.child.pid as number), "SIGTERM");
  const timer = setTimeout(() => process.kill(-(started.child.pid as number), "SIGKILL"), 10_000);
  await started.exited;
  clearTimeout(timer);
}

/** `npm start` in its own process group, so that npm, its shell and node stop together. */
async function startAsReadmeSays(port: number): Promise<Started> {
  const child = spawn("npm", ["start"], {
    cwd: REPO,
    // Nothing of this test's environment (e.g. CI's REDIS_URL) leaks in: the
    // embedded default, as on a newcomer's machine. MANAGEMENT_PORT=0: the
    // default 9464 is one fixed port on a machine shared with other test runs;
    // no command of the walk-through uses it.
    env: { ...baseEnv(), PORT: String(port), MANAGEMENT_PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stdout = "";
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const key = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`npm start printed no key and no listening line:\n${stdout}${stderr}`)),
      30_000,
    );
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      const printed = /Generated INTERNAL_API_KEY[^\n]*\n\s*(\S+)\n/.exec(stdout)?.[1];
      if (printed !== undefined && stdout.includes('"event":"listening"')) {
        clearTimeout(timer);
        resolve(printed);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited (${code}):\n${stdout}${stderr}`));
    });
  });
  return { child, key, port, exited, stdout: () => stdout };
}

/** The session: the blocks in order, each followed by a marker line that splits the output. */
function sessionScript(key: string, port: number): string {
  const substitute = (code: string, line: string, by: string) => {
    assert.equal(code.split("\n").filter((l) => l === line).length, 1, `the README has "${line}"`);
    return code.replace(line, by);
  };
  const first = substitute(
    substitute(shBlocks[0] ?? "", KEY_LINE, `KEY=${key}`),
    BASE_LINE,
    `B=http://localhost:${port}`,
  );
  const parts = ["set -u", "exec 2>&1"];
  [first, ...shBlocks.slice(1)].forEach((code, index) => {
    parts.push(code, `printf '\\n@@block-end ${index}\\n'`);
  });
  return `${parts.join("\n")}\n`;
}

/** The output of each block, by index. */
function splitOutput(output: string): string[] {
  const outputs: string[] = [];
  let rest = output;
  for (let index = 0; index < shBlocks.length; index++) {
    const marker = `\n@@block-end ${index}\n`;
    const at = rest.indexOf(marker);
    assert.ok(at >= 0, `sh block ${index + 1} ran to its end; the session printed:\n${output}`);
    outputs.push(rest.slice(0, at).trim());
    rest = rest.slice(at + marker.length);
  }
  return outputs;
}

const lines = (text: string) => text.split("\n").filter((line) => line !== "");
const JWT = /^[\w-]+\.[\w-]+\.[\w-]+$/;

type Answer = Record<string, unknown>;

/** The `index`-th JSON document a block printed (it must have printed it). */
function printed(output: string, index = 0): Answer {
  const document = jsonDocuments(output)[index];
  assert.ok(typeof document === "object" && document !== null, `JSON #${index + 1} printed`);
  return document as Answer;
}
/** What the blocks printed that later blocks' checks compare against. */
interface Seen {
  recoveryCode?: string;
  refreshToken?: string;
  deletedId?: string;
  issuer?: string;
}

/** One check per ```sh block, in README order. */
const expectations: Array<{ what: string; check: (output: string, seen: Seen) => void }> = [
  {
    what: "setup: KEY, B and the json helper print nothing",
    check: (output) => assert.equal(output, ""),
  },
  {
    what: "1. IssueMfaToken answers an mfa_token and asks for enrollment",
    check: (output) => {
      const issued = printed(output);
      assert.equal(typeof issued.mfaToken, "string");
      assert.ok(String(issued.mfaToken).length > 20);
      assert.equal(issued.expiresIn, 600);
      assert.deepEqual(issued.mfaRequirements, { enroll: [{ type: "otp" }] });
    },
  },
  {
    what: "2. Associate shows the secret and the recovery code",
    check: (output, seen) => {
      const enrolled = printed(output);
      assert.equal(enrolled.authenticator_type, "otp");
      assert.match(String(enrolled.secret), /^[A-Z2-7]{32}$/);
      assert.match(String(enrolled.barcode_uri), /^otpauth:\/\/totp\//);
      const codes = enrolled.recovery_codes as string[];
      assert.equal(codes.length, 1);
      seen.recoveryCode = codes[0];
      assert.equal(lines(output).at(-1), `Recovery code, shown once: keep it. ${codes[0]}`);
    },
  },
  {
    what: "3. the mfa-otp grant answers tokens and a refresh token",
    check: (output, seen) => {
      const tokens = printed(output);
      assert.equal(tokens.token_type, "Bearer", output);
      assert.equal(tokens.scope, "openid profile offline_access");
      assert.equal(tokens.expires_in, 86400);
      assert.match(String(tokens.access_token), JWT);
      assert.match(String(tokens.id_token), JWT);
      assert.equal(typeof tokens.refresh_token, "string");
      seen.refreshToken = tokens.refresh_token as string;
      const claims = decodeJwt(tokens.access_token as string);
      assert.equal(claims.sub, "user-1");
      assert.deepEqual(claims.amr, ["mfa", "otp"]);
    },
  },
  {
    what: "4. the refresh token is exchanged once for new tokens and its successor",
    check: (output, seen) => {
      const refreshed = printed(output);
      assert.equal(refreshed.token_type, "Bearer", output);
      assert.equal(refreshed.scope, "openid profile offline_access");
      assert.match(String(refreshed.access_token), JWT);
      assert.match(String(refreshed.id_token), JWT);
      assert.equal(typeof refreshed.refresh_token, "string");
      assert.notEqual(refreshed.refresh_token, seen.refreshToken, "a rotated successor");
    },
  },
  {
    what: "5. the recovery-code grant answers an MFA API token and a new recovery code",
    check: (output, seen) => {
      const recovered = printed(output);
      assert.equal(recovered.scope, "read:authenticators remove:authenticators", output);
      const claims = decodeJwt(recovered.access_token as string);
      assert.equal(claims.aud, `${seen.issuer}mfa/`);
      assert.deepEqual(claims.amr, ["mfa"]);
      assert.equal(typeof recovered.recovery_code, "string");
      assert.notEqual(recovered.recovery_code, seen.recoveryCode, "the used code is replaced");
      assert.equal(lines(output).at(-1), `New recovery code: keep it. ${recovered.recovery_code}`);
    },
  },
  {
    what: "6. the authenticators are listed and the OTP one is deleted (204)",
    check: (output, seen) => {
      const listed = printed(output) as unknown as Answer[];
      assert.deepEqual(
        listed.map((a) => [a.authenticator_type, a.active]),
        [
          ["otp", true],
          ["recovery-code", true],
        ],
        output,
      );
      seen.deletedId = listed[0]?.id as string;
      assert.match(seen.deletedId, /^totp\|/);
      assert.equal(lines(output).at(-1), "204");
    },
  },
  {
    what: "7–8. the new phone is enrolled with buf curl; its first code works over gRPC, once",
    check: (output) => {
      const verified = printed(output, 0);
      const failed = printed(output, 1);
      assert.equal(verified.tokenType, "Bearer", output);
      assert.equal(verified.scope, "openid");
      assert.match(String(verified.accessToken), JWT);
      assert.match(String(verified.idToken), JWT);
      assert.equal(failed.code, "failed_precondition", output);
      assert.equal(failed.message, "mfa_token is expired");
      const [detail] = failed.details as Array<{ type: string; value: string }>;
      assert.equal(detail?.type, "token.v1.OAuthError");
      const decoded = fromBinary(OAuthErrorSchema, Buffer.from(detail?.value ?? "", "base64"));
      assert.deepEqual(
        { error: decoded.error, errorDescription: decoded.errorDescription },
        { error: "expired_token", errorDescription: "mfa_token is expired" },
      );
      assert.equal(lines(output).at(-1), "exit status 72");
    },
  },
  {
    what: "health and reflection with buf curl",
    check: (output) => {
      for (const name of [
        "token.v1.TokenService",
        "token.v1.MfaService",
        "token.v1.MfaTokenService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
      ]) {
        assert.ok(lines(output).includes(name), `${name} listed:\n${output}`);
      }
      assert.deepEqual(jsonDocuments(output), [{ status: "SERVING" }]);
    },
  },
];

let service: Started;
let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), "token-service-walkthrough-"));
});
after(async () => {
  if (service !== undefined) await stopStarted(service);
  await rm(work, { recursive: true, force: true });
});

test("npm start prints the service's URL and the demo page's address", async () => {
  const port = await freePort();
  const started = await startAsReadmeSays(port);
  try {
    // Printed right after the key, possibly in a later chunk of the pipe.
    for (let i = 0; i < 100 && !started.stdout().includes("The demo page"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.match(
      started.stdout(),
      new RegExp(
        `\ntoken-service is listening on http://localhost:${port}/ \\(another port: PORT=9090 npm start\\)\nThe demo page: http://localhost:${port}/demo\n`,
      ),
    );
  } finally {
    await stopStarted(started);
  }
});

test("the README starts the service with npm start", () => {
  const starts = blocks.filter((block) => block.lang === "").map((block) => block.code.trim());
  assert.deepEqual(starts, ["npm start"]);
});

test("every sh block of the README walk-through runs as written", {
  timeout: 180_000,
}, async () => {
  assert.equal(
    shBlocks.length,
    expectations.length,
    `the walk-through has ${shBlocks.length} sh blocks and this test checks ${expectations.length}: change both together`,
  );
  service = await startAsReadmeSays(await freePort());
  const script = join(work, "walkthrough.sh");
  await writeFile(script, sessionScript(service.key, service.port));
  const { stdout } = await run("bash", [script], {
    cwd: REPO,
    env: baseEnv(),
    timeout: 150_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const outputs = splitOutput(stdout);
  // ISSUER_URL's default, http://localhost:$PORT/: the README reads it from discovery.
  const seen: Seen = { issuer: `http://localhost:${service.port}/` };
  expectations.forEach(({ what, check }, index) => {
    try {
      check(outputs[index] ?? "", seen);
    } catch (error) {
      throw new Error(`sh block ${index + 1} (${what}) printed:\n${outputs[index]}`, {
        cause: error,
      });
    }
  });

  // The final state, asked of the service directly: one new, active OTP
  // authenticator (not the deleted one) and the recovery code.
  const issued = await fetch(
    `http://127.0.0.1:${service.port}/token.v1.MfaTokenService/IssueMfaToken`,
    {
      method: "POST",
      headers: { authorization: `Bearer ${service.key}`, "content-type": "application/json" },
      body: JSON.stringify({ userId: "user-1", clientId: "demo-app" }),
    },
  );
  const { mfaToken, mfaRequirements } = (await issued.json()) as {
    mfaToken: string;
    mfaRequirements: unknown;
  };
  assert.deepEqual(mfaRequirements, { challenge: [{ type: "otp" }] });
  const listed = await fetch(`http://127.0.0.1:${service.port}/mfa/authenticators`, {
    headers: { authorization: `Bearer ${mfaToken}` },
  });
  const authenticators = (await listed.json()) as Array<Answer>;
  assert.deepEqual(
    authenticators.map((a) => [a.authenticator_type, a.active]),
    [
      ["otp", true],
      ["recovery-code", true],
    ],
  );
  assert.notEqual(authenticators[0]?.id, seen.deletedId);
});
