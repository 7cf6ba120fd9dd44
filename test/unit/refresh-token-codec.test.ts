// Refresh tokens (src/oauth/sessions/refresh-token-codec.ts, refresh-token-hash.ts): sealed,
// opaque, high-entropy; anything not sealed by this key decodes to null; the keyed hash.

import assert from "node:assert/strict";
import { test } from "node:test";
import { createMfaTokenCodec } from "../../src/mfa/mfa-token-codec.js";
import {
  createRefreshTokenCodec,
  MAX_REFRESH_TOKEN_LENGTH,
  type RefreshTokenClaims,
} from "../../src/oauth/sessions/refresh-token-codec.js";
import {
  createRefreshTokenHasher,
  REFRESH_TOKEN_HASH_LENGTH,
} from "../../src/oauth/sessions/refresh-token-hash.js";

const KEY = Buffer.alloc(32, 7);
const codec = createRefreshTokenCodec(KEY);
const CLAIMS: RefreshTokenClaims = {
  userId: "auth0|ünïcode:1",
  familyId: codec.newFamilyId(),
  clientId: "spa",
  audience: "https://api.example.test/",
  scope: "openid offline_access",
  amr: ["mfa", "otp"],
  authTime: 1_767_225_600,
  jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
};

test("seal then open returns the claims; every token is new", () => {
  const first = codec.seal(CLAIMS);
  const second = codec.seal(CLAIMS);
  assert.match(first, /^rt1\.[A-Za-z0-9_-]+$/);
  assert.notEqual(first, second);
  assert.deepEqual(codec.open(first), CLAIMS);
  assert.deepEqual(codec.open(second), CLAIMS);
  const { jkt: _, ...unbound } = CLAIMS;
  assert.deepEqual(codec.open(codec.seal(unbound)), unbound);
});

test("family ids are 128 random bits", () => {
  const ids = new Set(Array.from({ length: 1000 }, () => codec.newFamilyId()));
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.match(id, /^[A-Za-z0-9_-]{22}$/);
});

test("the claims are not readable in the token", () => {
  const raw = Buffer.from(codec.seal(CLAIMS).slice(4), "base64url").toString("latin1");
  for (const value of ["auth0|", "spa", "api.example.test", "offline_access", "0ZcOCORZ"]) {
    assert.ok(!raw.includes(value), value);
  }
});

test("every byte position is protected", () => {
  const token = codec.seal(CLAIMS);
  const raw = Buffer.from(token.slice(4), "base64url");
  for (let i = 0; i < raw.length; i++) {
    const copy = Buffer.from(raw);
    copy[i] = (copy[i] ?? 0) ^ 1;
    assert.equal(codec.open(`rt1.${copy.toString("base64url")}`), null, `byte ${i}`);
  }
});

test("malformed, foreign and oversized tokens open to null", () => {
  const token = codec.seal(CLAIMS);
  const foreign = createRefreshTokenCodec(Buffer.alloc(32, 8)).seal(CLAIMS);
  const mfaToken = createMfaTokenCodec(KEY).issue({
    userId: "u",
    clientId: "spa",
    audience: "",
    scope: "",
    userLabel: "",
    expiresAt: 0,
  }).token;
  for (const bad of [
    "",
    "rt1.",
    "rt1.AAAA",
    `rt2.${token.slice(4)}`,
    token.slice(0, -1),
    `${token}A`,
    ` ${token}`,
    token.replace("rt1.", "mt1."),
    `rt1.${mfaToken.slice(4)}`,
    foreign,
    `rt1.${"A".repeat(MAX_REFRESH_TOKEN_LENGTH)}`,
    "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln",
  ]) {
    assert.equal(codec.open(bad), null, bad.slice(0, 40));
  }
});

test("claims too large to stay under the length cap are refused at sealing", () => {
  assert.throws(() => codec.seal({ ...CLAIMS, userId: "u".repeat(MAX_REFRESH_TOKEN_LENGTH) }));
});

test("the keyed hash: fixed length, deterministic per key, different under another key", () => {
  const hash = createRefreshTokenHasher(KEY);
  const token = codec.seal(CLAIMS);
  assert.equal(hash(token).length, REFRESH_TOKEN_HASH_LENGTH);
  assert.match(hash(token), /^[A-Za-z0-9_-]{43}$/);
  assert.equal(hash(token), hash(token));
  assert.notEqual(hash(token), hash(codec.seal(CLAIMS)));
  assert.notEqual(hash(token), createRefreshTokenHasher(Buffer.alloc(32, 8))(token));
});
