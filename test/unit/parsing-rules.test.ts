// One parsing rule on every surface (duplicate parameters, a leading UTF-8 BOM)
// and the corrections of connect-es's decode failures: pure functions, no sockets.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code, type ConnectError } from "@connectrpc/connect";
import { OAuthErrorSchema } from "@token-service/client";
import { OAuthError } from "../../src/oauth/oauth-error.js";
import { replacementFor } from "../../src/rpc/decode-failures.js";
import { findDuplicateJsonKey } from "../../src/server/duplicate-parameter.js";
import { parseParams } from "../../src/server/parse-params.js";

const FORM = "application/x-www-form-urlencoded";
const JSON_TYPE = "application/json";
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

function refusal(fn: () => unknown): OAuthError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof OAuthError);
    return error;
  }
  assert.fail("expected an OAuthError");
}

describe("duplicate parameters", () => {
  test("findDuplicateJsonKey: top level, nested, escaped spelling; none", () => {
    assert.equal(findDuplicateJsonKey('{"a":1,"a":2}'), "a");
    assert.equal(findDuplicateJsonKey('{"x":{"b":1,"b":2}}'), "b");
    assert.equal(findDuplicateJsonKey('[{"c":1},{"c":2,"c":3}]'), "c");
    assert.equal(findDuplicateJsonKey('{"otp":"1","\\u006ftp":"2"}'), "otp");
    assert.equal(findDuplicateJsonKey('{"a":1,"b":{"a":2},"c":[{"a":3}]}'), undefined);
    assert.equal(findDuplicateJsonKey('{"a":"\\"a\\":"}'), undefined);
  });

  test("REST form and REST JSON refuse them with one description", () => {
    for (const [type, body] of [
      [FORM, "otp=1&otp=2"],
      [JSON_TYPE, '{"otp":"1","otp":"2"}'],
      [JSON_TYPE, '{"otp":"1","\\u006ftp":"2"}'],
    ] as const) {
      const error = refusal(() => parseParams(type, Buffer.from(body)));
      assert.deepEqual(
        [error.status, error.error, error.description, error.code],
        [400, "invalid_request", "Duplicate parameter: otp", Code.InvalidArgument],
        body,
      );
    }
  });

  test("malformed JSON and non-objects keep their own descriptions", () => {
    assert.equal(
      refusal(() => parseParams(JSON_TYPE, Buffer.from('{"a":1,'))).description,
      "Malformed JSON body",
    );
    assert.equal(
      refusal(() => parseParams(JSON_TYPE, Buffer.from('[{"a":1,"a":2}]'))).description,
      "JSON body must be an object",
    );
  });
});

describe("a leading UTF-8 BOM is ignored, as Connect JSON ignores it", () => {
  test("JSON and form bodies", () => {
    assert.deepEqual(parseParams(JSON_TYPE, Buffer.concat([BOM, Buffer.from('{"a":"1"}')])), {
      a: "1",
    });
    assert.deepEqual(parseParams(FORM, Buffer.concat([BOM, Buffer.from("a=1")])), { a: "1" });
  });

  test("only one, and only at the start", () => {
    assert.equal(
      refusal(() => parseParams(JSON_TYPE, Buffer.concat([BOM, BOM, Buffer.from("{}")])))
        .description,
      "Malformed JSON body",
    );
    assert.deepEqual(parseParams(FORM, Buffer.concat([Buffer.from("a=1&"), BOM])), {
      a: "1",
      "\ufeff": "",
    });
  });
});

describe("connect-es decode failures replaced", () => {
  test("binary that is not protobuf, and a compressed envelope without encoding: InvalidArgument", () => {
    for (const message of [
      "parse binary: premature EOF",
      "received compressed envelope, but do not know how to decompress",
    ]) {
      const replacement = replacementFor(Code.Internal, message);
      assert.equal(replacement?.code, Code.InvalidArgument);
      assert.equal(replacement?.rawMessage, message);
    }
  });

  test("a duplicate JSON member, or a field by both names: invalid_request with the detail", () => {
    for (const [message, name] of [
      [
        'cannot decode message token.v1.VerifyMfaOtpRequest from JSON: duplicate object key "mfaToken"',
        "mfaToken",
      ],
      [
        "cannot decode field token.v1.VerifyMfaOtpRequest.mfa_token from JSON: set multiple times",
        "mfa_token",
      ],
    ] as const) {
      const replacement = replacementFor(Code.InvalidArgument, message) as ConnectError;
      assert.equal(replacement.code, Code.InvalidArgument);
      assert.equal(replacement.rawMessage, `Duplicate parameter: ${name}`);
      assert.deepEqual(
        replacement.findDetails(OAuthErrorSchema).map((d) => [d.error, d.errorDescription]),
        [["invalid_request", `Duplicate parameter: ${name}`]],
      );
      assert.equal(replacement.metadata.get("cache-control"), "no-store");
    }
  });

  test("anything else passes through", () => {
    assert.equal(replacementFor(Code.Internal, "internal error"), undefined);
    assert.equal(
      replacementFor(Code.InvalidArgument, "cannot decode message X from JSON: y"),
      undefined,
    );
    assert.equal(replacementFor(Code.Unknown, "parse binary: x"), undefined);
  });
});
