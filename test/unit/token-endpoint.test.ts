// The token endpoint's rules without a socket: the service layer built as the
// app builds it, on the memory store with a fake clock. The order of the
// checks (rows 10, 1, 2, 3, 4, 11, 5, 7, 6, 8, 9), the failure bucket, the
// replay guard and single use of the mfa_token. (The same rules on the wire,
// over every protocol: test/integration/error-order.test.ts, error-table.test.ts.)

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../../src/config.js";
import { createLiveSettings } from "../../src/live-settings.js";
import { decodeBase32Secret, generateTotp } from "../../src/mfa/totp.js";
import { MFA_OTP_GRANT } from "../../src/oauth/grants/mfa-otp.js";
import { OAuthError } from "../../src/oauth/oauth-error.js";
import { createLogger } from "../../src/observability/logger.js";
import { createServices } from "../../src/service/services.js";
import type { TokenRequest } from "../../src/service/token-endpoint.js";
import { NOT_A_STRING } from "../../src/service/wire-values.js";
import { createServiceDeps } from "../../src/service-deps.js";
import { sessionsBeside } from "../../src/store/create-stores.js";
import { createMemoryStore } from "../../src/store/memory-store.js";
import { createFakeClock } from "../../src/util/clock.js";

const CLIENTS_FILE = fileURLToPath(new URL("../fixtures/clients.json", import.meta.url));
const API_KEY = "unit-internal-api-key-0123456789";
const POST = { clientId: "post-client", clientSecret: "post-client-secret-0123456789" };

function build(env: Record<string, string> = {}) {
  const config = loadConfig({
    CLIENTS_FILE,
    INTERNAL_API_KEY: API_KEY,
    SECRETS_KEY: Buffer.alloc(32, 5).toString("base64"),
    ...env,
  });
  // A step boundary plus one second: codes of "now" and "one step back" are both defined.
  const clock = createFakeClock(Date.UTC(2026, 11, 1, 12, 0, 1));
  const { store, sessions } = sessionsBeside(createMemoryStore({ now: clock.nowMs }));
  const live = createLiveSettings({ clients: config.clients, signingKeys: config.signingKeys });
  const services = createServices(
    createServiceDeps(config, live, store, clock, createLogger("silent"), sessions),
  );
  const issue = async (userId: string, clientId = POST.clientId) =>
    (
      await services.issueMfaToken({
        apiKey: API_KEY,
        userId,
        clientId,
        audience: "",
        scope: "openid",
        userLabel: "",
      })
    ).mfaToken;
  const code = (secret: string, offsetSteps = 0) =>
    generateTotp(decodeBase32Secret(secret), Math.floor(clock.nowMs() / 1000) + offsetSteps * 30);
  const request = (params: TokenRequest["params"], overrides: Partial<TokenRequest> = {}) =>
    ({
      grantType: MFA_OTP_GRANT,
      client: POST,
      params,
      dpop: { proofs: undefined, htu: "http://localhost/oauth/token" },
      clientAddress: "192.0.2.1",
      ...overrides,
    }) satisfies TokenRequest;
  /** A user with an active authenticator; the clock is then one step later. */
  const enrolled = async (userId: string) => {
    const { secret } = await services.associate({
      mfaToken: await issue(userId),
      authenticatorTypes: [],
    });
    await services.tokenEndpoint.exchange(
      request({ mfa_token: await issue(userId), otp: code(secret) }),
    );
    clock.advance(30_000);
    return secret;
  };
  return { services, clock, issue, code, request, enrolled };
}

/** The error an exchange fails with, as [status, error, description]. */
async function failure(promise: Promise<unknown>): Promise<[number, string, string]> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof OAuthError, String(error));
    return [error.status, error.error, error.description];
  }
  return assert.fail("the exchange succeeded");
}

const ROW = {
  1: [401, "access_denied", "Unauthorized"],
  2: [
    403,
    "unauthorized_client",
    "Grant type 'http://auth0.com/oauth/grant-type/mfa-otp' not allowed for the client.",
  ],
  "3 mfa_token": [400, "invalid_request", "Missing required parameter: mfa_token"],
  "3 otp": [400, "invalid_request", "Missing required parameter: otp"],
  "4 otp": [400, "invalid_request", "otp must be a string"],
  5: [400, "invalid_grant", "Malformed mfa_token"],
  6: [400, "expired_token", "mfa_token is expired"],
  7: [400, "invalid_request", "mfa_token not issued to this client"],
  8: [429, "too_many_attempts", "Too many failed attempts. Try again later."],
  9: [400, "invalid_grant", "Invalid otp_code."],
  11: [400, "invalid_dpop_proof", "DPoP proof is not a compact JWS"],
} as const;

describe("the order of the checks", () => {
  const { services, request, issue } = build();
  const exchange = (r: TokenRequest) => failure(services.tokenEndpoint.exchange(r));

  test("row 10 first, then row 1 (whatever else is wrong)", async () => {
    assert.deepEqual(
      await exchange(request({}, { grantType: "password", client: { clientId: "nobody" } })),
      [400, "unsupported_grant_type", "Unsupported grant type: password"],
    );
    assert.deepEqual(
      await exchange(request({}, { client: { clientId: POST.clientId, clientSecret: "x" } })),
      ROW[1],
    );
  });

  test("row 2 before the parameters; mfa_token before otp; missing before not-a-string", async () => {
    const noGrant = {
      clientId: "no-grant-client",
      clientSecret: "no-grant-client-secret-0123456789",
    };
    assert.deepEqual(await exchange(request({}, { client: noGrant })), ROW[2]);
    assert.deepEqual(await exchange(request({ otp: NOT_A_STRING })), ROW["3 mfa_token"]);
    assert.deepEqual(await exchange(request({ mfa_token: "x" })), ROW["3 otp"]);
    assert.deepEqual(await exchange(request({ mfa_token: "x", otp: NOT_A_STRING })), ROW["4 otp"]);
  });

  test("a bad DPoP proof (row 11) before the mfa_token (row 5)", async () => {
    assert.deepEqual(
      await exchange(
        request(
          { mfa_token: "garbage", otp: "123456" },
          { dpop: { proofs: "", htu: "http://localhost/oauth/token" } },
        ),
      ),
      ROW[11],
    );
    assert.deepEqual(await exchange(request({ mfa_token: "garbage", otp: "123456" })), ROW[5]);
  });

  test("row 7 for another client's mfa_token, before whether it was used", async () => {
    const basicToken = await issue("order-user", "basic-client");
    assert.deepEqual(await exchange(request({ mfa_token: basicToken, otp: "123456" })), ROW[7]);
  });
});

describe("verify rules on the memory store", () => {
  test("a success consumes the mfa_token; the same code is a replay even with a new mfa_token", async () => {
    const { services, request, issue, code, enrolled } = build();
    const secret = await enrolled("single-use");
    const mfaToken = await issue("single-use");
    const otp = code(secret);
    const result = await services.tokenEndpoint.exchange(request({ mfa_token: mfaToken, otp }));
    assert.equal(result.tokens.tokenType, "Bearer");
    assert.equal(typeof result.tokens.idToken, "string");
    assert.deepEqual(
      await failure(services.tokenEndpoint.exchange(request({ mfa_token: mfaToken, otp }))),
      ROW[6],
    );
    assert.deepEqual(
      await failure(
        services.tokenEndpoint.exchange(request({ mfa_token: await issue("single-use"), otp })),
      ),
      ROW[9],
    );
  });

  test("the previous step's code is accepted, two steps back is not", async () => {
    const { services, request, issue, code, enrolled, clock } = build();
    const secret = await enrolled("window");
    // The enrolment used the step before this one: move one more, so "previous" is unused.
    clock.advance(30_000);
    const old = code(secret, -2);
    if (old !== code(secret) && old !== code(secret, -1)) {
      assert.deepEqual(
        await failure(
          services.tokenEndpoint.exchange(request({ mfa_token: await issue("window"), otp: old })),
        ),
        ROW[9],
      );
    }
    const previous = await services.tokenEndpoint.exchange(
      request({ mfa_token: await issue("window"), otp: code(secret, -1) }),
    );
    assert.equal(previous.tokens.tokenType, "Bearer");
  });

  test("the failure bucket: OTP_MAX_FAILURES wrong codes, then row 8 with Retry-After, even for the right code", async () => {
    const { services, request, issue, code, enrolled, clock } = build({
      OTP_MAX_FAILURES: "3",
      OTP_FAILURE_REFILL_SECONDS: "60",
    });
    const secret = await enrolled("bucket");
    const wrong = code(secret) === "000000" ? "000001" : "000000";
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(
        await failure(
          services.tokenEndpoint.exchange(
            request({ mfa_token: await issue("bucket"), otp: wrong }),
          ),
        ),
        ROW[9],
      );
    }
    const locked = services.tokenEndpoint.exchange(
      request({ mfa_token: await issue("bucket"), otp: code(secret) }),
    );
    await assert.rejects(locked, (error: unknown) => {
      assert.ok(error instanceof OAuthError);
      assert.deepEqual([error.status, error.error, error.description], ROW[8]);
      assert.equal(error.retryAfterSeconds, 60);
      return true;
    });
    // One attempt refills after 60 s: the right code works again.
    clock.advance(60_000);
    const ok = await services.tokenEndpoint.exchange(
      request({ mfa_token: await issue("bucket"), otp: code(secret) }),
    );
    assert.equal(ok.tokens.tokenType, "Bearer");
  });

  test("an expired mfa_token is row 6 by time", async () => {
    const { services, request, issue, clock } = build({ MFA_TOKEN_TTL_SECONDS: "60" });
    const mfaToken = await issue("expiry");
    clock.advance(61_000);
    assert.deepEqual(
      await failure(services.tokenEndpoint.exchange(request({ mfa_token: mfaToken, otp: "1" }))),
      ROW[6],
    );
  });

  test("a user with no authenticator is row 9", async () => {
    const { services, request, issue } = build();
    assert.deepEqual(
      await failure(
        services.tokenEndpoint.exchange(
          request({ mfa_token: await issue("nobody-enrolled"), otp: "123456" }),
        ),
      ),
      ROW[9],
    );
  });
});
