// Auth0's browser SDK (@auth0/auth0-spa-js, with its MFA client from
// @auth0/auth0-auth-js) in headless Chromium, from ANOTHER origin than the
// service: the page is served on its own loopback port and the service's
// client lists that origin in `allowed_origins`. Every call therefore goes
// through a CORS preflight, and the SDK sends `Auth0-Client` on every one
// (SPEC §2). Through the SDK's own API: enroll (mfa.enroll), verify
// (mfa.verify with the otp, then with a recovery code), list
// (mfa.getAuthenticators, which keeps only entries whose `type` is a
// challenge type: SPEC §3), challenge (mfa.challenge), refresh
// (getTokenSilently with refresh tokens) and revoke (revokeRefreshToken).
// The SDK has no call for DELETE /mfa/authenticators with an MFA API access
// token (auth0-auth-js's deleteAuthenticator sends an mfa_token, which this
// service refuses, SPEC §4): the page does it with fetch.
//
// auth0-auth-js builds its URLs as `https://<domain>`, so the browser reaches
// the service through a TLS-terminating proxy on loopback (as production sits
// behind one); ISSUER_URL is the proxy's URL, the issuer the SDK checks.

import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Page, Request } from "playwright-core";
import { chromiumSkipReason, type HeadlessChromium, launchChromium } from "../support/chromium.js";
import {
  codeAt,
  issueMfaToken,
  MFA_OTP_GRANT,
  MFA_RECOVERY_CODE_GRANT,
  uniqueUserId,
} from "../support/flows.js";
import { freePort } from "../support/redis-server.js";
import { startTestService, type TestService } from "../support/test-service.js";
import { opensslSkipReason, startTlsProxy, type TlsProxy } from "../support/tls-proxy.js";

const SDK = fileURLToPath(
  new URL(
    "../../node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.js",
    import.meta.url,
  ),
);
const CLIENT_ID = "spa-app";
/** What the SPA asks for: an ID token and a refresh token. */
const SCOPE = "openid offline_access";
const MFA_API_SCOPE = "openid read:authenticators remove:authenticators";

const skip = chromiumSkipReason() ?? (await opensslSkipReason());

/** The SPA's own origin: a page that loads the SDK's UMD build (global `auth0`). */
async function startSpaOrigin(): Promise<{ origin: string; close(): Promise<void> }> {
  const sdk = await readFile(SDK);
  const server: Server = createServer((req, res) => {
    if (req.url === "/auth0-spa-js.production.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(sdk);
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(
      '<!doctype html><html><head><title>SPA</title><script src="/auth0-spa-js.production.js"></script></head><body>SPA</body></html>',
    );
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return {
    origin: `http://127.0.0.1:${address.port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe("@auth0/auth0-spa-js in headless Chromium, from another origin", { skip }, () => {
  let service: TestService;
  let proxy: TlsProxy;
  let spa: Awaited<ReturnType<typeof startSpaOrigin>>;
  let browser: HeadlessChromium;
  let page: Page;
  let clientsDir: string;
  /** Requests the page sent to the service (through the proxy). */
  const requests: Request[] = [];
  const pageErrors: string[] = [];

  before(async () => {
    const servicePort = await freePort();
    proxy = await startTlsProxy(servicePort);
    spa = await startSpaOrigin();
    clientsDir = await mkdtemp(join(tmpdir(), "token-service-spa-"));
    const clientsFile = join(clientsDir, "clients.json");
    await writeFile(
      clientsFile,
      JSON.stringify({
        clients: [
          {
            client_id: CLIENT_ID,
            token_endpoint_auth_method: "none",
            grant_types: [MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT, "refresh_token"],
            allowed_origins: [spa.origin],
          },
        ],
      }),
    );
    service = await startTestService({
      port: servicePort,
      env: { ISSUER_URL: `${proxy.url}/`, CLIENTS_FILE: clientsFile },
    });
    browser = await launchChromium({ ignoreHTTPSErrors: true });
    page = await browser.context.newPage();
    page.setDefaultTimeout(20_000);
    page.on("request", (request) => {
      if (request.url().startsWith(proxy.url)) requests.push(request);
    });
    page.on("console", (message) => {
      if (message.type() === "error") pageErrors.push(message.text());
    });
    page.on("pageerror", (error) => pageErrors.push(String(error)));
    await page.goto(`${spa.origin}/`);
    await page.waitForFunction(
      () => typeof (window as never as { auth0?: unknown }).auth0 === "object",
    );
    // The SPA's client, as an app would create it (refresh tokens in localStorage, no worker).
    await page.evaluate(
      ({ domain, clientId, scope }) => {
        const w = window as never as Record<string, never>;
        const sdk = w.auth0 as unknown as { Auth0Client: new (options: unknown) => unknown };
        (w as Record<string, unknown>).client = new sdk.Auth0Client({
          domain,
          clientId,
          useRefreshTokens: true,
          cacheLocation: "localstorage",
          authorizationParams: { scope },
        });
      },
      // A bare host:port, as Auth0 domains are given: both the SDK and auth0-auth-js prefix https://.
      { domain: proxy.url.replace("https://", ""), clientId: CLIENT_ID, scope: SCOPE },
    );
  });
  after(async () => {
    await browser?.close();
    await service?.close();
    await proxy?.close();
    await spa?.close();
    if (clientsDir) await rm(clientsDir, { recursive: true, force: true });
  });

  /** Runs `body` in the page with the SDK client as `client`; errors come back as `{error, error_description}`. */
  async function inPage<T>(body: string, args: Record<string, unknown> = {}): Promise<T> {
    return page
      .evaluate(
        async ({ body, args }) => {
          const client = (window as never as { client: unknown }).client;
          const run = new Function("client", "args", `return (async () => { ${body} })();`);
          try {
            return { ok: await run(client, args) };
          } catch (error) {
            const e = error as { error?: string; error_description?: string; message?: string };
            return {
              failed: {
                error: e.error,
                error_description: e.error_description,
                message: e.message,
              },
            };
          }
        },
        { body, args },
      )
      .then((result) => {
        const r = result as { ok?: T; failed?: unknown };
        if ("failed" in r && r.failed !== undefined) {
          throw new Error(`in the page: ${JSON.stringify(r.failed)}`);
        }
        return r.ok as T;
      });
  }

  test("enroll, verify, list, challenge, refresh, revoke; then delete through the MFA API", async () => {
    const userId = uniqueUserId("spa");
    // The first-factor service (server side) asks for the mfa_token and hands it to the SPA.
    const enrollToken = await issueMfaToken(service, userId, { clientId: CLIENT_ID, scope: SCOPE });

    // Enroll: the SDK's MFA context is what an mfa_required error would have set.
    const enrollment = await inPage<{
      factors: Array<{ type: string }>;
      enrolled: {
        authenticatorType: string;
        secret: string;
        barcodeUri: string;
        recoveryCodes?: string[];
      };
    }>(
      `client.mfa.setMFAAuthDetails(args.mfaToken, args.scope, undefined, { enroll: [{ type: "otp" }] });
       const factors = await client.mfa.getEnrollmentFactors(args.mfaToken);
       const enrolled = await client.mfa.enroll({ mfaToken: args.mfaToken, factorType: "otp" });
       return { factors, enrolled };`,
      { mfaToken: enrollToken, scope: SCOPE },
    );
    assert.deepEqual(enrollment.factors, [{ type: "otp" }]);
    assert.equal(enrollment.enrolled.authenticatorType, "otp");
    assert.match(enrollment.enrolled.secret, /^[A-Z2-7]{32}$/);
    assert.match(enrollment.enrolled.barcodeUri, /^otpauth:\/\/totp\//);
    const recoveryCode = enrollment.enrolled.recoveryCodes?.[0] ?? "";
    assert.match(recoveryCode, /^[0-9A-Z]{24}$/);

    // Verify: the SDK posts the mfa-otp grant, checks the ID token and caches the tokens.
    const verified = await inPage<{
      tokenType: string;
      hasRefresh: boolean;
      authenticated: boolean;
      sub: string;
    }>(
      `const tokens = await client.mfa.verify({ mfaToken: args.mfaToken, otp: args.otp });
       const user = await client.getUser();
       return {
         tokenType: tokens.token_type,
         hasRefresh: typeof tokens.refresh_token === "string",
         authenticated: await client.isAuthenticated(),
         sub: user.sub,
       };`,
      { mfaToken: enrollToken, otp: codeAt(service, enrollment.enrolled.secret) },
    );
    assert.deepEqual(verified, {
      tokenType: "Bearer",
      hasRefresh: true,
      authenticated: true,
      sub: userId,
    });

    // List and challenge at the next login: the SDK keeps the entries whose `type`
    // is a challenge type (here otp), so the enrolled user sees their authenticator.
    const loginToken = await issueMfaToken(service, userId, { clientId: CLIENT_ID, scope: SCOPE });
    const listed = await inPage<{
      authenticators: Array<{
        id: string;
        authenticatorType: string;
        active: boolean;
        type: string;
      }>;
      challenge: { challengeType: string };
    }>(
      `client.mfa.setMFAAuthDetails(args.mfaToken, args.scope, undefined, { challenge: [{ type: "otp" }] });
       const authenticators = await client.mfa.getAuthenticators(args.mfaToken);
       const challenge = await client.mfa.challenge({
         mfaToken: args.mfaToken, challengeType: "otp", authenticatorId: authenticators[0].id,
       });
       return { authenticators, challenge };`,
      { mfaToken: loginToken, scope: SCOPE },
    );
    assert.equal(listed.authenticators.length, 1, JSON.stringify(listed.authenticators));
    assert.match(listed.authenticators[0]?.id ?? "", /^totp\|/);
    assert.equal(listed.authenticators[0]?.authenticatorType, "otp");
    assert.equal(listed.authenticators[0]?.active, true);
    assert.equal(listed.authenticators[0]?.type, "otp");
    assert.equal(listed.challenge.challengeType, "otp");

    // Refresh: getTokenSilently with the cache off exchanges the refresh token (rotation).
    const refreshTokenOf = () =>
      page.evaluate(() => {
        for (let i = 0; i < localStorage.length; i++) {
          const key = localStorage.key(i) ?? "";
          const entry = JSON.parse(localStorage.getItem(key) ?? "{}");
          if (entry?.body?.refresh_token) return String(entry.body.refresh_token);
        }
        return undefined;
      });
    const firstRefresh = await refreshTokenOf();
    assert.ok(firstRefresh, "the SDK stored a refresh token");
    const refreshed = await inPage<{ accessToken: string }>(
      `const r = await client.getTokenSilently({ cacheMode: "off", detailedResponse: true });
       return { accessToken: r.access_token };`,
    );
    assert.equal(typeof refreshed.accessToken, "string");
    const secondRefresh = await refreshTokenOf();
    assert.ok(secondRefresh && secondRefresh !== firstRefresh, "the refresh token rotated");

    // Revoke: the SDK posts /oauth/revoke; the refresh token is dead afterwards.
    await inPage(`await client.revokeRefreshToken(); return true;`);
    const afterRevoke = await fetch(`${service.baseUrl}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "refresh_token",
        client_id: CLIENT_ID,
        refresh_token: secondRefresh,
      }),
    });
    assert.equal(afterRevoke.status, 400);
    assert.deepEqual(await afterRevoke.json(), {
      error: "invalid_grant",
      error_description: "Unknown or invalid refresh token.",
    });

    // The MFA API: an access token from mfa.verify with the recovery code, then
    // DELETE with fetch from the page (the SDK has no such call).
    const mfaAudience = `${proxy.url}/mfa/`;
    const apiToken = await issueMfaToken(service, userId, {
      clientId: CLIENT_ID,
      audience: mfaAudience,
      scope: MFA_API_SCOPE,
    });
    const deleted = await inPage<{ newRecoveryCode: string; status: number; after: unknown }>(
      `client.mfa.setMFAAuthDetails(args.mfaToken, args.scope, args.audience, { challenge: [{ type: "otp" }] });
       const tokens = await client.mfa.verify({ mfaToken: args.mfaToken, recoveryCode: args.recoveryCode });
       const response = await fetch(args.url, {
         method: "DELETE",
         headers: { authorization: "Bearer " + tokens.access_token },
       });
       const list = await fetch(args.listUrl, { headers: { authorization: "Bearer " + tokens.access_token } });
       return { newRecoveryCode: tokens.recovery_code, status: response.status, after: await list.json() };`,
      {
        mfaToken: apiToken,
        scope: MFA_API_SCOPE,
        audience: mfaAudience,
        recoveryCode,
        url: `${proxy.url}/mfa/authenticators/${encodeURIComponent(listed.authenticators[0]?.id ?? "")}`,
        listUrl: `${proxy.url}/mfa/authenticators`,
      },
    );
    assert.match(deleted.newRecoveryCode, /^[0-9A-Z]{24}$/);
    assert.equal(deleted.status, 204);
    assert.deepEqual(
      (deleted.after as Array<{ type: string }>).map((a) => a.type),
      ["recovery-code"],
    );

    // Every call crossed origins: the SDK sent Auth0-Client on the token and revocation
    // calls, and each call needing one was preceded by a preflight the service answered 204.
    const tokenCalls = requests.filter((r) => /\/oauth\/(token|revoke)$/.test(r.url()));
    assert.ok(tokenCalls.length >= 4, `${tokenCalls.length} token/revoke calls`);
    for (const call of tokenCalls) {
      assert.equal(typeof (await call.allHeaders())["auth0-client"], "string", call.url());
    }
    const preflights = service.logs
      .filter((line) => line.includes('"event":"access"') && line.includes('"method":"OPTIONS"'))
      .map((line) => JSON.parse(line) as { route: string; status: number });
    const preflighted = new Set(preflights.map((p) => p.route));
    for (const route of [
      "/oauth/token",
      "/oauth/revoke",
      "/mfa/associate",
      "/mfa/authenticators",
    ]) {
      assert.ok(
        [...preflighted].some((r) => r.startsWith(route)),
        `a preflight for ${route}: ${JSON.stringify(preflights)}`,
      );
    }
    assert.ok(
      preflights.every((p) => p.status === 204),
      JSON.stringify(preflights),
    );
    assert.deepEqual(pageErrors, []);
  });

  test("a page on an origin no client lists is refused at the preflight", async () => {
    const other = await browser.context.newPage();
    try {
      // Same SPA page, another origin (localhost is not 127.0.0.1 to the browser).
      await other.goto(spa.origin.replace("127.0.0.1", "localhost"));
      const outcome = await other.evaluate(async (url) => {
        try {
          await fetch(url, {
            method: "POST",
            headers: { "content-type": "application/json", "auth0-client": "eyJ9" },
            body: "{}",
          });
          return "answered";
        } catch (error) {
          return String(error);
        }
      }, `${proxy.url}/oauth/token`);
      assert.match(outcome, /TypeError: Failed to fetch/);
    } finally {
      await other.close();
    }
  });
});
