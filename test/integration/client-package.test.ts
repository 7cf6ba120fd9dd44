/**
 * README.md / docs/architecture.md: `npm pack -w gen`, install
 * the tarball with its peer dependencies into a fresh folder, and call the
 * running service from there over gRPC and Connect, as an outside consumer
 * would (no source condition, no workspace link).
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

let service: TestService;
let work: string;
const genDistExisted = existsSync(GEN_DIST);
before(async () => {
  service = await startTestService();
  work = await mkdtemp(join(tmpdir(), "token-service-client-"));
});
after(async () => {
  await service.close();
  await rm(work, { recursive: true, force: true });
  // gen/dist is gitignored; leave the tree as it was found.
  if (!genDistExisted) await rm(GEN_DIST, { recursive: true, force: true });
});

test("the packed client installs into a fresh project and calls the service", {
  timeout: 120_000,
}, async () => {
  // `npm pack` runs gen's prepack (tsc) and writes the tarball.
  await run("npm", ["pack", "-w", "gen", "--pack-destination", work], { cwd: REPO });
  const tarballs = (await readdir(work)).filter((name) => name.endsWith(".tgz"));
  assert.equal(tarballs.length, 1, `one tarball: ${tarballs.join(", ")}`);
  const tarball = join(work, tarballs[0] as string);

  const consumer = join(work, "consumer");
  await mkdir(consumer);
  await writeFile(
    join(consumer, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }),
  );
  const install = (mode: string) =>
    run("npm", ["install", tarball, ...PEERS, "--no-audit", "--no-fund", mode], {
      cwd: consumer,
    });
  // The peers are in the npm cache (the repo installed them); fall back to the
  // registry only for what is missing.
  await install("--offline").catch(() => install("--prefer-offline"));

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
