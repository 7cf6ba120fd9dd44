// TOTP (docs/api.md; RFC 6238): the Appendix B vectors, the accept window, the replay rule,
// and a property check of the hand-written verify against otplib.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { generateSync } from "otplib";
import { checkTotp, generateTotp, matchTotp, timeStepOf } from "../../src/mfa/totp.js";
import { wrongCodeFor } from "../support/flows.js";

const SEED_SHA1 = Buffer.from("12345678901234567890", "ascii");
const SEED_SHA256 = Buffer.from("12345678901234567890123456789012", "ascii");
const SEED_SHA512 = Buffer.from(
  "1234567890123456789012345678901234567890123456789012345678901234",
  "ascii",
);

/** RFC 6238 Appendix B: time, then the 8-digit codes for SHA1, SHA256, SHA512. */
const RFC_6238_VECTORS: [number, string, string, string][] = [
  [59, "94287082", "46119246", "90693936"],
  [1111111109, "07081804", "68084774", "25091201"],
  [1111111111, "14050471", "67062674", "99943326"],
  [1234567890, "89005924", "91819424", "93441116"],
  [2000000000, "69279037", "90698825", "38618901"],
  [20000000000, "65353130", "77737706", "47863826"],
];

describe("RFC 6238 Appendix B", () => {
  for (const [time, sha1, sha256, sha512] of RFC_6238_VECTORS) {
    test(`T = ${time}`, () => {
      assert.equal(generateTotp(SEED_SHA1, time, { digits: 8, algorithm: "sha1" }), sha1);
      assert.equal(generateTotp(SEED_SHA256, time, { digits: 8, algorithm: "sha256" }), sha256);
      assert.equal(generateTotp(SEED_SHA512, time, { digits: 8, algorithm: "sha512" }), sha512);
    });

    test(`matchTotp accepts the 6-digit SHA1 code at T = ${time}`, () => {
      // The 6-digit code is the 8-digit one modulo 10^6 (RFC 4226 §5.3).
      assert.equal(matchTotp(SEED_SHA1, sha1.slice(2), time, -1), timeStepOf(time));
    });
  }
});

describe("matchTotp window", () => {
  const secret = Buffer.from("a fixed twenty byte!", "ascii");
  // 15 s into step 56_666_667.
  const now = 1_700_000_025;
  const step = timeStepOf(now);
  const codeAtStep = (offset: number) => generateTotp(secret, now + offset * 30);

  test("the current step is accepted and named", () => {
    assert.equal(step, 56_666_667);
    assert.equal(matchTotp(secret, codeAtStep(0), now, -1), step);
  });

  test("the previous step is accepted and named", () => {
    assert.equal(matchTotp(secret, codeAtStep(-1), now, -1), step - 1);
  });

  test("two steps back is rejected", () => {
    assert.equal(matchTotp(secret, codeAtStep(-2), now, -1), null);
  });

  test("the next step is rejected", () => {
    assert.equal(matchTotp(secret, codeAtStep(1), now, -1), null);
  });

  test("a wrong code is rejected", () => {
    assert.equal(matchTotp(secret, wrongCodeFor(secret, now), now, -1), null);
  });

  test("replay rule: only steps strictly after afterStep", () => {
    assert.equal(matchTotp(secret, codeAtStep(0), now, step), null);
    assert.equal(matchTotp(secret, codeAtStep(0), now, step + 5), null);
    assert.equal(matchTotp(secret, codeAtStep(0), now, step - 1), step);
    assert.equal(matchTotp(secret, codeAtStep(-1), now, step - 1), null);
    assert.equal(matchTotp(secret, codeAtStep(-1), now, step - 2), step - 1);
  });

  test("checkTotp tells a replayed code (a used step, RFC 6238 §5.2) from a wrong one", () => {
    assert.deepEqual(checkTotp(secret, codeAtStep(0), now, step - 1), { kind: "matched", step });
    assert.deepEqual(checkTotp(secret, codeAtStep(0), now, step), { kind: "replayed" });
    assert.deepEqual(checkTotp(secret, codeAtStep(-1), now, step - 1), { kind: "replayed" });
    assert.deepEqual(checkTotp(secret, codeAtStep(-2), now, step - 5), { kind: "wrong" });
    assert.deepEqual(checkTotp(secret, wrongCodeFor(secret, now), now, step), { kind: "wrong" });
    assert.deepEqual(checkTotp(secret, "12345", now, -1), { kind: "wrong" });
  });

  test("inputs that are not exactly six ASCII digits are rejected", () => {
    const code = codeAtStep(0);
    const eightDigits = generateTotp(secret, now, { digits: 8 });
    for (const input of [
      "",
      code.slice(1),
      `${code}0`,
      eightDigits,
      ` ${code}`,
      `${code}\n`,
      `${code.slice(0, 5)}a`,
      "１２３４５６",
      `+${code.slice(1)}`,
      "12 456",
    ]) {
      assert.equal(matchTotp(secret, input, now, -1), null, JSON.stringify(input));
    }
  });
});

describe("matchTotp agrees with otplib", () => {
  const otplibCode = (secret: Uint8Array, epoch: number) =>
    generateSync({ secret, epoch, digits: 6, algorithm: "sha1", period: 30 });

  test("for random secrets, times and codes", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        // Up to 2^40 s: counters above 2^32 exercise the high word of the HOTP counter.
        fc.integer({ min: 60, max: 2 ** 40 }),
        fc.oneof(
          fc.constantFrom(0, -1, -2, 1),
          fc.integer({ min: 0, max: 999_999 }).map((n) => -1000 - n),
        ),
        (secret, now, pick) => {
          // pick >= -2: a code of that step offset; otherwise a random 6-digit code.
          const code =
            pick > -1000
              ? otplibCode(secret, now + pick * 30)
              : String(-1000 - pick).padStart(6, "0");
          const current = otplibCode(secret, now);
          const previous = otplibCode(secret, now - 30);
          const expected =
            code === current ? timeStepOf(now) : code === previous ? timeStepOf(now) - 1 : null;
          assert.equal(matchTotp(secret, code, now, -1), expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});
