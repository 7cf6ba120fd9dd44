/**
 * Prints the current TOTP code for a base32 secret — the README walk-through's
 * stand-in for an authenticator app: `npm run -s totp -- <SECRET>`.
 */
import { decodeBase32Secret, generateTotp } from "../src/mfa/totp.js";

const secret = process.argv[2];
if (!secret) {
  process.stderr.write("usage: npm run -s totp -- <base32 secret>\n");
  process.exit(2);
}
process.stdout.write(
  `${generateTotp(decodeBase32Secret(secret), Math.floor(Date.now() / 1000))}\n`,
);
