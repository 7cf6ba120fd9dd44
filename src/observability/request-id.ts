import { randomUUID } from "node:crypto";

/**
 * A caller's `x-request-id` is kept when it is sane: 1–128 characters of
 * letters, digits and `. _ : -` (UUIDs, ULIDs, Heroku ids, hex trace
 * ids all fit). Anything else — empty, too long, spaces, quotes, control
 * characters, a repeated header — is replaced, so a caller cannot forge log
 * structure or smuggle text into the header we echo.
 */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request id for a request: the caller's when sane, else a new random UUID. */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === "string" && SANE_REQUEST_ID.test(header) ? header : randomUUID();
}
