import { decodeBase32Secret, generateTotp } from "../mfa/totp.js";
import { CliError, type CliIo, EXIT, usageError } from "./cli-io.js";
import { parseCommandArgs } from "./parse-command-args.js";

export const TOTP_HELP = `Usage: token-service totp <base32-secret>

Prints the current 6-digit TOTP code (RFC 6238: SHA-1, 30 s) for a secret, as
an authenticator app would show it: a stand-in for the phone in scripts and
walk-throughs. The secret is the "secret" an Associate call returned (or the
secret= parameter of its barcode_uri); spaces and lower case are accepted.

Example:
  token-service totp JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP
`;

/**
 * The secret as the service's own decoder reads it. Apps show secrets in
 * groups of four and in lower case, so spaces go and case does not matter;
 * the secret itself is never echoed in an error.
 */
export function parseTotpSecret(raw: string): Uint8Array {
  const compact = raw.replace(/\s+/g, "").replace(/=+$/, "").toUpperCase();
  let secret: Uint8Array | undefined;
  try {
    secret = compact === "" ? undefined : decodeBase32Secret(compact);
  } catch {
    secret = undefined;
  }
  if (secret === undefined || secret.length === 0) {
    throw new CliError(
      "the secret is not base32 (letters A-Z and digits 2-7, as Associate returns it)",
      EXIT.dataErr,
    );
  }
  // RFC 4226 §4 R6: the shared secret is at least 128 bits (otplib refuses less).
  if (secret.length < 16) {
    throw new CliError(
      `the secret is ${secret.length * 8} bits; TOTP secrets are at least 128 bits (RFC 4226 §4)`,
      EXIT.dataErr,
    );
  }
  return secret;
}

export function totp(args: readonly string[], io: CliIo, nowMs = Date.now()): number {
  const { values, positionals } = parseCommandArgs(
    args,
    { help: { type: "boolean", short: "h" } },
    true,
  );
  if (values.help) {
    io.out(TOTP_HELP);
    return EXIT.ok;
  }
  if (positionals.length === 0) throw usageError("a base32 secret is required");
  // Accept "totp ABCD EFGH ..." as typed from an app's grouped display.
  const secret = parseTotpSecret(positionals.join(""));
  io.out(`${generateTotp(secret, Math.floor(nowMs / 1000))}\n`);
  return EXIT.ok;
}
