/**
 * Prints the current TOTP code for a base32 secret — the README walk-through's
 * stand-in for an authenticator app: `npm run -s totp -- <SECRET>`. The same
 * command as `token-service totp` (src/cli/totp-command.ts): a bad secret is
 * one line on stderr and a non-zero exit.
 */
import { runCli } from "../src/cli/run-cli.js";

process.exitCode = await runCli(["totp", ...process.argv.slice(2)], {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
});
