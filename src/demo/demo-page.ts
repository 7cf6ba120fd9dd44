/** What the page needs to know about the service, rendered into it. */
export interface DemoPageOptions {
  /** The demo client the page logs in as (its secret is public: config/clients.example.json). */
  clientId: string;
  clientSecret: string;
  authMethod: "client_secret_post" | "client_secret_basic";
  issuerName: string;
  /** One random value per response: the Content-Security-Policy allows only this script and style. */
  nonce: string;
}

/**
 * The Content-Security-Policy of the page: its own inline script and style
 * (by nonce), images from data: URLs (the QR code), fetch to its own origin
 * only; no framing, no forms, no base URL.
 */
export function demoPageCsp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "img-src data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/**
 * The demo page: plain server-rendered HTML and one short script that calls
 * the same endpoints a real application would (`/mfa/associate`,
 * `/oauth/token`, `/mfa/authenticators`), plus `/demo/login` (the stand-in
 * for a first-factor service) and `/demo/qr` (the QR image). Every value from
 * the service is written with `textContent`, never as HTML.
 */
export function renderDemoPage(options: DemoPageOptions): string {
  const config = jsonForScript({
    client_id: options.clientId,
    client_secret: options.clientSecret,
    auth_method: options.authMethod,
  });
  const nonce = escapeHtml(options.nonce);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(options.issuerName)} — MFA demo</title>
<style nonce="${nonce}">
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; }
  section { border: 1px solid #ccc; border-radius: 8px; padding: 0.5rem 1.25rem 1rem; margin: 1rem 0; }
  h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; }
  pre { background: #f4f4f4; padding: 0.75rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; font-size: 0.85rem; }
  code { background: #f4f4f4; padding: 0.1rem 0.3rem; word-break: break-all; }
  button { font-size: 1rem; padding: 0.4rem 1rem; cursor: pointer; }
  input { font: 1.4rem monospace; width: 7ch; letter-spacing: 0.2ch; padding: 0.2rem 0.4rem; }
  #qr { width: 240px; height: 240px; image-rendering: pixelated; display: block; }
  .columns { display: flex; gap: 1rem; flex-wrap: wrap; } .columns > div { flex: 1 1 24rem; min-width: 0; }
  #error { border-color: #c33; background: #fff4f4; }
  .note { color: #555; font-size: 0.9rem; }
</style>
</head>
<body>
<h1>${escapeHtml(options.issuerName)}: multi-factor login with your own phone</h1>
<p class="note">This page exists only while the service runs on its embedded development default
(the demo client, not <code>NODE_ENV=production</code>); <code>DEMO=false</code> turns it off.
It logs in as the demo client <code>${escapeHtml(options.clientId)}</code> for a new demo user.</p>

<section id="step-login">
<h2>1. Start a demo login</h2>
<p>After a password check, a first-factor service asks this service for an <code>mfa_token</code>
(<code>IssueMfaToken</code>, with the internal API key). Here <code>POST /demo/login</code> does that
in-process for a throw-away demo user; the key never reaches the browser.</p>
<button id="start" type="button">Start demo login</button>
<pre id="login-response" hidden></pre>
</section>

<section id="step-enroll" hidden>
<h2>2. Scan the QR code</h2>
<p>The page called <code>POST /mfa/associate</code> with the mfa_token. Scan the code with an
authenticator app (Google Authenticator, 1Password, FreeOTP, …) or type the secret into it.</p>
<img id="qr" alt="QR code of the otpauth:// URI">
<p>Secret: <code id="secret"></code></p>
<p>Recovery code (keep it: step 4 logs in with it instead of the phone): <code id="recovery-code"></code></p>
<p><label for="code">6-digit code from the app:</label>
<input id="code" inputmode="numeric" autocomplete="one-time-code" maxlength="6" pattern="[0-9]{6}">
<button id="verify" type="button">Verify</button></p>
</section>

<section id="step-tokens" hidden>
<h2>3. Tokens</h2>
<p><code>POST /oauth/token</code> with the mfa-otp grant answered:</p>
<pre id="token-response"></pre>
<div class="columns">
<div><h3>Access token claims</h3><pre id="access-claims"></pre></div>
<div><h3>ID token claims</h3><pre id="id-claims"></pre></div>
</div>
</section>

<section id="step-recovery" hidden>
<h2>4. Lost the phone? Recovery code, then remove the authenticator</h2>
<p>A second login for the same user asks for the MFA API (audience <code>…/mfa/</code>, scope
<code>read:authenticators remove:authenticators</code>) and passes the
<code>mfa-recovery-code</code> grant. The access token it gets lists and deletes authenticators
(<code>GET</code> and <code>DELETE /mfa/authenticators</code>): removing a factor needs the second factor.</p>
<button id="recover" type="button">Log in with the recovery code and delete the authenticator</button>
<div id="recovery-results" hidden>
<h3>Recovery-code login (the response carries the recovery code that replaces the used one)</h3>
<pre id="recovery-response"></pre>
<h3>Authenticators before</h3><pre id="authenticators-before"></pre>
<h3>Delete</h3><pre id="delete-result"></pre>
<h3>Authenticators after</h3><pre id="authenticators-after"></pre>
</div>
</section>

<section id="error" hidden>
<h2>Error</h2>
<pre id="error-body"></pre>
</section>

<script type="application/json" id="demo-config">${config}</script>
<script nonce="${nonce}">
"use strict";
const cfg = JSON.parse(document.getElementById("demo-config").textContent);
const $ = (id) => document.getElementById(id);
const show = (id, value) => { $(id).textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2); $(id).hidden = false; };
const b64url = (part) => new TextDecoder().decode(Uint8Array.from(atob(part.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)));
const decode = (jwt) => { const [h, p] = jwt.split("."); return { header: JSON.parse(b64url(h)), claims: JSON.parse(b64url(p)) }; };
const state = {};

async function call(method, path, body, headers = {}) {
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const json = text === "" ? null : JSON.parse(text);
  if (!res.ok) throw Object.assign(new Error(method + " " + path), { status: res.status, body: json });
  return json ?? { status: res.status };
}
const bearer = (token) => ({ authorization: "Bearer " + token });
// The demo client's credentials as it registered them (RFC 6749 §2.3.1).
function token(params) {
  if (cfg.auth_method === "client_secret_basic") {
    const basic = btoa(encodeURIComponent(cfg.client_id) + ":" + encodeURIComponent(cfg.client_secret));
    return call("POST", "/oauth/token", params, { authorization: "Basic " + basic });
  }
  return call("POST", "/oauth/token", { ...params, client_id: cfg.client_id, client_secret: cfg.client_secret });
}
function step(button, run) {
  $(button).addEventListener("click", async () => {
    $(button).disabled = true;
    $("error").hidden = true;
    try { await run(); } catch (e) {
      show("error-body", e.body !== undefined ? { status: e.status, request: e.message, body: e.body } : String(e));
      $("error").hidden = false;
      $(button).disabled = false;
    }
  });
}

step("start", async () => {
  const login = await call("POST", "/demo/login", { purpose: "login" });
  state.session = login.session;
  state.mfaToken = login.mfa_token;
  show("login-response", { user_id: login.user_id, mfa_token: login.mfa_token, expires_in: login.expires_in, mfa_requirements: login.mfa_requirements });
  const enrolled = await call("POST", "/mfa/associate", { authenticator_types: ["otp"] }, bearer(login.mfa_token));
  state.recoveryCode = (enrolled.recovery_codes ?? [])[0];
  const qr = await call("POST", "/demo/qr", { barcode_uri: enrolled.barcode_uri });
  $("qr").src = qr.image;
  show("secret", enrolled.secret);
  show("recovery-code", state.recoveryCode ?? "(none: not the first association)");
  $("step-enroll").hidden = false;
  $("code").focus();
});

step("verify", async () => {
  const tokens = await token({ grant_type: "http://auth0.com/oauth/grant-type/mfa-otp", mfa_token: state.mfaToken, otp: $("code").value.trim() });
  show("token-response", tokens);
  show("access-claims", decode(tokens.access_token));
  show("id-claims", tokens.id_token ? decode(tokens.id_token) : "(no id_token: the scope has no openid)");
  $("step-tokens").hidden = false;
  $("step-recovery").hidden = false;
});

step("recover", async () => {
  const login = await call("POST", "/demo/login", { purpose: "mfa-api", session: state.session });
  const tokens = await token({ grant_type: "http://auth0.com/oauth/grant-type/mfa-recovery-code", mfa_token: login.mfa_token, recovery_code: state.recoveryCode });
  show("recovery-response", { ...tokens, access_token_claims: decode(tokens.access_token).claims });
  const before = await call("GET", "/mfa/authenticators", undefined, bearer(tokens.access_token));
  show("authenticators-before", before);
  const otp = before.find((a) => a.authenticator_type === "otp");
  const path = "/mfa/authenticators/" + encodeURIComponent(otp.id);
  await call("DELETE", path, undefined, bearer(tokens.access_token));
  show("delete-result", "DELETE " + path + " → 204 No Content");
  show("authenticators-after", await call("GET", "/mfa/authenticators", undefined, bearer(tokens.access_token)));
  $("recovery-results").hidden = false;
});
</script>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string,
  );
}

/** JSON inside a <script> element: `<` escaped so no value can close the element. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c");
}
