// The session use cases (src/oauth/sessions/*) on the memory SessionStore with a fake clock:
// issuing, rotation, reuse inside and outside the leeway, expiry, scope, other clients,
// DPoP binding, revocation. Errors are the OAuthError rows 11, 21 and 22.

import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { beforeEach, describe, it } from "node:test";
import type { RegisteredClient } from "../../src/oauth/client-registry.js";
import { type OAuthError, oauthErrors } from "../../src/oauth/oauth-error.js";
import {
  type ExchangeRefreshTokenInput,
  exchangeRefreshToken,
} from "../../src/oauth/sessions/exchange-refresh-token.js";
import {
  DEFAULT_REFRESH_TOKEN_SETTINGS,
  type RefreshTokenSettings,
} from "../../src/oauth/sessions/refresh-token-settings.js";
import {
  revokeRefreshToken,
  revokeUserSessions,
} from "../../src/oauth/sessions/revoke-refresh-token.js";
import {
  createSessionDeps,
  type ReuseDetected,
  type SessionDeps,
} from "../../src/oauth/sessions/session-deps.js";
import { narrowScope } from "../../src/oauth/sessions/session-scope.js";
import { offersRefreshToken, startSession } from "../../src/oauth/sessions/start-session.js";
import { createMemorySessionStore } from "../../src/store/memory-session-store.js";
import { createFakeClock } from "../../src/util/clock.js";

type Client = Pick<RegisteredClient, "clientId" | "authMethod" | "grantTypes" | "refreshToken">;

const MFA_OTP = "http://auth0.com/oauth/grant-type/mfa-otp";
const SECOND = 1000;
const DAY = 86_400 * SECOND;

function client(
  clientId: string,
  settings: Partial<RefreshTokenSettings> = {},
  authMethod: Client["authMethod"] = "client_secret_post",
): Client {
  return {
    clientId,
    authMethod,
    grantTypes: [MFA_OTP, "refresh_token"],
    refreshToken: { ...DEFAULT_REFRESH_TOKEN_SETTINGS, ...settings },
  };
}

const WEB = client("web");
const OTHER = client("other");
const SPA = client("spa", {}, "none");
const SCOPE = "openid profile offline_access";
const JKT = "jkt-of-the-login-key";
const OTHER_JKT = "jkt-of-another-key";

/** The OAuthError the promise rejects with (fails when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<OAuthError> {
  try {
    await promise;
  } catch (err) {
    return err as OAuthError;
  }
  assert.fail("expected a rejection");
}

function assertRow(err: OAuthError, expected: OAuthError) {
  assert.deepEqual(
    [err.name, err.error, err.description, err.status, err.code],
    [expected.name, expected.error, expected.description, expected.status, expected.code],
  );
}

const ROW_21 = oauthErrors.invalidGrant.invalidRefreshToken();
const ROW_22 = oauthErrors.invalidScope();

describe("sessions", () => {
  let clock: ReturnType<typeof createFakeClock>;
  let deps: SessionDeps;
  let reuses: ReuseDetected[];

  beforeEach(() => {
    clock = createFakeClock();
    reuses = [];
    deps = createSessionDeps(randomBytes(32), createMemorySessionStore(), {
      onReuseDetected: (event) => reuses.push(event),
    });
  });

  const userId = `auth0|${randomUUID()}`;

  async function login(
    forClient: Client = WEB,
    options: { scope?: string; dpopJkt?: string; user?: string } = {},
  ): Promise<string> {
    const token = await startSession(deps, {
      client: forClient,
      userId: options.user ?? userId,
      audience: "https://api.example.test/",
      scope: options.scope ?? SCOPE,
      amr: ["mfa", "otp"],
      dpopJkt: options.dpopJkt,
      nowMs: clock.nowMs(),
    });
    assert.ok(token, "a refresh token is issued");
    return token;
  }

  const exchange = (
    refreshToken: string,
    forClient: Client = WEB,
    extra: Partial<ExchangeRefreshTokenInput> = {},
  ) =>
    exchangeRefreshToken(deps, { client: forClient, refreshToken, nowMs: clock.nowMs(), ...extra });

  /** Exchanges and returns the successor (rotating clients). */
  async function rotate(token: string, forClient: Client = WEB, extra = {}): Promise<string> {
    const result = await exchange(token, forClient, extra);
    assert.ok(result.refreshToken, "a successor");
    return result.refreshToken;
  }

  describe("issuing", () => {
    it("needs offline_access in the scope and the refresh_token grant", async () => {
      assert.equal(offersRefreshToken(WEB, SCOPE), true);
      assert.equal(offersRefreshToken(WEB, "openid profile"), false);
      assert.equal(offersRefreshToken(WEB, "openid offline_accessx"), false);
      assert.equal(offersRefreshToken({ grantTypes: [MFA_OTP] }, SCOPE), false);
      const none = await startSession(deps, {
        client: { ...WEB, grantTypes: [MFA_OTP] },
        userId,
        audience: "",
        scope: SCOPE,
        amr: ["mfa"],
        nowMs: clock.nowMs(),
      });
      assert.equal(none, undefined);
      const noScope = await startSession(deps, {
        client: WEB,
        userId,
        audience: "",
        scope: "openid",
        amr: ["mfa"],
        nowMs: clock.nowMs(),
      });
      assert.equal(noScope, undefined);
      assert.match(await login(), /^rt1\.[A-Za-z0-9_-]+$/);
    });
  });

  describe("rotation", () => {
    it("an exchange continues the login: same sub, aud, client_id, amr, scope, auth time; a new token", async () => {
      const loginSeconds = Math.floor(clock.nowMs() / 1000);
      const first = await login();
      clock.advance(SECOND);
      const result = await exchange(first);
      assert.ok(result.refreshToken);
      assert.notEqual(result.refreshToken, first);
      assert.deepEqual(
        { ...result, refreshToken: "" },
        {
          userId,
          clientId: "web",
          audience: "https://api.example.test/",
          scope: SCOPE,
          amr: ["mfa", "otp"],
          authTimeSeconds: loginSeconds,
          refreshToken: "",
        },
      );
      // The successor works, and its successor.
      clock.advance(SECOND);
      await rotate(await rotate(result.refreshToken));
    });

    it("reuse of the previous token (leeway 0) revokes the family: the newest token fails too", async () => {
      const first = await login();
      const second = await rotate(first);
      const third = await rotate(second);
      clock.advance(SECOND);
      assertRow(await rejection(exchange(second)), ROW_21);
      assert.equal(reuses.length, 1);
      assert.equal(reuses[0]?.userId, userId);
      assert.equal(reuses[0]?.clientId, "web");
      assertRow(await rejection(exchange(third)), ROW_21);
      assertRow(await rejection(exchange(first)), ROW_21);
      assert.equal(reuses.length, 1, "a revoked family is unknown: no second reuse");
    });

    it("reuse inside the leeway: a new successor, the family lives on", async () => {
      const leeway = client("leeway", { leewaySeconds: 30 });
      const first = await login(leeway);
      clock.advance(SECOND);
      const second = await rotate(first, leeway);
      clock.advance(30 * SECOND);
      const again = await rotate(first, leeway);
      assert.notEqual(again, second);
      clock.advance(SECOND);
      const next = await rotate(again, leeway);
      await rotate(next, leeway);
      assert.equal(reuses.length, 0);
    });

    it("reuse outside the leeway revokes the family", async () => {
      const leeway = client("leeway", { leewaySeconds: 30 });
      const first = await login(leeway);
      clock.advance(SECOND);
      const second = await rotate(first, leeway);
      clock.advance(30 * SECOND + 1);
      assertRow(await rejection(exchange(first, leeway)), ROW_21);
      assertRow(await rejection(exchange(second, leeway)), ROW_21);
      assert.equal(reuses.length, 1);
    });

    it("a non-rotating client keeps its one token and gets no new one", async () => {
      const fixed = client("fixed", { rotationType: "non-rotating" });
      const token = await login(fixed);
      for (let i = 0; i < 3; i++) {
        clock.advance(DAY);
        const result = await exchange(token, fixed);
        assert.equal(result.refreshToken, undefined);
        assert.equal(result.scope, SCOPE);
      }
    });
  });

  describe("expiry", () => {
    it("absolute: token_lifetime from the login, whatever the exchanges", async () => {
      const short = client("short", { tokenLifetimeSeconds: 100, idleTokenLifetimeSeconds: 60 });
      let token = await login(short);
      clock.advance(50 * SECOND);
      token = await rotate(token, short);
      clock.advance(49 * SECOND);
      token = await rotate(token, short);
      clock.advance(SECOND);
      assertRow(await rejection(exchange(token, short)), ROW_21);
    });

    it("idle: idle_token_lifetime from the last exchange", async () => {
      const idle = client("idle", { idleTokenLifetimeSeconds: 60 });
      let token = await login(idle);
      clock.advance(59 * SECOND);
      token = await rotate(token, idle);
      clock.advance(59 * SECOND);
      token = await rotate(token, idle);
      clock.advance(60 * SECOND);
      assertRow(await rejection(exchange(token, idle)), ROW_21);
    });

    it("infinite lifetimes: still usable years later", async () => {
      const forever = client("forever", {
        infiniteTokenLifetime: true,
        infiniteIdleTokenLifetime: true,
      });
      const token = await login(forever);
      clock.advance(3650 * DAY);
      await rotate(token, forever);
    });

    it("Auth0's defaults: 15 days idle, 30 days absolute", async () => {
      let token = await login();
      for (let day = 14; day <= 28; day += 14) {
        clock.advance(14 * DAY);
        token = await rotate(token);
      }
      clock.advance(2 * DAY);
      assertRow(await rejection(exchange(token)), ROW_21);

      const idle = await login();
      clock.advance(15 * DAY);
      assertRow(await rejection(exchange(idle)), ROW_21);
    });
  });

  describe("scope", () => {
    it("narrows to a subset; a later exchange may ask for the whole login scope again", async () => {
      const first = await login();
      const narrowed = await exchange(first, WEB, { scope: "openid offline_access" });
      assert.equal(narrowed.scope, "openid offline_access");
      assert.ok(narrowed.refreshToken);
      const whole = await exchange(narrowed.refreshToken);
      assert.equal(whole.scope, SCOPE);
      const blank = await exchange(whole.refreshToken ?? "", WEB, { scope: "  " });
      assert.equal(blank.scope, SCOPE);
    });

    it("a scope not granted at the login is invalid_scope, and changes nothing", async () => {
      const first = await login();
      assertRow(await rejection(exchange(first, WEB, { scope: "openid admin" })), ROW_22);
      assertRow(await rejection(exchange(first, WEB, { scope: "read:everything" })), ROW_22);
      await rotate(first);
    });

    it("narrowScope keeps the login's order and drops duplicates", () => {
      assert.equal(narrowScope("a b c", "c a a"), "a c");
      assert.equal(narrowScope("a b", undefined), "a b");
      assert.equal(narrowScope("a b", ""), "a b");
      assert.equal(narrowScope("a b", "a d"), null);
    });
  });

  describe("clients", () => {
    it("another client's token is invalid_grant and changes nothing", async () => {
      const first = await login();
      assertRow(await rejection(exchange(first, OTHER)), ROW_21);
      await rotate(first);
    });

    it("malformed tokens are invalid_grant", async () => {
      const token = await login();
      for (const bad of ["", "rt1.", "x", token.slice(0, -2), `${token}x`, "a".repeat(10_000)]) {
        assertRow(await rejection(exchange(bad)), ROW_21);
      }
    });

    it("a token sealed under another SECRETS_KEY is invalid_grant", async () => {
      const other = createSessionDeps(randomBytes(32), createMemorySessionStore());
      const foreign = await startSession(other, {
        client: WEB,
        userId,
        audience: "",
        scope: SCOPE,
        amr: ["mfa"],
        nowMs: clock.nowMs(),
      });
      assertRow(await rejection(exchange(foreign ?? "")), ROW_21);
    });
  });

  describe("DPoP binding (RFC 9449 §5)", () => {
    const proof = (jkt: string) => ({
      jkt,
      proof: { id: `${jkt}.${randomUUID()}`, ttlMs: 120_000 },
    });

    it("a public client's token is bound: the same key works and binds the new tokens", async () => {
      const first = await login(SPA, { dpopJkt: JKT });
      const result = await exchange(first, SPA, { dpop: proof(JKT) });
      assert.equal(result.dpopJkt, JKT);
      assert.ok(result.refreshToken);
      // The successor is bound too.
      assertRow(
        await rejection(exchange(result.refreshToken, SPA)),
        oauthErrors.invalidDpopProof("DPoP proof is required for this refresh token"),
      );
      await rotate(result.refreshToken, SPA, { dpop: proof(JKT) });
    });

    it("another key or no proof is invalid_dpop_proof, and changes nothing", async () => {
      const first = await login(SPA, { dpopJkt: JKT });
      const otherKey = await rejection(exchange(first, SPA, { dpop: proof(OTHER_JKT) }));
      assertRow(
        otherKey,
        oauthErrors.invalidDpopProof("DPoP proof key does not match the refresh token"),
      );
      const noProof = await rejection(exchange(first, SPA));
      assertRow(
        noProof,
        oauthErrors.invalidDpopProof("DPoP proof is required for this refresh token"),
      );
      await rotate(first, SPA, { dpop: proof(JKT) });
    });

    it("a replayed proof is invalid_dpop_proof and changes nothing", async () => {
      const first = await login(SPA, { dpopJkt: JKT });
      const used = proof(JKT);
      const second = await rotate(first, SPA, { dpop: used });
      assertRow(
        await rejection(exchange(second, SPA, { dpop: used })),
        oauthErrors.invalidDpopProof("DPoP proof has already been used"),
      );
      await rotate(second, SPA, { dpop: proof(JKT) });
    });

    it("a public client's login without a proof gives an unbound token; a proof then binds the access token only", async () => {
      const first = await login(SPA);
      const withProof = await exchange(first, SPA, { dpop: proof(JKT) });
      assert.equal(withProof.dpopJkt, JKT);
      const without = await exchange(withProof.refreshToken ?? "", SPA);
      assert.equal(without.dpopJkt, undefined);
    });

    it("a confidential client's token is not bound to the login's key", async () => {
      const first = await login(WEB, { dpopJkt: JKT });
      const plain = await exchange(first, WEB);
      assert.equal(plain.dpopJkt, undefined);
      const bound = await exchange(plain.refreshToken ?? "", WEB, { dpop: proof(OTHER_JKT) });
      assert.equal(bound.dpopJkt, OTHER_JKT);
    });
  });

  describe("revocation (RFC 7009)", () => {
    it("revoking any token of a family revokes the family", async () => {
      const first = await login();
      const second = await rotate(first);
      await revokeRefreshToken(deps, { client: WEB, token: second, nowMs: clock.nowMs() });
      assertRow(await rejection(exchange(second)), ROW_21);
      const other = await login();
      const otherNext = await rotate(other);
      // A retired token of the family revokes it as well.
      await revokeRefreshToken(deps, { client: WEB, token: other, nowMs: clock.nowMs() });
      assertRow(await rejection(exchange(otherNext)), ROW_21);
      assert.equal(reuses.length, 0);
    });

    it("unknown, malformed and already revoked tokens are silently nothing", async () => {
      const token = await login();
      await revokeRefreshToken(deps, { client: WEB, token, nowMs: clock.nowMs() });
      for (const bad of [token, "", "garbage", "eyJ.eyJ.sig", "rt1.AAAA"]) {
        await revokeRefreshToken(deps, { client: WEB, token: bad, nowMs: clock.nowMs() });
      }
    });

    it("another client's token is left alone", async () => {
      const token = await login();
      await revokeRefreshToken(deps, { client: OTHER, token, nowMs: clock.nowMs() });
      await rotate(token);
    });

    it("revokeUserSessions revokes every family of the user, and only that user's", async () => {
      const user = `auth0|${randomUUID()}`;
      const a = await login(WEB, { user });
      const b = await rotate(await login(SPA, { user }), SPA);
      const fixed = client("fixed", { rotationType: "non-rotating" });
      const c = await login(fixed, { user });
      const bystander = await login(WEB);
      assert.equal(await revokeUserSessions(deps, { userId: user, nowMs: clock.nowMs() }), 3);
      assertRow(await rejection(exchange(a)), ROW_21);
      assertRow(await rejection(exchange(b, SPA)), ROW_21);
      assertRow(await rejection(exchange(c, fixed)), ROW_21);
      await rotate(bystander);
      assert.equal(await revokeUserSessions(deps, { userId: user, nowMs: clock.nowMs() }), 0);
      // Expired families are not counted.
      const idle = client("idle", { idleTokenLifetimeSeconds: 60 });
      await login(idle, { user });
      await login(WEB, { user });
      clock.advance(60 * SECOND);
      assert.equal(await revokeUserSessions(deps, { userId: user, nowMs: clock.nowMs() }), 1);
    });
  });
});
