import { randomBytes } from "node:crypto";
import { type CliIo, EXIT } from "./cli-io.js";
import { parseCommandArgs } from "./parse-command-args.js";

export const SECRETS_KEY_HELP = `Usage: token-service secrets-key

Prints a new SECRETS_KEY: base64 of 32 random bytes, the AES-256-GCM key that
encrypts TOTP secrets at rest and seals mfa_tokens. Every instance sharing a
store needs the same one; losing it locks every enrolled user out.

Example:
  echo "SECRETS_KEY=$(token-service secrets-key)" >> .env
`;

export function generateSecretsKey(): string {
  return randomBytes(32).toString("base64");
}

export function secretsKey(args: readonly string[], io: CliIo): number {
  const { values } = parseCommandArgs(args, { help: { type: "boolean", short: "h" } });
  io.out(values.help ? SECRETS_KEY_HELP : `${generateSecretsKey()}\n`);
  return EXIT.ok;
}
