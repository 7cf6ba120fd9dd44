/**
 * The `token-service` command (bin/token-service.js runs this file, built or
 * through tsx). Entry only: the commands live beside it, one file each.
 */
import { runCli } from "./run-cli.js";

process.exitCode = await runCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
});
