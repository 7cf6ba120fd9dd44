import { randomBytes } from "node:crypto";
import { type CliIo, EXIT } from "./cli-io.js";
import { parseCommandArgs } from "./parse-command-args.js";

export const INTERNAL_API_KEY_HELP = `Usage: token-service internal-api-key

Prints a new INTERNAL_API_KEY: 32 random bytes, base64url (43 characters). The
first-factor service sends it as "Authorization: Bearer <key>" to call
token.v1.MfaTokenService (IssueMfaToken, RevokeUserSessions, and the
administrator's ResetUserMfa, UnlockUser, DeleteUserData: token-service users).
NODE_ENV=production refuses a key shorter than 32 characters or with fewer
than 8 distinct ones.

Example:
  echo "INTERNAL_API_KEY=$(token-service internal-api-key)" >> .env
`;

export function generateInternalApiKey(): string {
  return randomBytes(32).toString("base64url");
}

export function internalApiKey(args: readonly string[], io: CliIo): number {
  const { values } = parseCommandArgs(args, { help: { type: "boolean", short: "h" } });
  io.out(values.help ? INTERNAL_API_KEY_HELP : `${generateInternalApiKey()}\n`);
  return EXIT.ok;
}
