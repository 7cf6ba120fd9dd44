// The demo page (/demo) in headless Chromium: it starts a demo login, shows a
// QR code image, the secret and the recovery code; a code the test computes
// from that secret gets tokens whose claims the page shows; the second step
// logs in with the recovery code and deletes the authenticator through the
// MFA API. A screenshot is written to .tmp/demo-page.png.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { DEMO_CLIENTS_FILE } from "../../src/config.js";
import { generateTotp } from "../../src/mfa/totp.js";
import { chromiumSkipReason, type HeadlessChromium, launchChromium } from "../support/chromium.js";
import { wrongCode } from "../support/flows.js";
import { startTestService, type TestService } from "../support/test-service.js";

const SCREENSHOT = fileURLToPath(new URL("../../.tmp/demo-page.png", import.meta.url));
const skip = chromiumSkipReason();

describe("the demo page in headless Chromium", { skip }, () => {
  let service: TestService;
  let browser: HeadlessChromium;
  let page: Page;
  /** Console errors and uncaught exceptions of the page (a CSP violation shows up here). */
  const pageErrors: string[] = [];

  before(async () => {
    // The embedded default's clients file: the demo client, so DEMO is on by default.
    service = await startTestService({ env: { CLIENTS_FILE: DEMO_CLIENTS_FILE } });
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.setDefaultTimeout(20_000);
    page.on("console", (message) => {
      if (message.type() === "error") pageErrors.push(message.text());
    });
    page.on("pageerror", (error) => pageErrors.push(String(error)));
  });
  after(async () => {
    await browser?.close();
    await service?.close();
  });

  const textOf = async (selector: string) => (await page.textContent(selector))?.trim() ?? "";
  const jsonOf = async (selector: string) => JSON.parse(await textOf(selector));

  test("enrolls, accepts a computed code, shows the claims, then recovers and deletes", async () => {
    await page.goto(`${service.baseUrl}/demo`);
    assert.match(await page.title(), /MFA demo/);

    // Step 1–2: demo login, Associate, the QR code as a rendered image.
    await page.click("#start");
    await page.waitForFunction(() => {
      const img = document.getElementById("qr") as HTMLImageElement | null;
      return img?.complete === true && img.naturalWidth > 0;
    });
    assert.match((await page.getAttribute("#qr", "src")) ?? "", /^data:image\/svg\+xml;base64,/);
    const login = await jsonOf("#login-response");
    assert.match(login.user_id, /^demo-[A-Za-z0-9_-]{22}$/);
    assert.deepEqual(login.mfa_requirements, { enroll: [{ type: "otp" }] });
    const secret = await textOf("#secret");
    assert.match(secret, /^[A-Z2-7]{32}$/);
    const recoveryCode = await textOf("#recovery-code");
    assert.match(recoveryCode, /^[A-Z0-9]{24}$/);

    // A wrong code is answered as the token endpoint answers it, shown as OAuth JSON.
    await page.fill("#code", wrongCode(service, secret));
    await page.click("#verify");
    await page.waitForSelector("#error", { state: "visible" });
    assert.deepEqual((await jsonOf("#error-body")).body, {
      error: "invalid_grant",
      error_description: "Invalid otp_code.",
    });

    // Step 3: the code an authenticator app would show now.
    await page.fill("#code", generateTotp(secret, Math.floor(service.clock.nowMs() / 1000)));
    await page.click("#verify");
    await page.waitForSelector("#access-claims", { state: "visible" });
    assert.equal(await page.isHidden("#error"), true);
    const tokens = await jsonOf("#token-response");
    assert.deepEqual(
      { token_type: tokens.token_type, scope: tokens.scope, expires_in: tokens.expires_in },
      { token_type: "Bearer", scope: "openid profile", expires_in: 86_400 },
    );
    const access = await jsonOf("#access-claims");
    assert.equal(access.header.typ, "at+jwt");
    assert.deepEqual(
      {
        iss: access.claims.iss,
        sub: access.claims.sub,
        client_id: access.claims.client_id,
        aud: access.claims.aud,
        scope: access.claims.scope,
        amr: access.claims.amr,
      },
      {
        iss: service.app.ctx.config.issuerUrl,
        sub: login.user_id,
        client_id: "demo-app",
        aud: "demo-app",
        scope: "openid profile",
        amr: ["mfa", "otp"],
      },
    );
    const id = await jsonOf("#id-claims");
    assert.equal(id.header.alg, "RS256");
    assert.deepEqual(
      { sub: id.claims.sub, aud: id.claims.aud, amr: id.claims.amr },
      { sub: login.user_id, aud: "demo-app", amr: ["mfa", "otp"] },
    );

    // Step 4: recovery-code login for the MFA API, list, delete, list.
    await page.click("#recover");
    await page.waitForSelector("#authenticators-after", { state: "visible" });
    const recovered = await jsonOf("#recovery-response");
    assert.deepEqual(recovered.access_token_claims.amr, ["mfa"]);
    assert.equal(recovered.access_token_claims.aud, `${service.app.ctx.config.issuerUrl}mfa/`);
    assert.match(recovered.recovery_code, /^[A-Z0-9]{24}$/);
    assert.notEqual(recovered.recovery_code, recoveryCode);
    const before = (await jsonOf("#authenticators-before")) as { authenticator_type: string }[];
    assert.deepEqual(
      before.map((a) => a.authenticator_type),
      ["otp", "recovery-code"],
    );
    assert.match(await textOf("#delete-result"), /→ 204 No Content$/);
    const afterDelete = (await jsonOf("#authenticators-after")) as { authenticator_type: string }[];
    assert.equal(
      afterDelete.some((a) => a.authenticator_type === "otp"),
      false,
    );
    assert.equal(await page.isHidden("#error"), true);

    mkdirSync(new URL("../../.tmp/", import.meta.url), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    // The only console error is the browser's own report of the wrong code's 400.
    assert.deepEqual(
      pageErrors.filter((e) => !/status of 400/.test(e)),
      [],
    );

    // Nothing the page saw that is secret reached the service's log.
    const logs = service.logs.join("");
    for (const value of [secret, recoveryCode, recovered.recovery_code, tokens.access_token]) {
      assert.equal(logs.includes(value), false);
    }
  });
});
