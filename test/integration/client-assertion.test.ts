/**
 * private_key_jwt client authentication (RFC 7523 §2.2 and §3; docs/configuration.md,
 * error row 1): a `jwt-client` registered with freshly generated public keys in
 * a temporary CLIENTS_FILE. Every broken rule is the same 401
 * access_denied / Unauthorized with no hint of the rule, logged at debug
 * without the assertion; `jti` is single-use until `exp`, also under
 * concurrency, on memory, on a real redis-server and on PostgreSQL.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { singleUseKey } from "../../src/store/postgres-statements.js";
import { onceKey } from "../../src/store/redis-keys.js";
import {
  ALLOWED_ALGS,
  assertionParams,
  clientAssertionFor,
  dpopProofFor,
  generateTestKey,
  JWT_BEARER_ASSERTION_TYPE,
  JWT_CLIENT_ID,
  jwkThumbprint,
  jwtPayloadOf,
  nowSeconds,
  type ProofOverrides,
  type ReadyUser,
  rawJws,
  readyUsers,
  rpcHtu,
  signJws,
  type TestKey,
  writeClientsFileWithJwtClient,
} from "../support/dpop.js";
import { clientsFor, codeAt, MFA_OTP_GRANT, postTokenForm } from "../support/flows.js";
import { type RestResult, rpcFailure } from "../support/oauth-assertions.js";
import {
  type PostgresServerHandle,
  startPostgresServer,
  withClient,
} from "../support/postgres-server.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import {
  CLIENTS,
  startTestService,
  type TestService,
  type TestServiceOptions,
} from "../support/test-service.js";

const ISSUER_URL = "http://issuer.test/";
const TOKEN_ENDPOINT = "http://issuer.test/oauth/token";
const UNAUTHORIZED = { error: "access_denied", error_description: "Unauthorized" };

/**
 * The registered keys of `jwt-client` (ES256 and EdDSA allowed; ES512
 * registered but not allowed; `edNamedEdDSA` registered with `"alg":"EdDSA"`
 * but signing under RFC 9864's name Ed25519, as oauth4webapi does).
 */
interface Keys {
  es256: TestKey;
  eddsa: TestKey;
  es512: TestKey;
  edNamedEdDSA: TestKey;
}

async function generateKeys(): Promise<Keys> {
  return {
    es256: await generateTestKey("ES256", "k-es256"),
    eddsa: await generateTestKey("EdDSA", "k-eddsa"),
    es512: await generateTestKey("ES512", "k-es512"),
    edNamedEdDSA: await generateTestKey("Ed25519", "k-ed-named-eddsa"),
  };
}

/** A service whose CLIENTS_FILE holds the fixture clients and `jwt-client` with `keys`. */
async function startWithJwtClient(
  keys: Keys,
  options: Pick<TestServiceOptions, "store" | "redisUrl" | "databaseUrl"> = {},
): Promise<TestService> {
  // keys.es512 is not registered: a P-521 key fits no accepted algorithm, so
  // the clients file would be refused at start-up (SPEC §4, key-policy.ts).
  const file = await writeClientsFileWithJwtClient([
    keys.es256.publicJwk,
    keys.eddsa.publicJwk,
    { ...keys.edNamedEdDSA.publicJwk, alg: "EdDSA" },
  ]);
  try {
    return await startTestService({
      ...options,
      env: { ISSUER_URL, CLIENTS_FILE: file.path },
    });
  } finally {
    // The config is read once at start-up.
    await file.remove();
  }
}

/** The mfa-otp grant of `user` authenticated by `assertion` (plus `extra` parameters). */
function grantWith(
  service: TestService,
  user: ReadyUser,
  assertion: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    grant_type: MFA_OTP_GRANT,
    mfa_token: user.mfaToken,
    otp: codeAt(service, user.secret),
    ...assertionParams(assertion),
    ...extra,
  };
}

function assertUnauthorized(result: RestResult): void {
  assert.deepEqual(
    { status: result.status, body: result.body },
    { status: 401, body: UNAUTHORIZED },
  );
  assert.equal(result.headers.get("cache-control"), "no-store");
}

function assertIssuedTo(result: RestResult, clientId = JWT_CLIENT_ID): void {
  assert.equal(result.status, 200, JSON.stringify(result.body));
  assert.equal(jwtPayloadOf(String(result.body.access_token)).client_id, clientId);
}

describe("private_key_jwt on the memory store", () => {
  let keys: Keys;
  let service: TestService;
  /** Every assertion sent in this suite, to check none of them reaches the log. */
  const sent: string[] = [];
  const assertion = async (overrides: ProofOverrides = {}, key?: TestKey) => {
    const value = await clientAssertionFor(service, key ?? keys.es256, overrides);
    sent.push(value);
    return value;
  };

  before(async () => {
    keys = await generateKeys();
    service = await startWithJwtClient(keys);
  });
  after(() => service.close());

  test("discovery advertises private_key_jwt and its signing algorithms", async () => {
    const response = await fetch(`${service.baseUrl}/.well-known/openid-configuration`);
    const document = (await response.json()) as Record<string, unknown>;
    assert.equal(document.token_endpoint, TOKEN_ENDPOINT);
    assert.ok(
      (document.token_endpoint_auth_methods_supported as string[]).includes("private_key_jwt"),
    );
    assert.deepEqual(
      [...(document.token_endpoint_auth_signing_alg_values_supported as string[])].sort(),
      [...ALLOWED_ALGS].sort(),
    );
  });

  describe("accepted assertions", () => {
    const accepted: Array<{
      name: string;
      overrides?: ProofOverrides;
      key?: keyof Keys;
      withoutClientId?: boolean;
    }> = [
      { name: "aud = the token endpoint URL" },
      { name: "aud = the issuer", overrides: { claims: { aud: ISSUER_URL } } },
      {
        name: "aud = an array holding the issuer",
        overrides: { claims: { aud: ["https://elsewhere.test/", ISSUER_URL] } },
      },
      { name: "signed with the registered EdDSA key", key: "eddsa" },
      {
        name: "signed as Ed25519 (RFC 9864's name) with the registered Ed25519 key",
        key: "eddsa",
        overrides: { header: { alg: "Ed25519" } },
      },
      { name: "signed as Ed25519 with a key registered as EdDSA", key: "edNamedEdDSA" },
      { name: "no client_id parameter (the client is named by sub)", withoutClientId: true },
      { name: "no kid in the header", overrides: { header: { kid: undefined } } },
      { name: "no iat (optional)", overrides: { claims: { iat: undefined } } },
    ];
    for (const { name, overrides, key, withoutClientId } of accepted) {
      test(name, async () => {
        const [user] = (await readyUsers(service, 1, JWT_CLIENT_ID)) as [ReadyUser];
        const params = grantWith(
          service,
          user,
          await assertion(overrides, key ? keys[key] : undefined),
        );
        if (withoutClientId) delete params.client_id;
        assertIssuedTo(await postTokenForm(service, params));
      });
    }

    test("exp exactly 5 minutes ahead and iat a few seconds ahead are within bounds", async () => {
      const [user] = (await readyUsers(service, 1, JWT_CLIENT_ID)) as [ReadyUser];
      const now = nowSeconds(service);
      const result = await postTokenForm(
        service,
        grantWith(service, user, await assertion({ claims: { exp: now + 300, iat: now + 5 } })),
      );
      assertIssuedTo(result);
    });

    test("with a DPoP proof as well: a DPoP token bound to the proof key", async () => {
      const [user] = (await readyUsers(service, 1, JWT_CLIENT_ID)) as [ReadyUser];
      const dpopKey = await generateTestKey("ES256");
      const result = await postTokenForm(service, grantWith(service, user, await assertion()), {
        DPoP: await dpopProofFor(service, dpopKey),
      });
      assertIssuedTo(result);
      assert.equal(result.body.token_type, "DPoP");
      assert.deepEqual(jwtPayloadOf(String(result.body.access_token)).cnf, {
        jkt: jwkThumbprint(dpopKey.publicJwk),
      });
    });
  });

  describe("RPC surface", () => {
    test("gRPC: a valid assertion authenticates the client", async () => {
      const [user] = (await readyUsers(service, 1, JWT_CLIENT_ID)) as [ReadyUser];
      const response = await clientsFor(service, "grpc").token.verifyMfaOtp({
        mfaToken: user.mfaToken,
        otp: codeAt(service, user.secret),
        clientId: JWT_CLIENT_ID,
        clientAssertionType: JWT_BEARER_ASSERTION_TYPE,
        clientAssertion: await assertion(),
        dpop: await dpopProofFor(service, keys.eddsa, rpcHtu(service)),
      });
      assert.equal(jwtPayloadOf(response.accessToken).client_id, JWT_CLIENT_ID);
      assert.equal(response.tokenType, "DPoP");
    });

    test("gRPC: a bad assertion is Unauthenticated with the row-1 OAuthError detail", async () => {
      const [user] = (await readyUsers(service, 1, JWT_CLIENT_ID)) as [ReadyUser];
      const failure = await rpcFailure(
        clientsFor(service, "grpc").token.verifyMfaOtp({
          mfaToken: user.mfaToken,
          otp: codeAt(service, user.secret),
          clientId: JWT_CLIENT_ID,
          clientAssertionType: JWT_BEARER_ASSERTION_TYPE,
          clientAssertion: await assertion({ claims: { aud: "https://elsewhere.test/" } }),
        }),
      );
      assert.deepEqual(
        { code: failure.code, detail: failure.detail },
        {
          code: Code.Unauthenticated,
          detail: {
            error: "access_denied",
            errorDescription: "Unauthorized",
            retryAfterSeconds: 0,
          },
        },
      );
    });
  });

  describe("each RFC 7523 / docs/configuration.md rule broken once → 401 access_denied, nothing consumed", () => {
    let user: ReadyUser;
    let otp: string;
    before(async () => {
      [user] = (await readyUsers(service, 1, JWT_CLIENT_ID)) as [ReadyUser];
      otp = codeAt(service, user.secret);
    });

    interface Case {
      rule: string;
      /** The request parameters (an mfa-otp grant for `user`) carrying the broken assertion. */
      params: () => Promise<Record<string, string>>;
      headers?: Record<string, string>;
      /**
       * What the debug log must give as the reason, when the assertion reaches
       * the verifier (rules checked earlier, in client authentication, are not
       * logged by it).
       */
      reason?: RegExp;
    }
    const now = () => nowSeconds(service);
    const grant = (extra: Record<string, string>): Record<string, string> => ({
      grant_type: MFA_OTP_GRANT,
      mfa_token: user.mfaToken,
      otp,
      ...extra,
    });
    /** A grant whose assertion breaks one rule through `overrides`. */
    const broken = (overrides: ProofOverrides, key?: TestKey) => async () =>
      grant(assertionParams(await assertion(overrides, key)));

    const cases: Case[] = [
      {
        rule: "client_assertion_type: another URN",
        params: async () => ({
          ...grant(assertionParams(await assertion())),
          client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
        }),
      },
      {
        rule: "client_assertion_type: missing",
        params: async () => {
          const { client_assertion_type: _, ...rest } = grant(assertionParams(await assertion()));
          return rest;
        },
      },
      {
        rule: "client_assertion: missing",
        params: async () => {
          const { client_assertion: _, ...rest } = grant(assertionParams(await assertion()));
          return rest;
        },
      },
      {
        rule: "client_assertion: not a JWT",
        reason: /ERR_JWS_INVALID|ERR_JWT_INVALID/,
        params: async () => grant(assertionParams("not-a-jwt")),
      },
      {
        rule: "signature: an unregistered key under a registered kid",
        reason: /SIGNATURE_VERIFICATION_FAILED/,
        params: async () =>
          grant(assertionParams(await assertion({}, await generateTestKey("ES256", "k-es256")))),
      },
      {
        rule: "signature: an unregistered key without kid",
        reason: /SIGNATURE_VERIFICATION_FAILED|NO_MATCHING_KEY/,
        params: async () =>
          grant(
            assertionParams(
              await assertion({ header: { kid: undefined } }, await generateTestKey("ES256")),
            ),
          ),
      },
      {
        rule: "signature: payload changed after signing",
        reason: /SIGNATURE_VERIFICATION_FAILED/,
        params: async () => {
          const [header, payload, signature] = (await assertion()).split(".");
          const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString("utf8"));
          const forged = Buffer.from(JSON.stringify({ ...claims, exp: claims.exp + 1 })).toString(
            "base64url",
          );
          return grant(assertionParams(`${header}.${forged}.${signature}`));
        },
      },
      {
        rule: "iss: another client",
        reason: /\(iss: check_failed\)/,
        params: broken({ claims: { iss: CLIENTS.post.id } }),
      },
      {
        rule: "iss: missing",
        reason: /\(iss: missing\)/,
        params: broken({ claims: { iss: undefined } }),
      },
      {
        rule: "sub: another client",
        reason: /\(sub: check_failed\)/,
        params: broken({ claims: { sub: CLIENTS.post.id } }),
      },
      {
        rule: "sub: missing",
        reason: /\(sub: missing\)/,
        params: broken({ claims: { sub: undefined } }),
      },
      {
        rule: "aud: another server",
        reason: /\(aud: check_failed\)/,
        params: broken({ claims: { aud: "https://elsewhere.test/oauth/token" } }),
      },
      {
        rule: "aud: this service's JWKS URL",
        reason: /\(aud: check_failed\)/,
        params: broken({ claims: { aud: "http://issuer.test/.well-known/jwks.json" } }),
      },
      {
        rule: "aud: missing",
        reason: /\(aud: missing\)/,
        params: broken({ claims: { aud: undefined } }),
      },
      {
        rule: "exp: missing",
        reason: /\(exp: missing\)/,
        params: broken({ claims: { exp: undefined } }),
      },
      {
        rule: "exp: a minute in the past",
        reason: /ERR_JWT_EXPIRED \(exp: check_failed\)/,
        params: async () =>
          grant(assertionParams(await assertion({ claims: { exp: now() - 60 } }))),
      },
      {
        rule: "exp: 10 minutes ahead (more than 5)",
        reason: /exp too far ahead/,
        params: async () =>
          grant(assertionParams(await assertion({ claims: { exp: now() + 600 } }))),
      },
      {
        rule: "nbf: 2 minutes in the future",
        reason: /\(nbf: check_failed\)/,
        params: async () =>
          grant(assertionParams(await assertion({ claims: { nbf: now() + 120 } }))),
      },
      {
        rule: "iat: 2 minutes in the future",
        reason: /iat in the future/,
        params: async () =>
          grant(assertionParams(await assertion({ claims: { iat: now() + 120 } }))),
      },
      {
        rule: "jti: missing",
        reason: /\(jti: missing\)/,
        params: broken({ claims: { jti: undefined } }),
      },
      { rule: "jti: empty", reason: /jti missing/, params: broken({ claims: { jti: "" } }) },
      {
        rule: "alg: none",
        reason: /ALG_NOT_ALLOWED/,
        params: async () => {
          const claims = jwtPayloadOf(await assertion());
          return grant(assertionParams(rawJws({ alg: "none", kid: "k-es256" }, claims)));
        },
      },
      {
        rule: "alg: HS256 (a shared-secret MAC)",
        reason: /ALG_NOT_ALLOWED/,
        params: async () => {
          const claims = jwtPayloadOf(await assertion());
          const mac = await signJws(new Uint8Array(32).fill(3), { alg: "HS256" }, claims);
          sent.push(mac);
          return grant(assertionParams(mac));
        },
      },
      {
        rule: "alg: ES512 with a P-521 key (not in the allow-list)",
        reason: /ALG_NOT_ALLOWED/,
        params: async () => grant(assertionParams(await assertion({}, keys.es512))),
      },
      {
        rule: "size bound: an assertion over 8 KiB",
        reason: /too large/,
        params: broken({ claims: { pad: "x".repeat(9000) } }),
      },
      {
        rule: "client_id parameter names another client",
        params: async () => ({
          ...grant(assertionParams(await assertion())),
          client_id: CLIENTS.post.id,
        }),
      },
      {
        rule: "a client_secret sent along (two methods)",
        params: async () => ({
          ...grant(assertionParams(await assertion())),
          client_secret: "anything",
        }),
      },
      {
        rule: "HTTP Basic sent along (two methods)",
        params: async () => grant(assertionParams(await assertion())),
        headers: {
          authorization: `Basic ${Buffer.from(`${JWT_CLIENT_ID}:x`).toString("base64")}`,
        },
      },
      {
        rule: "an assertion for a client registered with client_secret_post",
        params: async () => {
          const forPost = await assertion({
            claims: { iss: CLIENTS.post.id, sub: CLIENTS.post.id },
          });
          return grant({
            client_id: CLIENTS.post.id,
            client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
            client_assertion: forPost,
          });
        },
      },
    ];

    for (const { rule, params, headers, reason } of cases) {
      test(rule, async () => {
        const logged = service.logs.length;
        assertUnauthorized(await postTokenForm(service, await params(), headers));
        if (reason !== undefined) {
          // The 401 is the same for every rule; the debug log names the one that failed.
          const reasons = service.logs
            .slice(logged)
            .map((line) => JSON.parse(line) as Record<string, unknown>)
            .filter((entry) => entry.event === "client_assertion_rejected")
            .map((entry) => String(entry.reason));
          assert.equal(reasons.length, 1, `one rejection logged: ${reasons.join(" | ")}`);
          assert.match(reasons[0] ?? "", reason);
        }
      });
    }

    test("… and afterwards the same mfa_token and code still work with a good assertion", async () => {
      assertIssuedTo(await postTokenForm(service, grant(assertionParams(await assertion()))));
    });
  });

  describe("jti", () => {
    defineReplayTests(
      () => service,
      () => keys,
    );

    test("a jti is remembered until exp (+ skew), then forgotten", async () => {
      const [a, b, c] = (await readyUsers(service, 3, JWT_CLIENT_ID)) as [
        ReadyUser,
        ReadyUser,
        ReadyUser,
      ];
      const jti = `fixed-jti-${Date.now()}`;
      const exp = nowSeconds(service) + 60;
      assertIssuedTo(
        await postTokenForm(
          service,
          grantWith(service, a, await assertion({ claims: { jti, exp } })),
        ),
      );
      // A different assertion (new iat, exp) reusing the jti while the first is live.
      service.clock.advance(30_000);
      assertUnauthorized(
        await postTokenForm(service, grantWith(service, b, await assertion({ claims: { jti } }))),
      );
      // Once the first assertion could no longer be accepted, the jti may be used again.
      service.clock.set((exp + 31) * 1000);
      assertIssuedTo(
        await postTokenForm(service, grantWith(service, c, await assertion({ claims: { jti } }))),
      );
    });
  });

  test("rejections are logged at debug by reason, never with the assertion", () => {
    const log = service.logs.join("");
    assert.ok(sent.length > 30);
    for (const value of sent) {
      assert.equal(log.includes(value), false, "an assertion was logged");
      const signature = value.split(".")[2] ?? "";
      if (signature.length > 20)
        assert.equal(log.includes(signature), false, "a signature was logged");
    }
    const reasons = service.logs
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => entry.event === "client_assertion_rejected");
    assert.ok(reasons.length >= 15, `${reasons.length} rejections logged`);
    for (const entry of reasons) {
      assert.equal(entry.level, 20, "debug");
      assert.equal(entry.client_id, JWT_CLIENT_ID);
    }
    assert.ok(new Set(reasons.map((entry) => entry.reason)).size > 5, "reasons are distinct");
  });
});

/** Replays: sequential and 20 concurrent requests carrying one assertion. */
function defineReplayTests(getService: () => TestService, getKeys: () => Keys): void {
  test("the same assertion twice: the second is rejected", async () => {
    const service = getService();
    const [first, second] = (await readyUsers(service, 2, JWT_CLIENT_ID)) as [ReadyUser, ReadyUser];
    const once = await clientAssertionFor(service, getKeys().es256);
    assertIssuedTo(await postTokenForm(service, grantWith(service, first, once)));
    assertUnauthorized(await postTokenForm(service, grantWith(service, second, once)));
    // The replay consumed nothing of the second user's.
    assertIssuedTo(
      await postTokenForm(
        service,
        grantWith(service, second, await clientAssertionFor(service, getKeys().es256)),
      ),
    );
  });

  test("20 concurrent requests carrying one assertion: exactly one is accepted", async () => {
    const service = getService();
    // Twenty users, each request otherwise valid on its own: only the jti can decide.
    const users = await readyUsers(service, 20, JWT_CLIENT_ID);
    const shared = await clientAssertionFor(service, getKeys().eddsa);
    const results = await Promise.all(
      users.map((user) => postTokenForm(service, grantWith(service, user, shared))),
    );
    const accepted = results.filter((r) => r.status === 200);
    assert.equal(accepted.length, 1, JSON.stringify(results.map((r) => r.body)));
    for (const result of results) if (result.status !== 200) assertUnauthorized(result);
    // The losers lost nothing: each succeeds with an assertion of its own.
    const retries = await Promise.all(
      users
        .filter((_, i) => results[i]?.status !== 200)
        .map(async (user) =>
          postTokenForm(
            service,
            grantWith(service, user, await clientAssertionFor(service, getKeys().eddsa)),
          ),
        ),
    );
    for (const retry of retries) assertIssuedTo(retry);
  });
}

describe("private_key_jwt on Redis", () => {
  let keys: Keys;
  let redis: RedisServerHandle;
  let service: TestService;
  before(async () => {
    keys = await generateKeys();
    redis = await startRedisServer();
    service = await startWithJwtClient(keys, { store: "redis", redisUrl: redis.url });
  });
  after(async () => {
    await service?.close();
    await redis?.stop();
  });

  defineReplayTests(
    () => service,
    () => keys,
  );

  test("the remembered jti expires with the assertion (TTL ≤ exp + skew)", async () => {
    const [user] = (await readyUsers(service, 1, JWT_CLIENT_ID)) as [ReadyUser];
    const jti = `ttl-jti-${Date.now()}`;
    const exp = nowSeconds(service) + 60;
    assertIssuedTo(
      await postTokenForm(
        service,
        grantWith(
          service,
          user,
          await clientAssertionFor(service, keys.es256, { claims: { jti, exp } }),
        ),
      ),
    );
    const client = new Redis(redis.url);
    try {
      const ttl = await client.pttl(onceKey(`assertion:${JWT_CLIENT_ID}`, jti));
      assert.ok(ttl > 0 && ttl <= (60 + 30) * 1000 + 1000, `PTTL ${ttl}`);
    } finally {
      client.disconnect();
    }
  });
});

describe("private_key_jwt on PostgreSQL", () => {
  let keys: Keys;
  let postgres: PostgresServerHandle;
  let databaseUrl: string;
  let service: TestService;
  before(async () => {
    keys = await generateKeys();
    postgres = await startPostgresServer();
    databaseUrl = await postgres.freshDatabase();
    service = await startWithJwtClient(keys, { store: "postgres", databaseUrl });
  });
  after(async () => {
    await service?.close();
    await postgres?.stop();
  });

  defineReplayTests(
    () => service,
    () => keys,
  );

  test("the remembered jti expires with the assertion (expiry ≤ exp + skew)", async () => {
    const [user] = (await readyUsers(service, 1, JWT_CLIENT_ID)) as [ReadyUser];
    const jti = `ttl-jti-${Date.now()}`;
    const exp = nowSeconds(service) + 60;
    assertIssuedTo(
      await postTokenForm(
        service,
        grantWith(
          service,
          user,
          await clientAssertionFor(service, keys.es256, { claims: { jti, exp } }),
        ),
      ),
    );
    const [row] = await withClient(
      databaseUrl,
      async (client) =>
        (
          await client.query<{ expires_at: string }>(
            "SELECT expires_at FROM single_use_values WHERE key = $1",
            [singleUseKey(`assertion:${JWT_CLIENT_ID}`, jti)],
          )
        ).rows,
    );
    const ttl = Number(row?.expires_at) - service.clock.nowMs();
    assert.ok(ttl > 0 && ttl <= (60 + 30) * 1000 + 1000, `expires in ${ttl} ms`);
  });
});
