import { oauthErrors } from "../oauth/oauth-error.js";

export type Params = Record<string, unknown>;

/**
 * The body of a REST call as parameters (SPEC §2: form-encoded or JSON).
 * Form values are strings; JSON values keep their types so the grant can
 * answer row 4 ("… must be a string"). Row 14 for anything unreadable.
 * An empty body is accepted as no parameters only when `allowEmpty`.
 */
export function parseParams(
  contentType: string | undefined,
  body: Buffer,
  allowEmpty = false,
): Params {
  if (body.length === 0 && allowEmpty) return {};
  const mediaType = (contentType ?? "").split(";", 1)[0]?.trim().toLowerCase() ?? "";
  if (mediaType === "application/x-www-form-urlencoded") return parseForm(body.toString("utf8"));
  if (mediaType === "application/json") return parseJson(body.toString("utf8"));
  throw oauthErrors.invalidRequest.body(
    415,
    "Unsupported content type: use application/x-www-form-urlencoded or application/json",
  );
}

/** RFC 6749 §3.2: parameters MUST NOT be included more than once. */
function parseForm(text: string): Params {
  const params: Params = {};
  for (const [name, value] of new URLSearchParams(text)) {
    if (Object.hasOwn(params, name)) {
      throw oauthErrors.invalidRequest.body(400, `Duplicate parameter: ${name.slice(0, 64)}`);
    }
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
  return value as Params;
}
