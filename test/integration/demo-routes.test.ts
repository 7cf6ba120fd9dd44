// The demo page's endpoints over HTTP (no browser): /demo, /demo/login and
// /demo/qr exist only while DEMO is on, answer every error as OAuth JSON, take
// JSON bodies only, never hand out the internal API key, and leave code
// guessing to the real token endpoint and its failure bucket.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { DEMO_CLIENTS_FILE } from "../../src/config.js";
import { DEMO_SESSION_TTL_SECONDS } from "../../src/demo/demo-session.js";
import { DEMO_CLIENT_SECRET } from "../../src/oauth/demo-client.js";
import { postTokenForm, wrongCode } from "../support/flows.js";
import {
  startTestService,
  TEST_INTERNAL_API_KEY,
  type TestService,
} from "../support/test-service.js";

const MFA_OTP_GRANT = "http://auth0.com/oauth/grant-type/mfa-otp";

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: Record<string, unknown>;
}

async function call(
  service: TestService,
  method: string,
  path: string,
  body?: unknown,
  contentType = "application/json",
): Promise<Answer> {
  const response = await fetch(`${service.baseUrl}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : {
          headers: { "content-type": contentType },
          body: typeof body === "string" ? body : JSON.stringify(body),
        }),
  });
  const text = await response.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: response.status, headers: response.headers, text, body: parsed };
}

function assertOAuthError(answer: Answer, status: number, description: string): void {
  assert.deepEqual(
    { status: answer.status, body: answer.body },
    { status, body: { error: "invalid_request", error_description: description } },
  );
  assert.equal(answer.headers.get("cache-control"), "no-store");
}

describe("with the demo client (DEMO on by default)", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({
      env: { CLIENTS_FILE: DEMO_CLIENTS_FILE, OTP_MAX_FAILURES: "2" },
    });
  });
  after(async () => {
    await service.close();
  });

  test("GET /demo: the page, no-store, a CSP whose nonce the page's script carries", async () => {
    const page = await call(service, "GET", "/demo");
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(page.headers.get("cache-control"), "no-store");
    assert.equal(page.headers.get("x-frame-options"), "DENY");
    const nonce = /script-src 'nonce-([^']+)'/.exec(
      page.headers.get("content-security-policy") ?? "",
    )?.[1];
    assert.ok(nonce);
    assert.ok(page.text.includes(`<script nonce="${nonce}">`));
    // The demo client's public secret is on the page; the internal API key is not.
    assert.ok(page.text.includes(DEMO_CLIENT_SECRET));
    assert.equal(page.text.includes(TEST_INTERNAL_API_KEY), false);
    // A second load gets another nonce.
    const again = await call(service, "GET", "/demo");
    assert.notEqual(
      again.headers.get("content-security-policy"),
      page.headers.get("content-security-policy"),
    );
    assert.equal((await fetch(`${service.baseUrl}/demo`, { method: "HEAD" })).status, 200);
  });

  test("POST /demo/login: a new demo user's mfa_token, then more for the same user by session", async () => {
    const first = await call(service, "POST", "/demo/login", { purpose: "login" });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("cache-control"), "no-store");
    assert.deepEqual(Object.keys(first.body).sort(), [
      "audience",
      "expires_in",
      "mfa_requirements",
      "mfa_token",
      "scope",
      "session",
      "user_id",
    ]);
    assert.deepEqual(
      {
        expires_in: first.body.expires_in,
        mfa_requirements: first.body.mfa_requirements,
        audience: first.body.audience,
        scope: first.body.scope,
      },
      {
        expires_in: 600,
        mfa_requirements: { enroll: [{ type: "otp" }] },
        audience: "",
        scope: "openid profile",
      },
    );
    assert.equal(first.text.includes(TEST_INTERNAL_API_KEY), false);

    const mfaApi = await call(service, "POST", "/demo/login", {
      purpose: "mfa-api",
      session: first.body.session,
    });
    assert.equal(mfaApi.status, 200);
    assert.equal(mfaApi.body.user_id, first.body.user_id);
    assert.equal(mfaApi.body.audience, `${service.app.ctx.config.issuerUrl}mfa/`);
    assert.equal(mfaApi.body.scope, "read:authenticators remove:authenticators");

    const other = await call(service, "POST", "/demo/login", {});
    assert.notEqual(other.body.user_id, first.body.user_id);
  });

  test("POST /demo/login errors are OAuth JSON", async () => {
    assertOAuthError(
      await call(
        service,
        "POST",
        "/demo/login",
        "purpose=login",
        "application/x-www-form-urlencoded",
      ),
      415,
      "Unsupported content type: use application/json",
    );
    assertOAuthError(
      await call(service, "POST", "/demo/login", "{", "application/json"),
      400,
      "Malformed JSON body",
    );
    assertOAuthError(
      await call(service, "POST", "/demo/login", { purpose: "admin" }),
      400,
      'purpose must be "login" or "mfa-api"',
    );
    assertOAuthError(
      await call(service, "POST", "/demo/login", { purpose: "mfa-api" }),
      400,
      "Missing required parameter: session",
    );
    assertOAuthError(
      await call(service, "POST", "/demo/login", { purpose: "mfa-api", session: "forged" }),
      400,
      "Unknown or expired demo session: start a new demo login",
    );
    const wrongMethod = await call(service, "GET", "/demo/login");
    assertOAuthError(wrongMethod, 405, "Method not allowed");
    assert.equal(wrongMethod.headers.get("allow"), "POST");
  });

  test("a session expires after an hour", async () => {
    const { body } = await call(service, "POST", "/demo/login", {});
    service.clock.advance(DEMO_SESSION_TTL_SECONDS * 1000);
    try {
      assertOAuthError(
        await call(service, "POST", "/demo/login", { session: body.session }),
        400,
        "Unknown or expired demo session: start a new demo login",
      );
    } finally {
      service.clock.advance(-DEMO_SESSION_TTL_SECONDS * 1000);
    }
  });

  test("POST /demo/qr renders otpauth://totp/ URIs only", async () => {
    const uri =
      "otpauth://totp/token-service:demo?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=token-service";
    const qr = await call(service, "POST", "/demo/qr", { barcode_uri: uri });
    assert.equal(qr.status, 200);
    const image = String(qr.body.image);
    assert.match(image, /^data:image\/svg\+xml;base64,/);
    assert.match(Buffer.from(image.split(",")[1] ?? "", "base64").toString("utf8"), /^<svg /);
    assertOAuthError(
      await call(service, "POST", "/demo/qr", { barcode_uri: "https://example.test/" }),
      400,
      "barcode_uri must be an otpauth://totp/ URI",
    );
    assertOAuthError(
      await call(service, "POST", "/demo/qr", {
        barcode_uri: `otpauth://totp/${"a".repeat(1100)}`,
      }),
      400,
      "barcode_uri must be at most 1024 characters",
    );
    assertOAuthError(
      await call(service, "POST", "/demo/qr", {}),
      400,
      "Missing required parameter: barcode_uri",
    );
  });

  test("guessing a demo user's code drains that user's failure bucket like any other", async () => {
    const login = await call(service, "POST", "/demo/login", {});
    const mfaToken = String(login.body.mfa_token);
    const associated = await fetch(`${service.baseUrl}/mfa/associate`, {
      method: "POST",
      headers: { authorization: `Bearer ${mfaToken}`, "content-type": "application/json" },
      body: JSON.stringify({ authenticator_types: ["otp"] }),
    });
    const { secret } = (await associated.json()) as { secret: string };
    const guess = {
      grant_type: MFA_OTP_GRANT,
      client_id: "demo-app",
      client_secret: DEMO_CLIENT_SECRET,
      mfa_token: mfaToken,
      otp: wrongCode(service, secret),
    };
    assert.equal((await postTokenForm(service, guess)).status, 400);
    assert.equal((await postTokenForm(service, guess)).status, 400);
    const locked = await postTokenForm(service, guess);
    assert.equal(locked.status, 429);
    assert.equal(locked.body.error, "too_many_attempts");
  });
});

describe("without the demo page", () => {
  for (const [name, env] of [
    ["the operator's own clients", {}],
    ["DEMO=false with the demo client", { CLIENTS_FILE: DEMO_CLIENTS_FILE, DEMO: "false" }],
  ] as const) {
    test(`${name}: /demo and /demo/* are 404 not_found`, async () => {
      const service = await startTestService({ env });
      try {
        for (const [method, path] of [
          ["GET", "/demo"],
          ["POST", "/demo/login"],
          ["POST", "/demo/qr"],
        ] as const) {
          const answer = await call(service, method, path, method === "POST" ? {} : undefined);
          assert.deepEqual(
            { status: answer.status, body: answer.body },
            { status: 404, body: { error: "not_found", error_description: "Not found" } },
            `${method} ${path}`,
          );
        }
      } finally {
        await service.close();
      }
    });
  }
});
