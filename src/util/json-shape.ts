/**
 * A bound on the shape of a JSON text, checked on its bytes before it is
 * parsed. V8's JSON.parse and protobuf-es's JSON reader take time in the
 * nesting depth and the number of members: a 64 KiB body nested 32,000
 * arrays deep cost about 13 ms of CPU to refuse, one with 5,000 members
 * about 9 ms, against under 1 ms for a whole ordinary request (SECURITY.md,
 * "Bounded work per request"). No request of this service nests more than a
 * few levels or names more than a few dozen fields.
 *
 * Written by hand: a byte scan with three counters, fed chunk by chunk (a
 * streamed RPC body is checked as it arrives). Structural characters are
 * ASCII and never occur inside a multi-byte UTF-8 sequence, so scanning
 * bytes is exact; strings are skipped with their escapes. Invalid JSON is
 * left to the parser.
 */

/** Nesting depth allowed: `{"a":[…]}` is 2. */
export const MAX_JSON_DEPTH = 16;
/** Members of the top-level object (or elements of a top-level array). */
export const MAX_JSON_MEMBERS = 100;

export type JsonShapeProblem = "depth" | "members";

export interface JsonShapeScanner {
  /** Scans the next bytes; the problem found so far, or undefined. */
  feed(bytes: Uint8Array): JsonShapeProblem | undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;

export function createJsonShapeScanner(
  maxDepth = MAX_JSON_DEPTH,
  maxMembers = MAX_JSON_MEMBERS,
): JsonShapeScanner {
  let depth = 0;
  let inString = false;
  let escaped = false;
  /** Commas at depth 1: members of the top-level value, less one. */
  let commas = 0;
  let problem: JsonShapeProblem | undefined;
  return {
    feed(bytes) {
      if (problem !== undefined) return problem;
      for (let i = 0; i < bytes.length; i++) {
        const byte = bytes[i] as number;
        if (inString) {
          if (escaped) escaped = false;
          else if (byte === BACKSLASH) escaped = true;
          else if (byte === QUOTE) inString = false;
        } else if (byte === QUOTE) {
          inString = true;
        } else if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) {
          depth += 1;
          if (depth > maxDepth) {
            problem = "depth";
            return problem;
          }
        } else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) {
          depth -= 1;
        } else if (byte === COMMA && depth === 1) {
          commas += 1;
          if (commas >= maxMembers) {
            problem = "members";
            return problem;
          }
        }
      }
      return undefined;
    },
  };
}

/** The shape problem of a whole JSON text, or undefined. */
export function jsonShapeProblem(bytes: Uint8Array): JsonShapeProblem | undefined {
  return createJsonShapeScanner().feed(bytes);
}
