/**
 * Two instances of the service (src/main.ts, each its own child process and
 * connection pool) on one PostgreSQL database, racing on every single-use
 * step: 40 requests at once, 20 to each instance, and exactly one success
 * for one mfa_token, one time step, one recovery code, one refresh token,
 * one DPoP proof (its jti) and one client assertion (its jti). The instances
 * run on the real clock; every race uses fresh users whose authenticator is
 * still pending (lastStep -1), so the current code is unused.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import {
  JWT_BEARER_ASSERTION_TYPE,
  JWT_CLIENT_ID,
  writeClientsFileWithJwtClient,
} from "../support/dpop.js";
import { MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT } from "../support/flows.js";
import { type PostgresServerHandle, startPostgresServer } from "../support/postgres-server.js";
import { codeNow, fixtureEnv } from "../support/process-flows.js";
import { type ServiceProcess, startServiceProcess } from "../support/service-process.js";
import { INVALID_REFRESH_TOKEN, SESSION_CLIENTS, SESSION_SCOPE } from "../support/session-flows.js";
import { CLIENTS, TEST_INTERNAL_API_KEY } from "../support/test-service.js";

const ISSUER_URL = "http://token-service.test/";
const TOKEN_ENDPOINT = `${ISSUER_URL}oauth/token`;
const PER_INSTANCE = 20;

type Signer = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];

let postgres: PostgresServerHandle;
let instances: [ServiceProcess, ServiceProcess];
let jwtKey: { privateKey: Signer; publicJwk: JWK };
before(async () => {
  const pair = await generateKeyPair("ES256", { extractable: true });
  jwtKey = {
    privateKey: pair.privateKey,
    publicJwk: { ...(await exportJWK(pair.publicKey)), kid: "k1" },
  };
  const clients = await writeClientsFileWithJwtClient([jwtKey.publicJwk]);
  postgres = await startPostgresServer();
  const env = fixtureEnv({
    DATABASE_URL: await postgres.freshDatabase(),
    CLIENTS_FILE: clients.path,
    ISSUER_URL,
    // The losers of the code races are failures: keep the bucket out of the way.
    OTP_MAX_FAILURES: "1000",
  });
  try {
    instances = (await Promise.all([startServiceProcess(env), startServiceProcess(env)])) as [
      ServiceProcess,
      ServiceProcess,
    ];
  } finally {
    await clients.remove(); // read once at start-up
  }
});
after(async () => {
  await Promise.all((instances ?? []).map((instance) => instance.stop()));
  await postgres?.stop();
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function post(
  baseUrl: string,
  path: string,
  body: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await fetch(`${baseUrl}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(body).toString(),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function rpc(
  baseUrl: string,
  method: string,
  body: unknown,
  bearer: string,
): Promise<Record<string, unknown>> {
  const response = await fetch(`${baseUrl}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${bearer}` },
    body: JSON.stringify(body),
  });
  const parsed = (await response.json()) as Record<string, unknown>;
  if (response.status !== 200)
    throw new Error(`${method}: ${response.status} ${JSON.stringify(parsed)}`);
  return parsed;
}

/** An mfa_token from instance 1 (the other instance opens it: same SECRETS_KEY). */
async function issue(
  userId: string,
  clientId: string = CLIENTS.post.id,
  scope = "openid",
): Promise<string> {
  const reply = await rpc(
    instances[0].baseUrl,
    "token.v1.MfaTokenService/IssueMfaToken",
    { userId, clientId, scope },
    TEST_INTERNAL_API_KEY,
  );
  return String(reply.mfaToken);
}

/** A user with a pending authenticator (enrolled at instance 2), its secret and recovery code. */
async function pendingUser(): Promise<{ userId: string; secret: string; recoveryCode: string }> {
  const userId = `race-${randomUUID()}`;
  const response = await fetch(`${instances[1].baseUrl}/mfa/associate`, {
    method: "POST",
    headers: { authorization: `Bearer ${await issue(userId)}`, "content-type": "application/json" },
    body: JSON.stringify({ authenticator_types: ["otp"] }),
  });
  const body = (await response.json()) as { secret?: string; recovery_codes?: string[] };
  assert.equal(response.status, 200, JSON.stringify(body));
  return { userId, secret: String(body.secret), recoveryCode: String(body.recovery_codes?.[0]) };
}

/** `PER_INSTANCE` requests to each instance at once; outcome counts ("200" or "<status> <error>"). */
async function race(
  request: (baseUrl: string, i: number) => Promise<Answer>,
): Promise<Record<string, number>> {
  const answers = await Promise.all(
    Array.from({ length: 2 * PER_INSTANCE }, (_, i) =>
      request((i % 2 === 0 ? instances[0] : instances[1]).baseUrl, i),
    ),
  );
  const counts: Record<string, number> = {};
  for (const { status, body } of answers) {
    const key = status === 200 ? "200" : `${status} ${body.error}: ${body.error_description}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

const otpGrant = (
  mfaToken: string,
  otp: string,
  client: { id: string; secret: string } = CLIENTS.post,
) => ({
  grant_type: MFA_OTP_GRANT,
  client_id: client.id,
  client_secret: client.secret,
  mfa_token: mfaToken,
  otp,
});

const LOSERS = 2 * PER_INSTANCE - 1;

describe("two instances on one database", () => {
  test("one mfa_token and its code, 40 verifies: one token", async () => {
    const user = await pendingUser();
    const mfaToken = await issue(user.userId);
    const code = codeNow(user.secret);
    assert.deepEqual(await race((base) => post(base, "/oauth/token", otpGrant(mfaToken, code))), {
      "200": 1,
      "400 expired_token: mfa_token is expired": LOSERS,
    });
  });

  test("one time step, 40 mfa_tokens: one token (replay guard)", async () => {
    const user = await pendingUser();
    const tokens = await Promise.all(
      Array.from({ length: 2 * PER_INSTANCE }, () => issue(user.userId)),
    );
    const code = codeNow(user.secret);
    assert.deepEqual(
      await race((base, i) => post(base, "/oauth/token", otpGrant(tokens[i] ?? "", code))),
      { "200": 1, "400 invalid_grant: Invalid otp_code.": LOSERS },
    );
  });

  test("one recovery code, 40 mfa_tokens: one token", async () => {
    const user = await pendingUser();
    const tokens = await Promise.all(
      Array.from({ length: 2 * PER_INSTANCE }, () => issue(user.userId)),
    );
    assert.deepEqual(
      await race((base, i) =>
        post(base, "/oauth/token", {
          grant_type: MFA_RECOVERY_CODE_GRANT,
          client_id: CLIENTS.post.id,
          client_secret: CLIENTS.post.secret,
          mfa_token: tokens[i] ?? "",
          recovery_code: user.recoveryCode,
        }),
      ),
      { "200": 1, "400 invalid_grant: Invalid recovery_code.": LOSERS },
    );
  });

  test("one refresh token, 40 exchanges (rotating, leeway 0): one token, the family revoked", async () => {
    const { rotating } = SESSION_CLIENTS;
    const user = await pendingUser();
    const login = await post(
      instances[0].baseUrl,
      "/oauth/token",
      otpGrant(await issue(user.userId, rotating.id, SESSION_SCOPE), codeNow(user.secret), {
        id: rotating.id,
        secret: rotating.secret ?? "",
      }),
    );
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const refreshToken = String(login.body.refresh_token);
    const exchange = (base: string, token: string) =>
      post(base, "/oauth/token", {
        grant_type: "refresh_token",
        client_id: rotating.id,
        client_secret: rotating.secret ?? "",
        refresh_token: token,
      });
    const answers: Answer[] = [];
    const counts = await race(async (base) => {
      const answer = await exchange(base, refreshToken);
      answers.push(answer);
      return answer;
    });
    assert.deepEqual(counts, { "200": 1, [`400 invalid_grant: ${INVALID_REFRESH_TOKEN}`]: LOSERS });
    // Auth0's reuse detection, across instances: the winner's successor is revoked too.
    const successor = String(answers.find((a) => a.status === 200)?.body.refresh_token);
    for (const instance of instances) {
      const again = await exchange(instance.baseUrl, successor);
      assert.deepEqual([again.status, again.body.error], [400, "invalid_grant"]);
    }
  });

  test("one DPoP proof on 40 valid verifies: one token (the proof's jti is used once)", async () => {
    const users = await Promise.all(Array.from({ length: 2 * PER_INSTANCE }, () => pendingUser()));
    const grants = await Promise.all(
      users.map(async (user) => otpGrant(await issue(user.userId), codeNow(user.secret))),
    );
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const proof = await new SignJWT({ htm: "POST", htu: TOKEN_ENDPOINT, jti: randomUUID() })
      .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: await exportJWK(publicKey) })
      .setIssuedAt()
      .sign(privateKey);
    const counts = await race((base, i) =>
      post(base, "/oauth/token", grants[i] ?? {}, { DPoP: proof }),
    );
    assert.equal(counts["200"], 1, JSON.stringify(counts));
    const refused = Object.entries(counts).filter(([key]) => key !== "200");
    assert.equal(refused.length, 1, JSON.stringify(counts));
    assert.match(refused[0]?.[0] ?? "", /^400 invalid_dpop_proof: .*already been used/);
    assert.equal(refused[0]?.[1], LOSERS);
  });

  test("one client assertion on 40 valid verifies: one token (the assertion's jti is used once)", async () => {
    const users = await Promise.all(Array.from({ length: 2 * PER_INSTANCE }, () => pendingUser()));
    const tokens = await Promise.all(users.map((user) => issue(user.userId, JWT_CLIENT_ID)));
    const assertion = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setIssuer(JWT_CLIENT_ID)
      .setSubject(JWT_CLIENT_ID)
      .setAudience(TOKEN_ENDPOINT)
      .setIssuedAt()
      .setExpirationTime("60s")
      .sign(jwtKey.privateKey);
    const counts = await race((base, i) =>
      post(base, "/oauth/token", {
        grant_type: MFA_OTP_GRANT,
        client_id: JWT_CLIENT_ID,
        client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
        client_assertion: assertion,
        mfa_token: tokens[i] ?? "",
        otp: codeNow(users[i]?.secret ?? ""),
      }),
    );
    assert.deepEqual(counts, { "200": 1, "401 access_denied: Unauthorized": LOSERS });
  });
});
