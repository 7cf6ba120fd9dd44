// Secrets at rest (docs/api.md): AES-256-GCM under per-purpose HKDF keys, bound to a context;
// TOTP secrets bound to their user and authenticator; recovery codes hashed per user.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { openTotpSecret, sealTotpSecret } from "../../src/mfa/authenticator-secret.js";
import { hashRecoveryCode } from "../../src/mfa/recovery-code.js";
import { createSecretBox, deriveKey } from "../../src/mfa/secret-box.js";

const KEY = Buffer.alloc(32, 9);
const box = createSecretBox(KEY, "totp-secret");
const PLAIN = Buffer.from("twenty secret bytes!");

describe("deriveKey", () => {
  test("32 bytes, deterministic, distinct per purpose and per key", () => {
    const a = deriveKey(KEY, "a");
    assert.equal(a.length, 32);
    assert.deepEqual(deriveKey(KEY, "a"), a);
    assert.notDeepEqual(deriveKey(KEY, "b"), a);
    assert.notDeepEqual(deriveKey(Buffer.alloc(32, 8), "a"), a);
    assert.notDeepEqual(a, KEY);
  });
});

describe("SecretBox", () => {
  test("round trip; a random IV makes every sealing different", () => {
    const first = box.seal(PLAIN, "ctx");
    const second = box.seal(PLAIN, "ctx");
    assert.notEqual(first, second);
    assert.deepEqual(box.open(first, "ctx"), PLAIN);
    assert.deepEqual(box.open(second, "ctx"), PLAIN);
    // IV (12) + ciphertext (20) + tag (16), base64url.
    assert.equal(Buffer.from(first, "base64url").length, 48);
    assert.ok(!Buffer.from(first, "base64url").includes(PLAIN));
  });

  test("another context, purpose or key does not open it", () => {
    const sealed = box.seal(PLAIN, "ctx");
    assert.equal(box.open(sealed, "ctx2"), null);
    assert.equal(createSecretBox(KEY, "other").open(sealed, "ctx"), null);
    assert.equal(createSecretBox(Buffer.alloc(32, 1), "totp-secret").open(sealed, "ctx"), null);
  });

  test("tampered and truncated input does not open", () => {
    const raw = Buffer.from(box.seal(PLAIN, "ctx"), "base64url");
    const flipped = Buffer.from(raw);
    flipped[14] = (flipped[14] as number) ^ 0x80;
    for (const candidate of [flipped, raw.subarray(0, raw.length - 1), raw.subarray(0, 27)]) {
      assert.equal(box.open(candidate.toString("base64url"), "ctx"), null);
    }
    assert.equal(box.open("", "ctx"), null);
  });

  test("an empty plaintext round-trips", () => {
    assert.deepEqual(box.open(box.seal(Buffer.alloc(0), "ctx"), "ctx"), Buffer.alloc(0));
  });
});

describe("TOTP secrets", () => {
  test("open only for the same user and authenticator", () => {
    const sealed = sealTotpSecret(box, "alice", "auth-1", PLAIN);
    assert.deepEqual(openTotpSecret(box, "alice", "auth-1", sealed), PLAIN);
    assert.equal(openTotpSecret(box, "bob", "auth-1", sealed), null);
    assert.equal(openTotpSecret(box, "alice", "auth-2", sealed), null);
    // The separator keeps ("a", "b\0c") apart from ("a\0b", "c").
    const split = sealTotpSecret(box, "a", "b\u0000c", PLAIN);
    assert.deepEqual(openTotpSecret(box, "a", "b\u0000c", split), PLAIN);
  });
});

describe("recovery-code hashes", () => {
  const key = deriveKey(KEY, "recovery-code");

  test("normalised for case, spaces and dashes", () => {
    const hash = hashRecoveryCode(key, "alice", "ABCD-EFGH 2345");
    assert.equal(hashRecoveryCode(key, "alice", "abcdefgh2345"), hash);
    assert.match(hash, /^[A-Za-z0-9_-]{43}$/);
  });

  test("bound to the user and the key", () => {
    const hash = hashRecoveryCode(key, "alice", "ABCD");
    assert.notEqual(hashRecoveryCode(key, "bob", "ABCD"), hash);
    assert.notEqual(hashRecoveryCode(deriveKey(KEY, "x"), "alice", "ABCD"), hash);
    assert.notEqual(hashRecoveryCode(key, "alice", "ABCE"), hash);
  });
});
