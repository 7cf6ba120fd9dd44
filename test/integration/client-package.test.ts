/**
 * The published client package: `npm pack -w gen --pack-destination`, install
 * the tarball with its peer dependencies into a fresh folder outside the
 * repository, and call the running service from there over gRPC and Connect,
 * as an outside consumer would (no source condition, no workspace link). The
 * install commands, the example and the expected output are gen/README.md's
 * own blocks, run as written; the shipped examples/quickstart.mjs logs in end
 * to end against the service as `npm start` runs it (real clock, demo client).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { uniqueUserId } from "../support/flows.js";
import { fencedBlocks, readMarkdown } from "../support/markdown-blocks.js";
import { baseEnv } from "../support/run-process.js";
import { type ServiceProcess, startServiceProcess } from "../support/service-process.js";
import {
  CLIENTS,
  startTestService,
  TEST_INTERNAL_API_KEY,
  type TestService,
} from "../support/test-service.js";

// Async on purpose: the service runs in this process and must keep serving
// while the consumer script calls it.
const run = promisify(execFile);

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const GEN_DIST = join(REPO, "gen", "dist");
const PEERS = [
  "@bufbuild/protobuf@2.13.0",
  "@connectrpc/connect@2.1.2",
  "@connectrpc/connect-node@2.1.2",
];

/** What an outside consumer runs: argv = baseUrl, internal key, client id, secret, user id. */
const CONSUMER_SCRIPT = `
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { MfaTokenService, OAuthErrorSchema, TokenService } from "@token-service/client";

const [baseUrl, internalKey, clientId, clientSecret, userId] = process.argv.slice(2);
const transports = {
  grpc: createGrpcTransport({ baseUrl }),
  connect: createConnectTransport({ baseUrl, httpVersion: "1.1" }),
};
const results = {};
for (const [name, transport] of Object.entries(transports)) {
  const issued = await createClient(MfaTokenService, transport).issueMfaToken(
    { userId: userId + "-" + name, clientId, audience: "https://api.example.test", scope: "openid" },
    { headers: { authorization: "Bearer " + internalKey } },
  );
  let error = null;
  try {
    await createClient(TokenService, transport).verifyMfaOtp({
      mfaToken: issued.mfaToken,
      otp: "000000",
      clientId,
      clientSecret,
    });
  } catch (e) {
    const connectError = ConnectError.from(e);
    error = {
      code: Code[connectError.code],
      details: connectError.findDetails(OAuthErrorSchema).map((d) => ({
        error: d.error,
        errorDescription: d.errorDescription,
      })),
    };
  }
  results[name] = {
    mfaTokenIssued: issued.mfaToken.length > 0,
    expiresIn: issued.expiresIn,
    enroll: issued.mfaRequirements.enroll.map((r) => r.type),
    error,
  };
}
console.log(JSON.stringify(results));
`;

/** A consumer's TypeScript: the package's declarations must type-check against the peers. */
const CONSUMER_TS = `
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { MfaTokenService, OAuthErrorSchema, type VerifyMfaOtpResponse } from "@token-service/client";

const client: Client<typeof MfaTokenService> = createClient(
  MfaTokenService,
  createGrpcTransport({ baseUrl: "http://127.0.0.1:1" }),
);
export const token: Promise<string> = client.issueMfaToken({ userId: "u" }).then((r) => r.mfaToken);
export const typeName: "token.v1.OAuthError" = OAuthErrorSchema.typeName;
export const expiresIn = (r: VerifyMfaOtpResponse): number => r.expiresIn;
`;

const GEN_README = readMarkdown(join(REPO, "gen", "README.md"));
const README_BLOCKS = fencedBlocks(GEN_README);
/** The README's line that says where the clone is; the test's clone is this repository. */
const CLONE_LINE = /^TOKEN_SERVICE=\S+(\s+#.*)?$/m;

let service: TestService;
/** The service as `npm start` runs it: the embedded default, the real clock. */
let started: ServiceProcess;
let work: string;
const genDistExisted = existsSync(GEN_DIST);
before(async () => {
  [service, started] = await Promise.all([
    startTestService(),
    startServiceProcess({ INTERNAL_API_KEY: TEST_INTERNAL_API_KEY, MANAGEMENT_PORT: "0" }),
  ]);
  work = await mkdtemp(join(tmpdir(), "token-service-client-"));
});
after(async () => {
  await Promise.all([service.close(), started.stop()]);
  await rm(work, { recursive: true, force: true });
  // gen/dist is gitignored; leave the tree as it was found.
  if (!genDistExisted) await rm(GEN_DIST, { recursive: true, force: true });
});

let installed: Promise<string> | undefined;
/**
 * A consumer project outside the repository with the package installed by
 * gen/README.md's install block, run as written in the project's folder (only
 * the clone's path is this repository). Done once, shared by the tests.
 */
function consumerProject(): Promise<string> {
  installed ??= (async () => {
    const consumer = join(work, "consumer");
    await mkdir(consumer);
    await writeFile(
      join(consumer, "package.json"),
      JSON.stringify({ name: "consumer", private: true, type: "module" }),
    );
    const install = README_BLOCKS.find(
      (block) => block.lang === "sh" && /npm install/.test(block.code),
    );
    assert.ok(install, "gen/README.md has an install block");
    assert.match(install.code, CLONE_LINE);
    // The peers at the versions the repository pins (the Node 20 line).
    for (const peer of PEERS) assert.ok(install.code.includes(peer), `the install names ${peer}`);
    const script = `set -eu\n${install.code.replace(CLONE_LINE, `TOKEN_SERVICE='${REPO}'`)}`;
    // The peers are in the npm cache (the repo installed them): prefer it to
    // the registry, which is asked only for what is missing.
    await run("bash", ["-c", script], {
      cwd: consumer,
      env: {
        ...baseEnv(),
        npm_config_prefer_offline: "true",
        npm_config_audit: "false",
        npm_config_fund: "false",
      },
    });
    const tarballs = (await readdir(consumer)).filter((name) => name.endsWith(".tgz"));
    assert.equal(tarballs.length, 1, `one tarball in the project: ${tarballs.join(", ")}`);
    const strayTarballs = (await readdir(REPO)).filter((name) => name.endsWith(".tgz"));
    assert.deepEqual(strayTarballs, [], "nothing packed into the repository");
    return consumer;
  })();
  return installed;
}

test("the packed client installs into a fresh project and calls the service", {
  timeout: 180_000,
}, async () => {
  const consumer = await consumerProject();
  await writeFile(join(consumer, "call.mjs"), CONSUMER_SCRIPT);
  const { stdout } = await run(
    process.execPath,
    [
      "call.mjs",
      service.baseUrl,
      TEST_INTERNAL_API_KEY,
      CLIENTS.post.id,
      CLIENTS.post.secret,
      uniqueUserId("package"),
    ],
    { cwd: consumer },
  );
  // The user has no authenticator, so any code is row 9.
  const expected = {
    mfaTokenIssued: true,
    expiresIn: 600,
    enroll: ["otp"],
    error: {
      code: "FailedPrecondition",
      details: [{ error: "invalid_grant", errorDescription: "Invalid otp_code." }],
    },
  };
  assert.deepEqual(JSON.parse(stdout), { grpc: expected, connect: expected });

  await writeFile(join(consumer, "check.ts"), CONSUMER_TS);
  await writeFile(
    join(consumer, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: [],
      },
      files: ["check.ts"],
    }),
  );
  const tsc = join(REPO, "node_modules", "typescript", "bin", "tsc");
  await run(process.execPath, [tsc, "-p", consumer], { cwd: consumer });
});

test("the tarball holds the compiled code, the README and the example, not the sources", {
  timeout: 180_000,
}, async () => {
  const consumer = await consumerProject();
  const tarball = (await readdir(consumer)).find((name) => name.endsWith(".tgz")) as string;
  const { stdout } = await run("tar", ["-tzf", tarball], { cwd: consumer });
  const files = stdout.split("\n").filter((name) => name !== "");
  for (const name of [
    "package/package.json",
    "package/README.md",
    "package/LICENSE",
    "package/examples/quickstart.mjs",
    "package/dist/index.js",
    "package/dist/index.d.ts",
  ]) {
    assert.ok(files.includes(name), `${name} is packed`);
  }
  assert.deepEqual(
    files.filter(
      (name) =>
        name.startsWith("package/src/") || (name.endsWith(".ts") && !name.endsWith(".d.ts")),
    ),
    [],
  );
});

test("gen/README.md's example runs as written and prints what the README shows", {
  timeout: 180_000,
}, async () => {
  const consumer = await consumerProject();
  const example = README_BLOCKS.find((block) => block.lang === "js");
  assert.ok(example, "gen/README.md has a js example");
  // The untagged block right after the example is its output.
  const output = README_BLOCKS[README_BLOCKS.indexOf(example) + 1];
  assert.equal(output?.lang, "", "the example's output follows it");
  await writeFile(join(consumer, "example.mjs"), example.code);
  const result = await run(process.execPath, ["example.mjs"], {
    cwd: consumer,
    env: {
      ...baseEnv(),
      INTERNAL_API_KEY: TEST_INTERNAL_API_KEY,
      TOKEN_SERVICE_URL: started.baseUrl,
    },
  });
  assert.equal(result.stderr, "");
  assert.equal(result.stdout, output?.code);
});

/** examples/quickstart.mjs's lines (five numbered steps and the recovery code). */
function assertQuickstartOutput(stdout: string): void {
  const lines = stdout.trimEnd().split("\n");
  assert.equal(lines.length, 6, stdout);
  assert.equal(lines[0], "1. IssueMfaToken (Connect): an mfa_token for 600 s; enroll: otp");
  assert.match(lines[1] as string, /^2\. Associate \(Connect\): secret [A-Z2-7]{32}$/);
  assert.match(lines[2] as string, /^ {3}recovery code \(shown once, keep it\): [0-9A-Z]{24}$/);
  assert.match(
    lines[3] as string,
    /^3\. VerifyMfaOtp \(gRPC\): Bearer token for 86400 s, sub quickstart-[0-9a-f-]{36}, amr mfa,otp, scope "openid", id_token: true$/,
  );
  assert.equal(
    lines[4],
    '4. the same call again (gRPC): FailedPrecondition: expired_token "mfa_token is expired"',
  );
  assert.equal(lines[5], "5. ResetUserMfa (Connect): 1 authenticator removed, 0 sessions revoked");
}

test("examples/quickstart.mjs logs in end to end from the installed package", {
  timeout: 180_000,
}, async () => {
  const consumer = await consumerProject();
  const shipped = join("node_modules", "@token-service", "client", "examples", "quickstart.mjs");
  const ok = await run(
    process.execPath,
    [shipped, "--url", started.baseUrl, "--key", TEST_INTERNAL_API_KEY],
    {
      cwd: consumer,
      env: baseEnv(),
    },
  );
  assert.equal(ok.stderr, "");
  assertQuickstartOutput(ok.stdout);

  // The flags may come from the environment; a failed call is one line and exit 1.
  const refused = await run(process.execPath, [shipped], {
    cwd: consumer,
    env: {
      ...baseEnv(),
      TOKEN_SERVICE_URL: started.baseUrl,
      INTERNAL_API_KEY: "not-the-internal-key",
    },
  }).then(
    () => assert.fail("a wrong internal key exits non-zero"),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
  assert.equal(refused.code, 1);
  assert.equal(refused.stdout, "");
  assert.equal(
    refused.stderr,
    `quickstart: Unauthenticated: access_denied "Unauthorized"\nquickstart: is token-service running at ${started.baseUrl}, with this internal key?\n`,
  );

  // No key at all: said before any call.
  const noKey = await run(process.execPath, [shipped, "--url", started.baseUrl], {
    cwd: consumer,
    env: baseEnv(),
  }).then(
    () => assert.fail("a missing internal key exits non-zero"),
    (error: { code: number; stderr: string }) => error,
  );
  assert.equal(noKey.code, 2);
  assert.match(
    noKey.stderr,
    /^quickstart: no internal key: pass --key <INTERNAL_API_KEY> or set INTERNAL_API_KEY/,
  );

  // --help: the usage on stdout, exit 0, no call made; an unknown flag: usage on stderr, exit 2.
  const help = await run(process.execPath, [shipped, "--help"], { cwd: consumer, env: baseEnv() });
  assert.equal(help.stderr, "");
  assert.match(
    help.stdout,
    /^Usage: node quickstart\.mjs --key <INTERNAL_API_KEY> \[--url <url>\]/,
  );
  assert.match(help.stdout, /^ {2}-h, --help {15}this help$/m);
  const unknown = await run(process.execPath, [shipped, "--nope"], {
    cwd: consumer,
    env: baseEnv(),
  }).then(
    () => assert.fail("an unknown flag exits non-zero"),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stdout, "");
  assert.match(
    unknown.stderr,
    /^quickstart: Unknown option '--nope'\n\nUsage: node quickstart\.mjs/,
  );
});

test("inside the repository, gen/examples/quickstart.mjs runs on the built package", {
  timeout: 180_000,
}, async () => {
  // Packing built gen/dist (prepack), which `npm run build -w gen` does too.
  await consumerProject();
  const { stdout, stderr } = await run(
    process.execPath,
    ["gen/examples/quickstart.mjs", "--key", TEST_INTERNAL_API_KEY, "--url", started.baseUrl],
    { cwd: REPO, env: baseEnv() },
  );
  assert.equal(stderr, "");
  assertQuickstartOutput(stdout);
});
