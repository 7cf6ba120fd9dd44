import { oauthErrors } from "../oauth/oauth-error.js";
import { jsonShapeProblem, MAX_JSON_MEMBERS } from "../util/json-shape.js";
import { duplicateParameter, findDuplicateJsonKey } from "./duplicate-parameter.js";

export type Params = Record<string, unknown>;

/**
 * The body of a REST call as parameters (docs/api.md: form-encoded or JSON).
 * Form values are strings; JSON values keep their types so the grant can
 * answer row 4 ("… must be a string"). Row 14 for anything unreadable.
 * An empty body is accepted as no parameters only when `allowEmpty`.
 *
 * The same parsing rules as the RPC surface: a parameter named twice is
 * refused (duplicate-parameter.ts), and one leading UTF-8 byte order mark is
 * ignored, as Connect JSON ignores it (its TextDecoder drops it; RFC 8259
 * §8.1 lets a parser ignore a BOM rather than treat it as an error).
 */
export function parseParams(
  contentType: string | undefined,
  body: Buffer,
  allowEmpty = false,
): Params {
  if (body.length === 0 && allowEmpty) return {};
  const mediaType = (contentType ?? "").split(";", 1)[0]?.trim().toLowerCase() ?? "";
  if (mediaType === "application/x-www-form-urlencoded") {
    return parseForm(withoutBom(body).toString("utf8"));
  }
  if (mediaType === "application/json") {
    // Bounded work before parsing (util/json-shape.ts): deep nesting or
    // thousands of members cost JSON.parse and the duplicate check milliseconds.
    const shape = jsonShapeProblem(body);
    if (shape === "depth") throw oauthErrors.invalidRequest.body(400, "JSON body nests too deeply");
    if (shape === "members") throw tooManyParameters();
    return parseJson(withoutBom(body).toString("utf8"));
  }
  throw oauthErrors.invalidRequest.body(
    415,
    "Unsupported content type: use application/x-www-form-urlencoded or application/json",
  );
}

/** Row 14: no request of this service has more than a few dozen parameters. */
const MAX_PARAMETERS = MAX_JSON_MEMBERS;
const tooManyParameters = () => oauthErrors.invalidRequest.body(400, "Too many parameters");

/** RFC 6749 §3.2: parameters MUST NOT be included more than once. */
function parseForm(text: string): Params {
  // Counted before URLSearchParams parses them all: 9,000 parameters cost
  // about 5 ms to parse and collect, the split stops after the limit.
  if (text.split("&", MAX_PARAMETERS + 1).length > MAX_PARAMETERS) throw tooManyParameters();
  const params: Params = {};
  for (const [name, value] of new URLSearchParams(text)) {
    if (Object.hasOwn(params, name)) throw duplicateParameter(name);
    params[name] = value;
  }
  return params;
}

function parseJson(text: string): Params {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw oauthErrors.invalidRequest.body(400, "Malformed JSON body");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw oauthErrors.invalidRequest.body(400, "JSON body must be an object");
  }
  const duplicate = findDuplicateJsonKey(text);
  if (duplicate !== undefined) throw duplicateParameter(duplicate);
  return value as Params;
}

const BOM = [0xef, 0xbb, 0xbf] as const;

function withoutBom(body: Buffer): Buffer {
  return body[0] === BOM[0] && body[1] === BOM[1] && body[2] === BOM[2] ? body.subarray(3) : body;
}
