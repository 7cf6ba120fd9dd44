import { fromJsonString } from "@bufbuild/protobuf";
import { StructSchema } from "@bufbuild/protobuf/wkt";
import { type OAuthError, oauthErrors } from "../oauth/oauth-error.js";

/**
 * One parsing rule for every surface: a parameter given twice is refused
 * (RFC 6749 §3.2 says so for forms; in JSON, RFC 8259 §4 leaves duplicate
 * names to the implementation, and taking the last of two values lets one
 * reader see another value than the next). REST form, REST JSON, Connect
 * JSON and gRPC-JSON all answer 400 / InvalidArgument `invalid_request` with
 * this description.
 */
export function duplicateParameter(name: string): OAuthError {
  return oauthErrors.invalidRequest.body(400, `Duplicate parameter: ${name.slice(0, 64)}`);
}

const DUPLICATE_KEY = /: duplicate object key "(.*)"$/s;

/**
 * The first member name a JSON text repeats within one object, at any depth,
 * names compared after unescaping; undefined when there is none. `text` must
 * already be valid JSON.
 *
 * protobuf-es's JSON reader, which Connect JSON requests go through, already
 * refuses such texts (JSON.parse cannot: it keeps the last value). REST JSON
 * is checked by that same reader, with google.protobuf.Struct as the schema
 * (it takes any JSON object), so both surfaces apply exactly one rule; it
 * costs about 2.5 µs for a 600-byte body.
 */
export function findDuplicateJsonKey(text: string): string | undefined {
  try {
    fromJsonString(StructSchema, text);
    return undefined;
  } catch (error) {
    return DUPLICATE_KEY.exec(error instanceof Error ? error.message : "")?.[1];
  }
}
