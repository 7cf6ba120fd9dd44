// The sealed mfa_token format (src/mfa/mfa-token-codec.ts): round trip, and null for
// anything not sealed by this SECRETS_KEY (error row 5).

import assert from "node:assert/strict";
import { test } from "node:test";
import { createMfaTokenCodec, MAX_MFA_TOKEN_LENGTH } from "../../src/mfa/mfa-token-codec.js";

const codec = createMfaTokenCodec(Buffer.alloc(32, 3));
const CLAIMS = {
  userId: "auth0|user:1",
  clientId: "web-app",
  audience: "https://api.example.test",
  scope: "openid profile",
  userLabel: "ünïcode@example.test",
  expiresAt: 1_767_225_600,
};

test("issue then decode returns the claims and a fresh random tokenId", () => {
  const first = codec.issue(CLAIMS);
  const second = codec.issue(CLAIMS);
  assert.match(first.token, /^mt1\.[A-Za-z0-9_-]+$/);
  assert.match(first.claims.tokenId, /^[A-Za-z0-9_-]{22}$/);
  assert.notEqual(first.claims.tokenId, second.claims.tokenId);
  assert.notEqual(first.token, second.token);
  assert.deepEqual(codec.decode(first.token), { tokenId: first.claims.tokenId, ...CLAIMS });
});

test("the claims are not readable in the token", () => {
  const { token } = codec.issue(CLAIMS);
  const decoded = Buffer.from(token.slice(4), "base64url").toString("latin1");
  for (const value of ["auth0|user", "web-app", "api.example.test", "openid"]) {
    assert.ok(!decoded.includes(value), value);
  }
});

test("every byte position is protected", () => {
  const { token } = codec.issue(CLAIMS);
  const raw = Buffer.from(token.slice(4), "base64url");
  for (let i = 0; i < raw.length; i++) {
    const copy = Buffer.from(raw);
    copy[i] = (copy[i] as number) ^ 0x01;
    assert.equal(codec.decode(`mt1.${copy.toString("base64url")}`), null, `byte ${i}`);
  }
});

test("foreign, truncated, mis-prefixed and oversized tokens decode to null", () => {
  const { token } = codec.issue(CLAIMS);
  const foreign = createMfaTokenCodec(Buffer.alloc(32, 4)).issue(CLAIMS).token;
  for (const candidate of [
    foreign,
    token.slice(0, -1),
    token.slice(0, 20),
    `mt2.${token.slice(4)}`,
    token.slice(4),
    "",
    "mt1.",
    "mt1.!!!!",
    `mt1.${"A".repeat(MAX_MFA_TOKEN_LENGTH)}`,
  ]) {
    assert.equal(codec.decode(candidate), null, candidate.slice(0, 40));
  }
});

test("only the canonical encoding decodes: every character position, stray and trailing characters", () => {
  // Node's base64url decoder is lenient (it skips stray characters and drops a
  // dangling last one); a token must not have two spellings.
  for (const userLabel of ["a", "ab", "abc", "abcd"]) {
    const { token } = codec.issue({ ...CLAIMS, userLabel });
    for (let i = 4; i < token.length; i++) {
      const changed = token.slice(0, i) + (token[i] === "A" ? "B" : "A") + token.slice(i + 1);
      assert.equal(codec.decode(changed), null, `character ${i} of ${token.length}`);
    }
    for (const suffix of ["x", "xy", "=", "==", ".", " "]) {
      assert.equal(codec.decode(token + suffix), null, `suffix ${JSON.stringify(suffix)}`);
    }
    assert.equal(codec.decode(`${token.slice(0, 10)}!${token.slice(10)}`), null, "stray character");
  }
});
