/**
 * What running each request inside the request-id scope costs on the verify
 * path (src/observability/request-context.ts: one AsyncLocalStorage.run per
 * request, which on Node 20 also turns on the promise hooks that carry the
 * scope across awaits).
 *
 *   node --conditions=@token-service/source --import tsx bench/request-context-cost.ts [rounds]
 *
 * A/B in separate processes (once a scope has run, the hooks stay on for the
 * process, so one process cannot measure both): each child builds the app on
 * the memory store and a fake clock without serving HTTP, enrolls 400 users
 * through the service functions, then verifies every user once per 30 s
 * step, each verify (`tokenEndpoint.exchange`, a mfa-otp success with the
 * client's credentials) awaited in turn — `plain`, or inside
 * `runInRequestScope` as the request observer runs it — and reports its CPU µs
 * per verify (process.cpuUsage around each round, after 3 warm-up rounds).
 * Children alternate plain/scoped `rounds` times (default 6); the medians are
 * compared. No sockets, no load tool: on a shared machine this moves far less
 * than `npm run bench`.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { decodeBase32Secret, generateTotp } from "../src/mfa/totp.js";
import { runInRequestScope } from "../src/observability/request-context.js";
import { CLIENTS, startTestService, TEST_INTERNAL_API_KEY } from "../test/support/test-service.js";
import { median } from "./common.js";

const MFA_OTP = "http://auth0.com/oauth/grant-type/mfa-otp";
const USERS = 400;

async function child(mode: "plain" | "scoped"): Promise<void> {
  const service = await startTestService({ env: { ACCESS_LOG: "false", LOG_LEVEL: "warn" } });
  const { services } = service.app.ctx;
  const clock = service.clock;
  const mfaToken = async (userId: string) =>
    (
      await services.issueMfaToken({
        apiKey: TEST_INTERNAL_API_KEY,
        userId,
        clientId: CLIENTS.post.id,
        audience: "https://api.example.test",
        scope: "profile",
        userLabel: "",
      })
    ).mfaToken;
  const nextStep = () => clock.set((Math.floor(clock.nowMs() / 30_000) + 1) * 30_000 + 1_000);
  const verify = (token: string, secret: Uint8Array) =>
    services.tokenEndpoint.exchange({
      grantType: MFA_OTP,
      client: { clientId: CLIENTS.post.id, clientSecret: CLIENTS.post.secret },
      params: {
        mfa_token: token,
        otp: generateTotp(secret, Math.floor(clock.nowMs() / 1000)),
      },
      dpop: { proofs: undefined, htu: "http://localhost/oauth/token" },
      clientAddress: "127.0.0.1",
    });
  const run =
    mode === "plain"
      ? verify
      : (token: string, secret: Uint8Array) =>
          new Promise<unknown>((resolve, reject) => {
            runInRequestScope(
              { requestId: "bench-request-id", startNs: process.hrtime.bigint() },
              () => {
                verify(token, secret).then(resolve, reject);
              },
            );
          });

  const users: { userId: string; secret: Uint8Array }[] = [];
  for (let i = 0; i < USERS; i++) {
    const userId = `bench-${i}`;
    const { secret } = await services.associate({
      mfaToken: await mfaToken(userId),
      authenticatorTypes: ["otp"],
    });
    users.push({ userId, secret: decodeBase32Secret(secret) });
  }
  const perVerify: number[] = [];
  for (let round = 0; round < 8; round++) {
    nextStep();
    const tokens = await Promise.all(users.map((u) => mfaToken(u.userId)));
    const before = process.cpuUsage();
    for (let i = 0; i < users.length; i++) {
      await run(tokens[i] as string, (users[i] as { secret: Uint8Array }).secret);
    }
    const used = process.cpuUsage(before);
    if (round >= 3) perVerify.push((used.user + used.system) / users.length);
  }
  await service.close();
  process.send?.(median(perVerify));
}

function measure(mode: "plain" | "scoped"): Promise<number> {
  return new Promise((resolve, reject) => {
    const worker = fork(fileURLToPath(import.meta.url), [`--child=${mode}`], {
      execArgv: process.execArgv,
    });
    worker.once("message", (value) => resolve(Number(value)));
    worker.once("error", reject);
    worker.once("exit", (code) => {
      if (code !== 0) reject(new Error(`child ${mode} exited with ${code}`));
    });
  });
}

const childMode = process.argv.find((a) => a.startsWith("--child="))?.slice(8);
if (childMode === "plain" || childMode === "scoped") {
  await child(childMode);
} else {
  const rounds = Number(process.argv[2] ?? 6);
  const plain: number[] = [];
  const scoped: number[] = [];
  for (let i = 0; i < rounds; i++) {
    plain.push(await measure("plain"));
    scoped.push(await measure("scoped"));
    console.log(
      `round ${i + 1}: plain ${plain.at(-1)?.toFixed(1)} µs, scoped ${scoped.at(-1)?.toFixed(1)} µs`,
    );
  }
  const p = median(plain);
  const s = median(scoped);
  console.log(
    `median CPU per verify: plain ${p.toFixed(1)} µs, in the request-id scope ${s.toFixed(1)} µs (${(s - p).toFixed(1)} µs, ${(((s - p) / p) * 100).toFixed(1)} %)`,
  );
}
