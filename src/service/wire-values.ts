import { oauthErrors } from "../oauth/oauth-error.js";

/** A parameter value that arrived but is not a string (JSON only). */
export const NOT_A_STRING: unique symbol = Symbol("not a string");

/**
 * One request parameter as the wire gave it, before any rule ran: absent, a
 * string, or (REST JSON only) another JSON type. Both surfaces translate
 * their wire form with `wireString`, so the same rule decides rows 3 and 4
 * everywhere.
 */
export type WireString = string | undefined | typeof NOT_A_STRING;

/**
 * JSON `null` and "" count as missing (REST); so does a proto string left
 * at its default "" (RPC), where proto3 cannot tell "" from absent.
 */
export function wireString(value: unknown): WireString {
  if (value === undefined || value === null || value === "") return undefined;
  return typeof value === "string" ? value : NOT_A_STRING;
}

/** Rows 3 and 4 for one required parameter. */
export function requireString(value: WireString, name: string): string {
  if (value === undefined) throw oauthErrors.invalidRequest.missingParameter(name);
  if (value === NOT_A_STRING) throw oauthErrors.invalidRequest.notAString(name);
  return value;
}

/** Row 4 for one optional parameter. */
export function optionalString(value: WireString, name: string): string | undefined {
  if (value === NOT_A_STRING) throw oauthErrors.invalidRequest.notAString(name);
  return value;
}
