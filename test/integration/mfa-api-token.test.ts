// Removing a factor needs the second factor: DELETE /mfa/authenticators/{id}
// and MfaService.DeleteAuthenticator take only an MFA API access token
// (audience `<issuer>mfa/`, scope `remove:authenticators`, amr `mfa`), rows
// 23 and 24; listing takes an mfa_token or such a token with
// `read:authenticators`. REST and RPC, Bearer and DPoP-bound.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { dpopProofFor, generateTestKey, signJws, type TestKey } from "../support/dpop.js";
import {
  associateResponse,
  clientsFor,
  enrolledUser,
  freshCode,
  issueMfaToken,
  MFA_API_SCOPE,
  mfaApiAudience,
  mfaApiToken,
  otpGrantParams,
  postTokenForm,
  recoveryGrantParams,
  uniqueUserId,
} from "../support/flows.js";
import { assertRpcError } from "../support/oauth-assertions.js";
import { startTestService, type TestService } from "../support/test-service.js";

let service: TestService;
before(async () => {
  service = await startTestService();
});
after(async () => {
  await service.close();
});

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

async function call(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Answer> {
  const response = await fetch(`${service.baseUrl}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === "" ? null : JSON.parse(text),
  };
}

const authenticatorPath = (id: string) => `/mfa/authenticators/${encodeURIComponent(id)}`;

async function listWith(authorization: string): Promise<Answer> {
  return call("GET", "/mfa/authenticators", { authorization });
}

/** The user's OTP authenticator id, listed with a fresh mfa_token. */
async function otpIdOf(userId: string): Promise<string> {
  const listed = await listWith(`Bearer ${await issueMfaToken(service, userId)}`);
  assert.equal(listed.status, 200);
  const otp = (listed.body as { id: string; authenticator_type: string }[]).find(
    (a) => a.authenticator_type === "otp",
  );
  assert.ok(otp, "the user has an OTP authenticator");
  return otp.id;
}

function assertRow23(answer: Answer, scheme = "Bearer"): void {
  assert.deepEqual(
    { status: answer.status, body: answer.body },
    { status: 401, body: { error: "invalid_token", error_description: "Invalid access token" } },
  );
  assert.equal(answer.headers.get("www-authenticate"), `${scheme} error="invalid_token"`);
  assert.equal(answer.headers.get("cache-control"), "no-store");
}

function assertRow24(answer: Answer): void {
  assert.deepEqual(
    { status: answer.status, body: answer.body },
    { status: 403, body: { error: "insufficient_scope", error_description: "Insufficient scope" } },
  );
  assert.match(answer.headers.get("www-authenticate") ?? "", /^Bearer error="insufficient_scope"/);
}

/** The user's authenticators are exactly one active OTP one with this id (nothing was deleted). */
async function assertStillEnrolled(userId: string, id: string): Promise<void> {
  const listed = await listWith(`Bearer ${await issueMfaToken(service, userId)}`);
  assert.deepEqual(
    (listed.body as { id: string; authenticator_type: string; active: boolean }[])
      .filter((a) => a.authenticator_type === "otp")
      .map((a) => [a.id, a.active]),
    [[id, true]],
  );
}

describe("the first-factor-only takeover", () => {
  test("an mfa_token lists, but neither deletes nor re-enrolls, nor gets tokens", async () => {
    const { userId, secret } = await enrolledUser(service);
    // The attacker knows only the password: the first-factor service hands them an mfa_token.
    const attackerToken = await issueMfaToken(service, userId);
    const id = await otpIdOf(userId);
    const deleted = await call("DELETE", authenticatorPath(id), {
      authorization: `Bearer ${attackerToken}`,
    });
    assertRow23(deleted);
    const associated = await call(
      "POST",
      "/mfa/associate",
      { authorization: `Bearer ${attackerToken}`, "content-type": "application/json" },
      JSON.stringify({ authenticator_types: ["otp"] }),
    );
    assert.deepEqual(
      { status: associated.status, body: associated.body },
      {
        status: 403,
        body: { error: "access_denied", error_description: "User is already enrolled." },
      },
    );
    await assertStillEnrolled(userId, id);
    // The real user is unaffected.
    const verified = await postTokenForm(
      service,
      otpGrantParams(await issueMfaToken(service, userId), freshCode(service, secret)),
    );
    assert.equal(verified.status, 200);
  });

  test("over RPC too: DeleteAuthenticator refuses an mfa_token in the field or the header", async () => {
    const { userId } = await enrolledUser(service);
    const id = await otpIdOf(userId);
    const mfaToken = await issueMfaToken(service, userId);
    const rpc = clientsFor(service, "connect-h1");
    const metadata = await assertRpcError(
      rpc.mfa.deleteAuthenticator({ accessToken: mfaToken, authenticatorId: id }),
      Code.Unauthenticated,
      "invalid_token",
      "Invalid access token",
    );
    assert.equal(metadata.get("www-authenticate"), 'Bearer error="invalid_token"');
    await assertRpcError(
      rpc.mfa.deleteAuthenticator(
        { authenticatorId: id },
        { headers: { authorization: `Bearer ${mfaToken}` } },
      ),
      Code.Unauthenticated,
      "invalid_token",
      "Invalid access token",
    );
    await assertStillEnrolled(userId, id);
  });
});

describe("row 23: DELETE without a valid MFA API access token", () => {
  let userId: string;
  let secret: string;
  let id: string;
  let valid: string;
  before(async () => {
    ({ userId, secret } = await enrolledUser(service));
    id = await otpIdOf(userId);
    valid = await mfaApiToken(service, userId, secret);
  });

  /** Every credential that must be refused, by name. */
  async function badCredentials(): Promise<Record<string, string | undefined>> {
    const [header, payload, signature = ""] = valid.split(".");
    const flipped = signature.startsWith("A") ? `B${signature.slice(1)}` : `A${signature.slice(1)}`;
    // A token with the right claims and kid, signed by a key the service does not have.
    const foreignKey: TestKey = await generateTestKey("ES256");
    const foreign = await signJws(
      foreignKey.privateKey,
      decodeProtectedHeader(valid) as { alg: string },
      decodeJwt(valid) as Record<string, unknown>,
    );
    // Another audience, otherwise identical (same user, scope, grant).
    const otherAudienceToken = await issueMfaToken(service, userId, {
      audience: "https://api.example.test",
      scope: MFA_API_SCOPE,
    });
    const otherAudience = await postTokenForm(
      service,
      otpGrantParams(otherAudienceToken, freshCode(service, secret)),
    );
    // An ID token signed by the service's own keys (typ JWT, aud = client).
    const withIdToken = await issueMfaToken(service, userId, {
      audience: mfaApiAudience(service),
      scope: `openid ${MFA_API_SCOPE}`,
    });
    const idTokenGrant = await postTokenForm(
      service,
      otpGrantParams(withIdToken, freshCode(service, secret)),
    );
    return {
      none: undefined,
      "an mfa_token": `Bearer ${await issueMfaToken(service, userId)}`,
      garbage: "Bearer garbage",
      "a tampered payload": `Bearer ${header}.${payload}x.${signature}`,
      "a tampered signature": `Bearer ${header}.${payload}.${flipped}`,
      "a foreign key": `Bearer ${foreign}`,
      "another audience": `Bearer ${String(otherAudience.body.access_token)}`,
      "an ID token": `Bearer ${String(idTokenGrant.body.id_token)}`,
      "an unsigned token": `Bearer ${header}.${payload}.`,
      "Basic credentials": `Basic ${Buffer.from("a:b").toString("base64")}`,
    };
  }

  test("REST: 401 invalid_token with a Bearer challenge, and nothing deleted", async () => {
    for (const [name, authorization] of Object.entries(await badCredentials())) {
      const answer = await call(
        "DELETE",
        authenticatorPath(id),
        authorization === undefined ? {} : { authorization },
      );
      assert.equal(answer.status, 401, name);
      assertRow23(answer);
    }
    await assertStillEnrolled(userId, id);
  });

  test("RPC: Unauthenticated with the invalid_token detail", async () => {
    const rpc = clientsFor(service, "grpc");
    for (const [name, authorization] of Object.entries(await badCredentials())) {
      const token = authorization?.startsWith("Bearer ") ? authorization.slice(7) : "";
      await assertRpcError(
        rpc.mfa.deleteAuthenticator({ accessToken: token, authenticatorId: id }),
        Code.Unauthenticated,
        "invalid_token",
        "Invalid access token",
      ).catch((error: unknown) => assert.fail(`${name}: ${String(error)}`));
    }
    await assertStillEnrolled(userId, id);
  });

  test("an expired MFA API token", async () => {
    const { userId: expiringUser, secret: expiringSecret } = await enrolledUser(service);
    const expiringId = await otpIdOf(expiringUser);
    const token = await mfaApiToken(service, expiringUser, expiringSecret);
    const { exp } = decodeJwt(token);
    service.clock.set(((exp as number) + 1) * 1000);
    assertRow23(
      await call("DELETE", authenticatorPath(expiringId), { authorization: `Bearer ${token}` }),
    );
    await assertRpcError(
      clientsFor(service).mfa.deleteAuthenticator({
        accessToken: token,
        authenticatorId: expiringId,
      }),
      Code.Unauthenticated,
      "invalid_token",
      "Invalid access token",
    );
  });
});

describe("row 24: a valid MFA API token without remove:authenticators", () => {
  test("REST 403 insufficient_scope; RPC PermissionDenied; nothing deleted", async () => {
    const { userId, secret } = await enrolledUser(service);
    const id = await otpIdOf(userId);
    const readOnly = await mfaApiToken(service, userId, secret, { scope: "read:authenticators" });
    const answer = await call("DELETE", authenticatorPath(id), {
      authorization: `Bearer ${readOnly}`,
    });
    assertRow24(answer);
    assert.equal(
      answer.headers.get("www-authenticate"),
      'Bearer error="insufficient_scope", scope="remove:authenticators"',
    );
    await assertRpcError(
      clientsFor(service, "connect-h2").mfa.deleteAuthenticator({
        accessToken: readOnly,
        authenticatorId: id,
      }),
      Code.PermissionDenied,
      "insufficient_scope",
      "Insufficient scope",
    );
    await assertStillEnrolled(userId, id);
  });
});

describe("deleting with the second factor", () => {
  test("via OTP (REST): 204, the list is empty, a new authenticator can be enrolled", async () => {
    const { userId, secret } = await enrolledUser(service);
    const id = await otpIdOf(userId);
    const token = await mfaApiToken(service, userId, secret);
    const claims = decodeJwt(token);
    assert.equal(claims.aud, mfaApiAudience(service));
    assert.deepEqual(claims.amr, ["mfa", "otp"]);
    const deleted = await call("DELETE", authenticatorPath(id), {
      authorization: `Bearer ${token}`,
    });
    assert.deepEqual([deleted.status, deleted.body], [204, null]);
    const listed = await listWith(`Bearer ${token}`);
    assert.deepEqual(
      (listed.body as { authenticator_type: string }[]).filter(
        (a) => a.authenticator_type === "otp",
      ),
      [],
    );
    const association = await associateResponse(service, await issueMfaToken(service, userId));
    assert.equal(association.authenticatorType, "otp");
    assert.notEqual(association.secret, secret);
  });

  test("via a recovery code (lost phone, RPC): delete the old authenticator, enroll a new one", async () => {
    const userId = uniqueUserId("lost-phone");
    const association = await associateResponse(service, await issueMfaToken(service, userId));
    const [recoveryCode = ""] = association.recoveryCodes;
    const activated = await postTokenForm(
      service,
      otpGrantParams(await issueMfaToken(service, userId), freshCode(service, association.secret)),
    );
    assert.equal(activated.status, 200);
    const id = await otpIdOf(userId);

    // The phone is lost: the recovery code gets an MFA API token.
    const rpc = clientsFor(service, "grpc");
    const mfaToken = await issueMfaToken(service, userId, {
      audience: mfaApiAudience(service),
      scope: MFA_API_SCOPE,
    });
    const recovered = await postTokenForm(service, recoveryGrantParams(mfaToken, recoveryCode));
    assert.equal(recovered.status, 200);
    const token = String(recovered.body.access_token);
    assert.deepEqual(decodeJwt(token).amr, ["mfa"]);
    const listed = await rpc.mfa.listAuthenticators({ accessToken: token });
    assert.ok(listed.authenticators.some((a) => a.id === id));
    await rpc.mfa.deleteAuthenticator({ accessToken: token, authenticatorId: id });
    const replacement = await associateResponse(
      service,
      await issueMfaToken(service, userId),
      "grpc",
    );
    const activatedAgain = await postTokenForm(
      service,
      otpGrantParams(await issueMfaToken(service, userId), freshCode(service, replacement.secret)),
    );
    assert.equal(activatedAgain.status, 200);
  });

  test("the Authorization header carries the token on RPC too", async () => {
    const { userId, secret } = await enrolledUser(service);
    const id = await otpIdOf(userId);
    const token = await mfaApiToken(service, userId, secret);
    await clientsFor(service, "grpc-web").mfa.deleteAuthenticator(
      { authenticatorId: id },
      { headers: { authorization: `Bearer ${token}` } },
    );
    assert.equal((await listWith(`Bearer ${token}`)).status, 200);
  });
});

describe("listing with an MFA API access token", () => {
  test("read:authenticators lists on REST and RPC; without it, row 24", async () => {
    const { userId, secret } = await enrolledUser(service);
    const id = await otpIdOf(userId);
    const token = await mfaApiToken(service, userId, secret, { scope: "read:authenticators" });
    const listed = await listWith(`Bearer ${token}`);
    assert.equal(listed.status, 200);
    assert.ok((listed.body as { id: string }[]).some((a) => a.id === id));
    const rpc = await clientsFor(service).mfa.listAuthenticators({ accessToken: token });
    assert.ok(rpc.authenticators.some((a) => a.id === id));

    const removeOnly = await mfaApiToken(service, userId, secret, {
      scope: "remove:authenticators",
    });
    assertRow24(await listWith(`Bearer ${removeOnly}`));
    assertRow23(await listWith("Bearer a.b.c"));
  });
});

describe("DPoP-bound MFA API tokens (RFC 9449 §7)", () => {
  let userId: string;
  let id: string;
  let key: TestKey;
  let token: string;
  before(async () => {
    let secret: string;
    ({ userId, secret } = await enrolledUser(service));
    id = await otpIdOf(userId);
    key = await generateTestKey("ES256");
    token = await mfaApiToken(service, userId, secret, {
      headers: { dpop: await dpopProofFor(service, key) },
    });
    assert.equal(typeof (decodeJwt(token).cnf as { jkt?: unknown } | undefined)?.jkt, "string");
  });

  const url = () => new URL(authenticatorPath(id).slice(1), service.app.ctx.config.issuerUrl).href;
  const ath = (t: string) => createHash("sha256").update(t).digest("base64url");
  const proof = (overrides: { htm?: string; htu?: string; ath?: string; signer?: TestKey } = {}) =>
    dpopProofFor(service, overrides.signer ?? key, overrides.htu ?? url(), {
      claims: { htm: overrides.htm ?? "DELETE", ath: overrides.ath ?? ath(token) },
    });

  test("refused without a proof, as a Bearer token, and with a wrong proof", async () => {
    assertRow23(
      await call("DELETE", authenticatorPath(id), { authorization: `DPoP ${token}` }),
      "DPoP",
    );
    assertRow23(
      await call("DELETE", authenticatorPath(id), {
        authorization: `Bearer ${token}`,
        dpop: await proof(),
      }),
    );
    const other = await generateTestKey("ES256");
    const wrong: Record<string, Promise<string>> = {
      "another URL": proof({ htu: new URL("mfa/authenticators/x", url()).href }),
      "another method": proof({ htm: "POST" }),
      "another token's ath": proof({ ath: ath(`${token}x`) }),
      "another key": proof({ signer: other }),
    };
    for (const [name, pending] of Object.entries(wrong)) {
      const answer = await call("DELETE", authenticatorPath(id), {
        authorization: `DPoP ${token}`,
        dpop: await pending,
      });
      assert.equal(answer.status, 400, name);
      assert.equal((answer.body as { error: string }).error, "invalid_dpop_proof", name);
    }
    await assertStillEnrolled(userId, id);
  });

  test("RPC: the proof in the dpop field, bound to the RPC URL", async () => {
    const rpc = clientsFor(service);
    await assertRpcError(
      rpc.mfa.deleteAuthenticator({ accessToken: token, authenticatorId: id }),
      Code.Unauthenticated,
      "invalid_token",
      "Invalid access token",
    );
    const restProof = await proof();
    const failure = await rpc.mfa
      .deleteAuthenticator({ accessToken: token, authenticatorId: id, dpop: restProof })
      .then(
        () => assert.fail("a proof for the REST URL must not work on RPC"),
        (error: unknown) => error,
      );
    assert.ok(failure);
    await assertStillEnrolled(userId, id);
  });

  test("a right proof deletes; the same proof again is refused", async () => {
    const rpcUrl = new URL(
      "token.v1.MfaService/ListAuthenticators",
      service.app.ctx.config.issuerUrl,
    ).href;
    const listed = await clientsFor(service).mfa.listAuthenticators({
      accessToken: token,
      dpop: await proof({ htm: "POST", htu: rpcUrl }),
    });
    assert.ok(listed.authenticators.some((a) => a.id === id));
    const right = await proof();
    const deleted = await call("DELETE", authenticatorPath(id), {
      authorization: `DPoP ${token}`,
      dpop: right,
    });
    assert.equal(deleted.status, 204);
    const replayed = await call("DELETE", authenticatorPath(id), {
      authorization: `DPoP ${token}`,
      dpop: right,
    });
    assert.deepEqual(
      { status: replayed.status, body: replayed.body },
      {
        status: 400,
        body: {
          error: "invalid_dpop_proof",
          error_description: "DPoP proof has already been used",
        },
      },
    );
  });
});
