// What Auth0's client libraries need beyond the core grant: POST /mfa/challenge
// (and MfaService.Challenge), the recovery-code authenticator, ID tokens signed
// with the client's algorithm (RS256 by default), OAuth JSON for unknown routes
// and wrong methods, and CORS for browser clients. Tested on the wire.

import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import {
  associateResponse,
  clientsFor,
  enrolledUser,
  freshCode,
  issueMfaToken,
  MFA_OTP_GRANT,
  mfaApiToken,
  otpGrantParams,
  postTokenForm,
  postTokenJson,
  recoveryGrantParams,
  uniqueUserId,
} from "../support/flows.js";
import { h1Request, h2cRequest, jsonOf } from "../support/http-clients.js";
import { assertOAuthError, assertRpcError } from "../support/oauth-assertions.js";
import {
  CLIENTS,
  FIXTURE_CLIENTS_FILE,
  startTestService,
  type TestService,
} from "../support/test-service.js";

const BROWSER_ORIGIN = "https://app.example.test";
const ES256_CLIENT = { id: "es256-id-token-client", secret: "es256-client-secret-0123456789" };

let service: TestService;
before(async () => {
  // The fixture clients, plus one whose ID tokens are ES256 and which browsers may call.
  const dir = mkdtempSync(join(tmpdir(), "drop-in-"));
  const clientsFile = join(dir, "clients.json");
  const fixture = JSON.parse(
    (await import("node:fs")).readFileSync(FIXTURE_CLIENTS_FILE, "utf8"),
  ) as { clients: unknown[] };
  fixture.clients.push({
    client_id: ES256_CLIENT.id,
    client_secret: ES256_CLIENT.secret,
    token_endpoint_auth_method: "client_secret_post",
    grant_types: [MFA_OTP_GRANT],
    id_token_signed_response_alg: "ES256",
    allowed_origins: [BROWSER_ORIGIN],
  });
  writeFileSync(clientsFile, JSON.stringify(fixture));
  service = await startTestService({ env: { CLIENTS_FILE: clientsFile } });
});
after(async () => {
  await service.close();
});

/** POST /mfa/challenge as Auth0's libraries send it (JSON, client_secret_post). */
function challengeRest(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return fetch(`${service.baseUrl}/mfa/challenge`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({
      client_id: CLIENTS.post.id,
      client_secret: CLIENTS.post.secret,
      ...body,
    }),
  }).then(async (response) => ({
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  }));
}

describe("POST /mfa/challenge and MfaService.Challenge", () => {
  test("challenge, then verify: the flow Auth0's libraries run (REST JSON)", async () => {
    const { userId, secret } = await enrolledUser(service);
    const mfaToken = await issueMfaToken(service, userId);
    const challenged = await challengeRest({ mfa_token: mfaToken, challenge_type: "otp oob" });
    assert.deepEqual(
      { status: challenged.status, body: challenged.body },
      { status: 200, body: { challenge_type: "otp" } },
    );
    assert.equal(challenged.headers.get("cache-control"), "no-store");
    // Nothing single-use changed: the same mfa_token verifies.
    const verified = await postTokenJson(service, {
      grant_type: MFA_OTP_GRANT,
      client_id: CLIENTS.post.id,
      client_secret: CLIENTS.post.secret,
      mfa_token: mfaToken,
      otp: freshCode(service, secret),
    });
    assert.equal(verified.status, 200);
  });

  test("form-encoded, with Basic client authentication, and with the authenticator id", async () => {
    const { userId } = await enrolledUser(service);
    const mfaToken = await issueMfaToken(service, userId, { clientId: CLIENTS.basic.id });
    const listed = await clientsFor(service).mfa.listAuthenticators({ mfaToken });
    const otpId = listed.authenticators[0]?.id ?? "";
    const response = await fetch(`${service.baseUrl}/mfa/challenge`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${CLIENTS.basic.id}:${CLIENTS.basic.secret}`).toString("base64")}`,
      },
      body: new URLSearchParams({
        mfa_token: mfaToken,
        challenge_type: "otp",
        authenticator_id: otpId,
      }).toString(),
    });
    assert.deepEqual([response.status, await response.json()], [200, { challenge_type: "otp" }]);
  });

  test("Connect and gRPC: the same answer; a pending authenticator can be challenged", async () => {
    const userId = uniqueUserId("challenge-rpc");
    await associateResponse(service, await issueMfaToken(service, userId));
    for (const protocol of ["connect-h1", "grpc"] as const) {
      const answer = await clientsFor(service, protocol).mfa.challenge({
        mfaToken: await issueMfaToken(service, userId),
        challengeType: "otp",
        clientId: CLIENTS.post.id,
        clientSecret: CLIENTS.post.secret,
      });
      assert.equal(answer.challengeType, "otp", protocol);
    }
  });

  test("row 20: a type the user lacks, or a user with no authenticator", async () => {
    const { userId } = await enrolledUser(service);
    assertOAuthError(
      await challengeRest({
        mfa_token: await issueMfaToken(service, userId),
        challenge_type: "oob",
      }),
      400,
      "unsupported_challenge_type",
      "User is not enrolled with any of the requested challenge types.",
    );
    const fresh = await issueMfaToken(service, uniqueUserId("no-factor"));
    assertOAuthError(
      await challengeRest({ mfa_token: fresh, challenge_type: "otp" }),
      400,
      "unsupported_challenge_type",
      "User is not enrolled with any of the requested challenge types.",
    );
    await assertRpcError(
      clientsFor(service).mfa.challenge({
        mfaToken: fresh,
        challengeType: "otp",
        clientId: CLIENTS.post.id,
        clientSecret: CLIENTS.post.secret,
      }),
      Code.FailedPrecondition,
      "unsupported_challenge_type",
      "User is not enrolled with any of the requested challenge types.",
    );
  });

  test("row 17: another user's or an unknown authenticator id", async () => {
    const { userId } = await enrolledUser(service);
    const other = await enrolledUser(service);
    const [othersOtp] = (
      await clientsFor(service).mfa.listAuthenticators({
        mfaToken: await issueMfaToken(service, other.userId),
      })
    ).authenticators;
    for (const id of [othersOtp?.id ?? "", "totp|unknown", "recovery-code|x", "totp|undefined"]) {
      assertOAuthError(
        await challengeRest({
          mfa_token: await issueMfaToken(service, userId),
          challenge_type: "otp",
          authenticator_id: id,
        }),
        404,
        "not_found",
        "Authenticator not found",
      );
    }
  });

  test("client authentication, grant, parameters and the mfa_token, in order", async () => {
    const { userId, secret } = await enrolledUser(service);
    const mfaToken = await issueMfaToken(service, userId);
    assertOAuthError(
      await challengeRest({ mfa_token: mfaToken, client_secret: "wrong" }),
      401,
      "access_denied",
      "Unauthorized",
    );
    assertOAuthError(
      await challengeRest({
        mfa_token: mfaToken,
        client_id: CLIENTS.noGrant.id,
        client_secret: CLIENTS.noGrant.secret,
      }),
      403,
      "unauthorized_client",
      "Grant type 'http://auth0.com/oauth/grant-type/mfa-otp' not allowed for the client.",
    );
    assertOAuthError(
      await challengeRest({ challenge_type: "otp" }),
      400,
      "invalid_request",
      "Missing required parameter: mfa_token",
    );
    assertOAuthError(
      await challengeRest({ mfa_token: 42 }),
      400,
      "invalid_request",
      "mfa_token must be a string",
    );
    assertOAuthError(
      await challengeRest({ mfa_token: "garbage" }),
      400,
      "invalid_grant",
      "Malformed mfa_token",
    );
    assertOAuthError(
      await challengeRest(
        {
          mfa_token: mfaToken,
          client_id: CLIENTS.basic.id,
          client_secret: undefined,
        },
        {
          authorization: `Basic ${Buffer.from(`${CLIENTS.basic.id}:${CLIENTS.basic.secret}`).toString("base64")}`,
        },
      ),
      400,
      "invalid_request",
      "mfa_token not issued to this client",
    );
    // Used by a verify: row 6, and the bucket is untouched by challenges.
    assert.equal(
      (await postTokenForm(service, otpGrantParams(mfaToken, freshCode(service, secret)))).status,
      200,
    );
    assertOAuthError(
      await challengeRest({ mfa_token: mfaToken }),
      400,
      "expired_token",
      "mfa_token is expired",
    );
  });
});

describe("the recovery-code authenticator", () => {
  test("listed after the first association, still listed after its use; DELETE is row 18", async () => {
    const userId = uniqueUserId("rc-authenticator");
    const association = await associateResponse(service, await issueMfaToken(service, userId));
    const listRest = async () => {
      const response = await fetch(`${service.baseUrl}/mfa/authenticators`, {
        headers: { authorization: `Bearer ${await issueMfaToken(service, userId)}` },
      });
      return (await response.json()) as {
        id: string;
        authenticator_type: string;
        active: boolean;
        type: string;
      }[];
    };
    const first = await listRest();
    assert.deepEqual(
      first.map((a) => [a.authenticator_type, a.active]),
      [
        ["otp", false],
        ["recovery-code", true],
      ],
    );
    const recoveryId = first[1]?.id ?? "";
    assert.match(recoveryId, /^recovery-code\|[A-Za-z0-9_-]{22}$/);

    // Using the code replaces it: the authenticator stays, with the same id.
    const redeemed = await postTokenForm(
      service,
      recoveryGrantParams(await issueMfaToken(service, userId), association.recoveryCodes[0] ?? ""),
    );
    assert.equal(redeemed.status, 200);
    const afterUse = await listRest();
    assert.deepEqual(afterUse[1], {
      id: recoveryId,
      authenticator_type: "recovery-code",
      active: true,
      type: "recovery-code",
    });

    // Deleting it is refused, on REST and RPC, even with a valid MFA API token.
    await postTokenForm(
      service,
      otpGrantParams(await issueMfaToken(service, userId), freshCode(service, association.secret)),
    );
    const token = await mfaApiToken(service, userId, association.secret);
    const deleted = await fetch(
      `${service.baseUrl}/mfa/authenticators/${encodeURIComponent(recoveryId)}`,
      { method: "DELETE", headers: { authorization: `Bearer ${token}` } },
    );
    assert.deepEqual(
      [deleted.status, await deleted.json()],
      [
        403,
        {
          error: "access_denied",
          error_description: "Recovery code authenticator cannot be deleted.",
        },
      ],
    );
    await assertRpcError(
      clientsFor(service, "connect-h2").mfa.deleteAuthenticator({
        accessToken: token,
        authenticatorId: recoveryId,
      }),
      Code.PermissionDenied,
      "access_denied",
      "Recovery code authenticator cannot be deleted.",
    );
    // Another user's recovery-code id is simply not found.
    const other = uniqueUserId("rc-other");
    await associateResponse(service, await issueMfaToken(service, other));
    const [, othersRecovery] = (
      await clientsFor(service).mfa.listAuthenticators({
        mfaToken: await issueMfaToken(service, other),
      })
    ).authenticators;
    assert.notEqual(othersRecovery?.id, recoveryId);
    const foreign = await fetch(
      `${service.baseUrl}/mfa/authenticators/${encodeURIComponent(othersRecovery?.id ?? "")}`,
      { method: "DELETE", headers: { authorization: `Bearer ${token}` } },
    );
    assert.equal(foreign.status, 404);
  });
});

describe("ID tokens signed with the client's algorithm", () => {
  test("RS256 by default (verified with the published RS256 key) while the access token is ES256", async () => {
    const { userId, secret } = await enrolledUser(service);
    const mfaToken = await issueMfaToken(service, userId, { scope: "openid profile" });
    const result = await postTokenForm(
      service,
      otpGrantParams(mfaToken, freshCode(service, secret)),
    );
    assert.equal(result.status, 200);
    const jwks = await (await fetch(`${service.baseUrl}/.well-known/jwks.json`)).json();
    const keySet = createLocalJWKSet(jwks as { keys: [] });
    const idToken = String(result.body.id_token);
    const accessToken = String(result.body.access_token);
    assert.equal(decodeProtectedHeader(idToken).alg, "RS256");
    assert.equal(decodeProtectedHeader(accessToken).alg, "ES256");
    const { payload } = await jwtVerify(idToken, keySet, {
      algorithms: ["RS256"],
      audience: CLIENTS.post.id,
      issuer: service.app.ctx.config.issuerUrl,
      currentDate: new Date(service.clock.nowMs()),
    });
    assert.equal(payload.sub, userId);
    await jwtVerify(accessToken, keySet, {
      algorithms: ["ES256"],
      typ: "at+jwt",
      currentDate: new Date(service.clock.nowMs()),
    });

    const discovery = (await (
      await fetch(`${service.baseUrl}/.well-known/openid-configuration`)
    ).json()) as { id_token_signing_alg_values_supported: string[] };
    assert.deepEqual(discovery.id_token_signing_alg_values_supported, ["ES256", "RS256"]);
  });

  test("a client registered for ES256 gets ES256 ID tokens (Connect)", async () => {
    const userId = uniqueUserId("es256-client");
    const association = await associateResponse(
      service,
      await issueMfaToken(service, userId, { clientId: ES256_CLIENT.id }),
    );
    const tokens = await clientsFor(service).token.verifyMfaOtp({
      mfaToken: await issueMfaToken(service, userId, {
        clientId: ES256_CLIENT.id,
        scope: "openid",
      }),
      otp: freshCode(service, association.secret),
      clientId: ES256_CLIENT.id,
      clientSecret: ES256_CLIENT.secret,
    });
    assert.equal(decodeProtectedHeader(tokens.idToken).alg, "ES256");
  });
});

describe("unknown routes and wrong methods (row 19)", () => {
  test("404 with an OAuth JSON body on HTTP/1.1 and h2c, REST and RPC-looking paths", async () => {
    for (const path of ["/nope", "/oauth/tokens", "/token.v1.TokenService/Nope", "/"]) {
      const answer = await h1Request(service.baseUrl, { method: "GET", path });
      assert.equal(answer.status, 404, path);
      assert.deepEqual(jsonOf(answer), { error: "not_found", error_description: "Not found" });
      assert.match(answer.headers["content-type"] ?? "", /^application\/json/);
    }
    const h2 = await h2cRequest(service.baseUrl, { method: "POST", path: "/nope" });
    assert.deepEqual(
      [h2.status, jsonOf(h2)],
      [404, { error: "not_found", error_description: "Not found" }],
    );
  });

  test("405 with Allow and an OAuth JSON body", async () => {
    const cases: Array<[string, string, string]> = [
      ["GET", "/oauth/token", "POST"],
      ["PUT", "/mfa/challenge", "POST"],
      ["POST", "/mfa/authenticators", "GET, HEAD"],
      ["GET", "/mfa/authenticators/totp%7Cx", "DELETE"],
      ["DELETE", "/.well-known/jwks.json", "GET, HEAD"],
    ];
    for (const [method, path, allow] of cases) {
      const answer = await h1Request(service.baseUrl, { method, path });
      assert.equal(answer.status, 405, `${method} ${path}`);
      assert.equal(answer.headers.allow, allow, `${method} ${path}`);
      assert.deepEqual(jsonOf(answer), {
        error: "invalid_request",
        error_description: "Method not allowed",
      });
    }
  });
});

describe("CORS for browser clients", () => {
  const preflight = (path: string, origin: string) =>
    h1Request(service.baseUrl, {
      method: "OPTIONS",
      path,
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, dpop, auth0-client",
      },
    });

  test("a preflight from a registered origin is 204 with the allow headers; others 403", async () => {
    for (const path of ["/oauth/token", "/mfa/challenge", "/token.v1.TokenService/VerifyMfaOtp"]) {
      const allowed = await preflight(path, BROWSER_ORIGIN);
      assert.equal(allowed.status, 204, path);
      assert.equal(allowed.headers["access-control-allow-origin"], BROWSER_ORIGIN);
      assert.match(allowed.headers["access-control-allow-methods"] ?? "", /POST/);
      assert.match(allowed.headers["access-control-allow-headers"] ?? "", /content-type/i);
      assert.match(allowed.headers["access-control-allow-headers"] ?? "", /dpop/i);
      // Auth0's browser SDK sends Auth0-Client on every call (SPEC §2).
      assert.match(
        allowed.headers["access-control-allow-headers"] ?? "",
        /(^|, )auth0-client(,|$)/,
      );
      assert.match(
        allowed.headers["access-control-allow-headers"] ?? "",
        /connect-protocol-version/i,
      );
      assert.equal(allowed.headers.vary, "Origin");
      const refused = await preflight(path, "https://evil.example.test");
      assert.equal(refused.status, 403, path);
      assert.equal(refused.headers["access-control-allow-origin"], undefined);
    }
  });

  test("an actual request is allowed only for the authenticated client's origins", async () => {
    const userId = uniqueUserId("cors");
    const association = await associateResponse(
      service,
      await issueMfaToken(service, userId, { clientId: ES256_CLIENT.id }),
    );
    const body = (client: { id: string; secret: string }, otp: string, mfaToken: string) =>
      new URLSearchParams({
        grant_type: MFA_OTP_GRANT,
        client_id: client.id,
        client_secret: client.secret,
        mfa_token: mfaToken,
        otp,
      }).toString();
    const post = (payload: string) =>
      h1Request(service.baseUrl, {
        method: "POST",
        path: "/oauth/token",
        headers: { origin: BROWSER_ORIGIN, "content-type": "application/x-www-form-urlencoded" },
        body: payload,
      });
    // The client lists the origin: success and error answers both carry it.
    const wrong = await post(
      body(
        ES256_CLIENT,
        "000000",
        await issueMfaToken(service, userId, { clientId: ES256_CLIENT.id }),
      ),
    );
    assert.equal(wrong.status, 400);
    assert.equal(wrong.headers["access-control-allow-origin"], BROWSER_ORIGIN);
    const ok = await post(
      body(
        ES256_CLIENT,
        freshCode(service, association.secret),
        await issueMfaToken(service, userId, { clientId: ES256_CLIENT.id }),
      ),
    );
    assert.equal(ok.status, 200);
    assert.equal(ok.headers["access-control-allow-origin"], BROWSER_ORIGIN);
    assert.match(ok.headers["access-control-expose-headers"] ?? "", /dpop-nonce/);
    assert.match(ok.headers["access-control-expose-headers"] ?? "", /(^|, )auth0-client(,|$)/);
    // Another client that does not list it, or failed authentication: no header.
    const other = await post(body(CLIENTS.post, "000000", "garbage"));
    assert.equal(other.headers["access-control-allow-origin"], undefined);
    const unauthenticated = await post(body({ id: ES256_CLIENT.id, secret: "wrong" }, "1", "x"));
    assert.equal(unauthenticated.status, 401);
    assert.equal(unauthenticated.headers["access-control-allow-origin"], undefined);
    // The MFA API (no client authentication): some client lists the origin.
    const listed = await h1Request(service.baseUrl, {
      method: "GET",
      path: "/mfa/authenticators",
      headers: {
        origin: BROWSER_ORIGIN,
        authorization: `Bearer ${await issueMfaToken(service, userId, { clientId: ES256_CLIENT.id })}`,
      },
    });
    assert.equal(listed.status, 200);
    assert.equal(listed.headers["access-control-allow-origin"], BROWSER_ORIGIN);
    // Connect from a browser: the authenticated client's origin on the RPC answer.
    const rpc = await clientsFor(service).token.verifyMfaOtp(
      {
        mfaToken: await issueMfaToken(service, userId, { clientId: ES256_CLIENT.id }),
        otp: freshCode(service, association.secret),
        clientId: ES256_CLIENT.id,
        clientSecret: ES256_CLIENT.secret,
      },
      {
        headers: { origin: BROWSER_ORIGIN },
        onHeader: (headers) => {
          assert.equal(headers.get("access-control-allow-origin"), BROWSER_ORIGIN);
        },
      },
    );
    assert.equal(rpc.tokenType, "Bearer");
  });
});
