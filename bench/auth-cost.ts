/**
 * What DPoP and private_key_jwt cost on the verify path, measured in-process
 * (no sockets, no Redis): the app's services on the memory store with a fake
 * clock, calls made one after another.
 *
 *   node --conditions=@token-service/source --import tsx bench/auth-cost.ts [iterations]
 *
 * (a) verifyMfaOtp without DPoP (client_secret_post, right code, one ES256
 *     access token signed per call): the baseline;
 * (a+) the same with a DPoP proof, and with a private_key_jwt assertion
 *     instead of the secret: end-to-end extra cost;
 * (b) dpop.verify alone, on pre-signed proofs (one per call: jti is single-use);
 * (c) clientAuth.authenticate alone, on pre-signed assertions, next to
 *     the client_secret_post check it replaces.
 * Proofs, assertions, mfa_tokens and codes are all made before the clock
 * starts; each row gives the mean and the median µs per call. Comparisons
 * (% of (a), extra µs) use medians: the machine may be shared, and a few
 * GC pauses or a neighbour's burst move the mean far more than the median.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Agent } from "node:http";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { type App, createApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { decodeBase32Secret, generateTotp } from "../src/mfa/totp.js";
import type { ClientCredentials } from "../src/oauth/client-auth.js";
import { MFA_OTP_GRANT } from "../src/oauth/grants/mfa-otp.js";
import { createLogger } from "../src/observability/logger.js";
import type { Services } from "../src/service/services.js";
import type { TokenRequest } from "../src/service/token-endpoint.js";
import { createServiceDeps } from "../src/service-deps.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { createFakeClock } from "../src/util/clock.js";
import { postToken } from "./common.js";

const ITERATIONS = Number(process.argv[2] ?? 3000);
const WARMUP = Math.min(500, ITERATIONS);
const ISSUER_URL = "http://issuer.bench/";
const TOKEN_ENDPOINT = `${ISSUER_URL}oauth/token`;
const POST_CLIENT = { id: "bench-post", secret: "bench-post-secret-0123456789abcdef" };
const JWT_CLIENT = "bench-jwt";
const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const ALGS = ["ES256", "EdDSA", "RS256"] as const;
type Alg = (typeof ALGS)[number];

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
interface Key {
  alg: Alg;
  privateKey: PrivateKey;
  publicJwk: JWK;
}

async function generateKey(alg: Alg): Promise<Key> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  const publicJwk = await exportJWK(publicKey);
  publicJwk.kid = `bench-${alg}`;
  return { alg, privateKey, publicJwk };
}

async function buildApp(jwtKeys: Key[]): Promise<{ app: App; ctx: BenchContext }> {
  const clientsFile = "bench:clients.json";
  const clients = {
    clients: [
      {
        client_id: POST_CLIENT.id,
        client_secret: POST_CLIENT.secret,
        token_endpoint_auth_method: "client_secret_post",
        grant_types: [MFA_OTP_GRANT],
      },
      {
        client_id: JWT_CLIENT,
        token_endpoint_auth_method: "private_key_jwt",
        grant_types: [MFA_OTP_GRANT],
        jwks: { keys: jwtKeys.map((k) => k.publicJwk) },
      },
    ],
  };
  const config = loadConfig(
    {
      PORT: "0",
      ISSUER_URL,
      CLIENTS_FILE: clientsFile,
      SECRETS_KEY: Buffer.alloc(32, 0x42).toString("base64"),
      INTERNAL_API_KEY,
      LOG_LEVEL: "silent",
    },
    {
      readFile: (path) =>
        path === clientsFile ? JSON.stringify(clients) : readFileSync(path, "utf8"),
    },
  );
  const clock = createFakeClock(Date.now());
  const store = createMemoryStore({ now: clock.nowMs });
  const logger = createLogger("silent");
  const app = createApp(config, { store, clock, logger });
  // The verifiers alone, for (b) and (c): built as the app builds them, on the same store.
  const { dpop, clientAuth } = createServiceDeps(
    config,
    app.ctx.live,
    store,
    clock,
    logger,
    app.ctx.sessions,
  );
  return { app, ctx: { clock, services: app.ctx.services, dpop, clientAuth } };
}
type FakeClock = ReturnType<typeof createFakeClock>;
interface BenchContext {
  clock: FakeClock;
  services: Services;
  dpop: ReturnType<typeof createServiceDeps>["dpop"];
  clientAuth: ReturnType<typeof createServiceDeps>["clientAuth"];
}

const INTERNAL_API_KEY = "bench-internal-api-key-0123456789";
const issueMfaToken = (ctx: BenchContext, userId: string, clientId: string) =>
  ctx.services.issueMfaToken({
    apiKey: INTERNAL_API_KEY,
    userId,
    clientId,
    audience: "https://api.bench",
    scope: "profile",
    userLabel: userId,
  });
const verifyMfaOtp = async (ctx: BenchContext, request: TokenRequest) =>
  (await ctx.services.tokenEndpoint.exchange(request)).tokens;

const nowSeconds = (ctx: { clock: FakeClock }) => Math.floor(ctx.clock.nowMs() / 1000);

function signProof(ctx: { clock: FakeClock }, key: Key, htu = TOKEN_ENDPOINT): Promise<string> {
  return new SignJWT({ htm: "POST", htu, iat: nowSeconds(ctx), jti: randomUUID() })
    .setProtectedHeader({ alg: key.alg, typ: "dpop+jwt", jwk: key.publicJwk })
    .sign(key.privateKey);
}

function signAssertion(ctx: { clock: FakeClock }, key: Key): Promise<string> {
  const now = nowSeconds(ctx);
  return new SignJWT({
    iss: JWT_CLIENT,
    sub: JWT_CLIENT,
    aud: TOKEN_ENDPOINT,
    iat: now,
    exp: now + 120,
    jti: randomUUID(),
  })
    .setProtectedHeader({ alg: key.alg, kid: String(key.publicJwk.kid) })
    .sign(key.privateKey);
}

interface User {
  userId: string;
  secret: Uint8Array;
}

/** `count` users with an active authenticator (associate, then one verify at the current step). */
async function enrolUsers(ctx: BenchContext, count: number) {
  const users: User[] = [];
  for (let i = 0; i < count; i++) {
    const userId = `bench-user-${i}`;
    const issue = () => issueMfaToken(ctx, userId, POST_CLIENT.id);
    const { secret } = await ctx.services.associate({
      mfaToken: (await issue()).mfaToken,
      authenticatorTypes: ["otp"],
    });
    const user = { userId, secret: decodeBase32Secret(secret) };
    await verifyMfaOtp(ctx, grant((await issue()).mfaToken, codeOf(ctx, user), postAuth()));
    users.push(user);
  }
  return users;
}

const codeOf = (ctx: { clock: FakeClock }, user: User) =>
  generateTotp(user.secret, Math.floor(ctx.clock.nowMs() / 1000));

const postAuth = (): ClientCredentials => ({
  clientId: POST_CLIENT.id,
  clientSecret: POST_CLIENT.secret,
});
const jwtAuth = (assertion: string): ClientCredentials => ({
  clientId: JWT_CLIENT,
  clientAssertionType: ASSERTION_TYPE,
  clientAssertion: assertion,
});

function grant(
  mfaToken: string,
  otp: string,
  client: ClientCredentials,
  dpop?: string,
): TokenRequest {
  return {
    grantType: MFA_OTP_GRANT,
    client,
    params: { mfa_token: mfaToken, otp },
    dpop: { proofs: dpop, htu: TOKEN_ENDPOINT },
    clientAddress: "127.0.0.1",
  };
}

/** Runs `calls` one after another and returns the µs each took. */
async function time(calls: Array<() => Promise<unknown>>): Promise<number[]> {
  const samples: number[] = [];
  for (const call of calls) {
    const start = process.hrtime.bigint();
    await call();
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  return samples;
}

interface Stat {
  mean: number;
  median: number;
}

function stat(samples: number[]): Stat {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    mean: samples.reduce((sum, x) => sum + x, 0) / samples.length,
    median: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN,
  };
}

/**
 * One verify phase over every user: moves the clock to a new step (each
 * user's code is then fresh), prepares requests outside the timing, and
 * returns the timings of the last `ITERATIONS` calls (the first calls warm up).
 */
async function verifyPhase(
  ctx: BenchContext,
  users: User[],
  prepare: (user: User, mfaToken: string, otp: string) => Promise<TokenRequest>,
  clientId: string,
): Promise<number[]> {
  ctx.clock.advance(30_000);
  const requests: TokenRequest[] = [];
  for (const user of users) {
    const { mfaToken } = await issueMfaToken(ctx, user.userId, clientId);
    requests.push(await prepare(user, mfaToken, codeOf(ctx, user)));
  }
  const samples = await time(
    requests.map((request) => async () => {
      const tokens = await verifyMfaOtp(ctx, request);
      if (tokens.accessToken === "") throw new Error("no token");
    }),
  );
  return samples.slice(WARMUP);
}

/** Like verifyPhase, through the real listener: one sequential keep-alive client. */
async function restPhase(
  ctx: BenchContext,
  port: number,
  users: User[],
  withDpop: Key | undefined,
): Promise<number[]> {
  ctx.clock.advance(30_000);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const requests: Array<{ body: string; dpop: string | undefined }> = [];
  for (const user of users) {
    const { mfaToken } = await issueMfaToken(ctx, user.userId, POST_CLIENT.id);
    const body = new URLSearchParams({
      grant_type: MFA_OTP_GRANT,
      mfa_token: mfaToken,
      otp: codeOf(ctx, user),
      client_id: POST_CLIENT.id,
      client_secret: POST_CLIENT.secret,
    }).toString();
    requests.push({ body, dpop: withDpop ? await signProof(ctx, withDpop) : undefined });
  }
  const samples = await time(
    requests.map(({ body, dpop }) => async () => {
      const status = await postToken(port, agent, body, dpop);
      if (status !== 200) throw new Error(`status ${status}`);
    }),
  );
  agent.destroy();
  return samples.slice(WARMUP);
}

async function main(): Promise<void> {
  const keys = Object.fromEntries(
    await Promise.all(ALGS.map(async (alg) => [alg, await generateKey(alg)] as const)),
  ) as Record<Alg, Key>;
  const { app, ctx } = await buildApp(Object.values(keys));
  const users = await enrolUsers(ctx, WARMUP + ITERATIONS);

  // (a) and the end-to-end variants; the baseline runs twice (first and last)
  // so drift (GC, JIT, a growing store) shows up.
  const baselineFirst = stat(
    await verifyPhase(ctx, users, async (_u, t, otp) => grant(t, otp, postAuth()), POST_CLIENT.id),
  );
  const withDpop = stat(
    await verifyPhase(
      ctx,
      users,
      async (_u, t, otp) => grant(t, otp, postAuth(), await signProof(ctx, keys.ES256)),
      POST_CLIENT.id,
    ),
  );
  const withAssertion = stat(
    await verifyPhase(
      ctx,
      users,
      async (_u, t, otp) => grant(t, otp, jwtAuth(await signAssertion(ctx, keys.ES256))),
      JWT_CLIENT,
    ),
  );
  const baselineLast = stat(
    await verifyPhase(ctx, users, async (_u, t, otp) => grant(t, otp, postAuth()), POST_CLIENT.id),
  );
  const baseline = (baselineFirst.median + baselineLast.median) / 2;

  // The same through the real listener (client and server in this process).
  const { port } = await app.listen(0);
  const restPlain = stat(await restPhase(ctx, port, users, undefined));
  const restDpop = stat(await restPhase(ctx, port, users, keys.ES256));
  await app.close(1000);

  // (b) DPoP validation alone.
  const dpopAlone: Array<[string, Stat]> = [];
  for (const alg of ALGS) {
    const proofs: string[] = [];
    for (let i = 0; i < WARMUP + ITERATIONS; i++) proofs.push(await signProof(ctx, keys[alg]));
    const now = ctx.clock.nowMs();
    const samples = await time(
      proofs.map((proof) => async () => {
        if ((await ctx.dpop.verify(proof, { htm: "POST", htu: TOKEN_ENDPOINT }, now)) === undefined)
          throw new Error();
      }),
    );
    dpopAlone.push([`(b) dpop.verify, ${alg} proof`, stat(samples.slice(WARMUP))]);
  }

  // (c) client authentication alone: the secret check, then assertions.
  const authAlone: Array<[string, Stat]> = [];
  const secretSamples = await time(
    Array.from(
      { length: WARMUP + ITERATIONS },
      () => () =>
        ctx.clientAuth.authenticate({ clientId: POST_CLIENT.id, clientSecret: POST_CLIENT.secret }),
    ),
  );
  const secretCheck = stat(secretSamples.slice(WARMUP));
  authAlone.push(["(c) clientAuth.authenticate, client_secret_post", secretCheck]);
  for (const alg of ALGS) {
    const assertions: string[] = [];
    for (let i = 0; i < WARMUP + ITERATIONS; i++)
      assertions.push(await signAssertion(ctx, keys[alg]));
    const samples = await time(
      assertions.map(
        (assertion) => () =>
          ctx.clientAuth.authenticate({
            clientId: JWT_CLIENT,
            clientAssertion: assertion,
            clientAssertionType: ASSERTION_TYPE,
          }),
      ),
    );
    authAlone.push([
      `(c) clientAuth.authenticate, private_key_jwt ${alg}`,
      stat(samples.slice(WARMUP)),
    ]);
  }

  const pct = (us: number) => `${((us / baseline) * 100).toFixed(1).padStart(6)} %`;
  const row = (name: string, s: Stat, extra = "") =>
    console.log(
      `${name.padEnd(58)} ${s.mean.toFixed(1).padStart(8)} ${s.median.toFixed(1).padStart(8)}  ${pct(s.median)}${extra}`,
    );
  console.log(
    `node ${process.version}, ${ITERATIONS} timed calls per row (+${WARMUP} warm-up), memory store, sequential`,
  );
  console.log(`${"".padEnd(58)} ${"mean µs".padStart(8)} ${"p50 µs".padStart(8)}  p50 as % of (a)`);
  row("(a) verifyMfaOtp, client_secret_post, no DPoP (1st run)", baselineFirst);
  row("(a) verifyMfaOtp, client_secret_post, no DPoP (last run)", baselineLast);
  row(
    "(a+) verifyMfaOtp + DPoP ES256 proof",
    withDpop,
    `   extra ${(withDpop.median - baseline).toFixed(1)} µs = ${pct(withDpop.median - baseline).trim()}`,
  );
  row(
    "(a+) verifyMfaOtp, private_key_jwt ES256 instead of secret",
    withAssertion,
    `   extra ${(withAssertion.median - baseline).toFixed(1)} µs = ${pct(withAssertion.median - baseline).trim()}`,
  );
  row("(r) POST /oauth/token over HTTP/1.1 keep-alive, no DPoP", restPlain);
  row(
    "(r) POST /oauth/token over HTTP/1.1 keep-alive, DPoP ES256",
    restDpop,
    `   extra ${(restDpop.median - restPlain.median).toFixed(1)} µs = ${(((restDpop.median - restPlain.median) / restPlain.median) * 100).toFixed(1)} % of the plain REST call`,
  );
  for (const [name, s] of dpopAlone) row(name, s);
  for (const [name, s] of authAlone) {
    const extra =
      s === secretCheck
        ? ""
        : `   extra over the secret check ${(s.median - secretCheck.median).toFixed(1)} µs`;
    row(name, s, extra);
  }
}

await main();
