// REST body parsing (docs/api.md, error row 14): form or JSON, JSON types kept for row 4.

import assert from "node:assert/strict";
import { test } from "node:test";
import { OAuthError } from "../../src/oauth/oauth-error.js";
import { parseParams } from "../../src/server/parse-params.js";

const FORM = "application/x-www-form-urlencoded";
const body = (text: string) => Buffer.from(text, "utf8");

/** Row 14 with this status and description. */
function assertBadBody(run: () => unknown, status: number, description: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof OAuthError);
    assert.deepEqual(
      [error.status, error.error, error.description],
      [status, "invalid_request", description],
    );
    return true;
  });
}

test("form: percent-decoding, '+' as space, every value a string", () => {
  assert.deepEqual(parseParams(FORM, body("a=1&b=x%2By+z&c=&d=%E2%82%AC")), {
    a: "1",
    b: "x+y z",
    c: "",
    d: "€",
  });
});

test("media type is matched without parameters and case", () => {
  assert.deepEqual(parseParams("Application/X-WWW-Form-URLEncoded; charset=UTF-8", body("a=1")), {
    a: "1",
  });
  assert.deepEqual(parseParams("application/json;charset=utf-8", body('{"a":1}')), { a: 1 });
});

test("form: a repeated parameter is refused (RFC 6749 §3.2)", () => {
  assertBadBody(() => parseParams(FORM, body("otp=1&otp=2")), 400, "Duplicate parameter: otp");
});

test("JSON: value types are kept", () => {
  assert.deepEqual(parseParams("application/json", body('{"a":"s","b":1,"c":null,"d":[1]}')), {
    a: "s",
    b: 1,
    c: null,
    d: [1],
  });
});

test("JSON: malformed, or not an object", () => {
  assertBadBody(() => parseParams("application/json", body("{")), 400, "Malformed JSON body");
  assertBadBody(() => parseParams("application/json", body("")), 400, "Malformed JSON body");
  for (const text of ["[]", "null", '"s"', "42"]) {
    assertBadBody(
      () => parseParams("application/json", body(text)),
      400,
      "JSON body must be an object",
    );
  }
});

test("any other or no content type is 415", () => {
  const reason =
    "Unsupported content type: use application/x-www-form-urlencoded or application/json";
  for (const type of ["text/plain", "multipart/form-data; boundary=x", undefined, ""]) {
    assertBadBody(() => parseParams(type, body("a=1")), 415, reason);
  }
});

test("an empty body is no parameters only where allowed", () => {
  assert.deepEqual(parseParams(undefined, Buffer.alloc(0), true), {});
  assertBadBody(() => parseParams("application/json", Buffer.alloc(0)), 400, "Malformed JSON body");
});

// Bounded work before parsing (src/util/json-shape.ts, SECURITY.md): both sides of each bound.
const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
const members = (n: number) =>
  JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, ""])));

test("JSON: nested 16 deep is parsed, 17 deep is refused unparsed", () => {
  assert.equal(typeof parseParams("application/json", body(nested(16))).a, "object");
  assertBadBody(
    () => parseParams("application/json", body(nested(17))),
    400,
    "JSON body nests too deeply",
  );
  const arrays = `{"a":${"[".repeat(16)}${"]".repeat(16)}}`;
  assertBadBody(
    () => parseParams("application/json", body(arrays)),
    400,
    "JSON body nests too deeply",
  );
});

test("JSON: 100 members are parsed, 101 are refused unparsed", () => {
  assert.equal(Object.keys(parseParams("application/json", body(members(100)))).length, 100);
  assertBadBody(
    () => parseParams("application/json", body(members(101))),
    400,
    "Too many parameters",
  );
});

test("JSON: brackets, commas and escaped quotes inside strings are not structure", () => {
  const text = JSON.stringify({ a: '[[[[{{{{,,,,\\"]]]]', b: ",".repeat(200), c: "{".repeat(40) });
  assert.deepEqual(Object.keys(parseParams("application/json", body(text))), ["a", "b", "c"]);
});

test("form: 100 parameters are parsed, 101 are refused unparsed", () => {
  const form = (n: number) => Array.from({ length: n }, (_, i) => `p${i}=v`).join("&");
  assert.equal(Object.keys(parseParams(FORM, body(form(100)))).length, 100);
  assertBadBody(() => parseParams(FORM, body(form(101))), 400, "Too many parameters");
});
