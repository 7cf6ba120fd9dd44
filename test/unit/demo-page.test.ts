// The demo page's HTML (src/demo/demo-page.ts): values from the configuration
// are escaped, and the Content-Security-Policy allows exactly the page's own
// nonce-bearing script and style.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { demoPageCsp, renderDemoPage } from "../../src/demo/demo-page.js";

const OPTIONS = {
  clientId: "demo-app",
  clientSecret: "demo-secret-change-me",
  authMethod: "client_secret_post",
  issuerName: "token-service",
  nonce: "bm9uY2Utbm9uY2Utbm9uY2U=",
} as const;

describe("the demo page", () => {
  test("every script and style element carries the nonce the policy names", () => {
    const html = renderDemoPage(OPTIONS);
    const csp = demoPageCsp(OPTIONS.nonce);
    assert.match(csp, /script-src 'nonce-bm9uY2Utbm9uY2Utbm9uY2U='/);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /connect-src 'self'/);
    const executable = html.match(/<script(?![^>]*type="application\/json")[^>]*>/g) ?? [];
    assert.deepEqual(executable, [`<script nonce="${OPTIONS.nonce}">`]);
    assert.deepEqual(html.match(/<style[^>]*>/g), [`<style nonce="${OPTIONS.nonce}">`]);
  });

  test("names from the configuration are escaped in HTML and in the script's JSON", () => {
    const html = renderDemoPage({
      ...OPTIONS,
      clientId: "</script><img src=x onerror=alert(1)>",
      issuerName: "<b>Acme</b> & Co",
    });
    assert.equal(html.includes("<img src=x"), false);
    assert.equal(html.includes("<b>Acme</b>"), false);
    assert.ok(html.includes("&lt;b&gt;Acme&lt;/b&gt; &amp; Co"));
    const config = /<script type="application\/json" id="demo-config">(.*?)<\/script>/.exec(html);
    assert.ok(config?.[1]);
    assert.equal(JSON.parse(config[1]).client_id, "</script><img src=x onerror=alert(1)>");
  });
});
