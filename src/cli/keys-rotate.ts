import { importSigningKey } from "../tokens/signing-keys.js";
import { CliError, type CliIo, EXIT, usageError } from "./cli-io.js";
import { readJsonFileIfExists, writeJsonFileAtomically } from "./json-file.js";
import { parseCommandArgs } from "./parse-command-args.js";

const ROTATION = `A key rotation (docs/operations.md, "Rotating signing keys"):
  1. token-service keys generate --alg ES256 --add-to <file>   (added last: published, not signing)
  2. kill -HUP <pid>; wait for caches (the JWKS is cached up to its max-age)
  3. token-service keys promote <new kid>                        (first: it signs)
  4. kill -HUP <pid>; wait until tokens signed by the old key have expired
  5. token-service keys retire <old kid>; kill -HUP <pid>`;

export const KEYS_PROMOTE_HELP = `Usage: token-service keys promote <kid> [--file <file>]

Moves the key <kid> to the front of the signing keys file: after a reload
(SIGHUP) it signs access tokens. Every key stays published. The file is
SIGNING_KEYS_FILE unless --file names another; it is rewritten whole through
a temporary file and a rename (a service reading it sees the old or the new
content), keeping its mode (0600).

Options:
  --file <file>  the JWKS file (default: $SIGNING_KEYS_FILE)
  -h, --help     this help

${ROTATION}
`;

export const KEYS_RETIRE_HELP = `Usage: token-service keys retire <kid> [--file <file>]

Removes the key <kid> from the signing keys file: after a reload (SIGHUP) it
is no longer published, so tokens it signed stop verifying. Refused for the
key that signs (keys[0]: promote another first) and for the last key. Same
file rules as "keys promote".

Options:
  --file <file>  the JWKS file (default: $SIGNING_KEYS_FILE)
  -h, --help     this help

${ROTATION}
`;

interface Keyring {
  file: string;
  keys: Array<Record<string, unknown>>;
  index: number;
  kid: string;
}

/** Reads the file named by --file or SIGNING_KEYS_FILE and finds <kid>, checking every key as the service does. */
function loadKeyring(args: readonly string[], io: CliIo, help: string): Keyring | undefined {
  const { values, positionals } = parseCommandArgs(
    args,
    { file: { type: "string" }, help: { type: "boolean", short: "h" } },
    true,
  );
  if (values.help) {
    io.out(help);
    return undefined;
  }
  if (positionals.length !== 1 || positionals[0] === "") {
    throw usageError("give one <kid>");
  }
  const kid = positionals[0] as string;
  const file = values.file ?? io.env.SIGNING_KEYS_FILE;
  if (file === undefined || file === "") {
    throw usageError("no file: set SIGNING_KEYS_FILE or give --file <file>");
  }
  const json = readJsonFileIfExists(file);
  if (json === undefined) throw new CliError(`${file} does not exist`, EXIT.ioErr);
  const keys = (json as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) {
    throw new CliError(`${file} is not a JWKS: expected {"keys": [...]}`, EXIT.dataErr);
  }
  keys.forEach((jwk, i) => {
    const imported = importSigningKey(jwk, `${file} keys[${i}]`);
    if (typeof imported === "string") throw new CliError(imported, EXIT.dataErr);
  });
  const index = keys.findIndex((jwk) => (jwk as { kid?: unknown }).kid === kid);
  if (index < 0) {
    const known = keys.map((jwk) => `"${String((jwk as { kid?: unknown }).kid)}"`).join(", ");
    throw new CliError(`${file} has no key with kid "${kid}" (it has ${known})`, EXIT.dataErr);
  }
  return { file, keys: keys as Array<Record<string, unknown>>, index, kid };
}

export function keysPromote(args: readonly string[], io: CliIo): number {
  const ring = loadKeyring(args, io, KEYS_PROMOTE_HELP);
  if (ring === undefined) return EXIT.ok;
  const { file, keys, index, kid } = ring;
  if (index === 0) {
    io.out(`"${kid}" is already keys[0] of ${file}: it signs; nothing changed\n`);
    return EXIT.ok;
  }
  const key = keys[index] as Record<string, unknown>;
  writeJsonFileAtomically(file, { keys: [key, ...keys.filter((_, i) => i !== index)] });
  io.out(
    `moved ${String(key.alg)} key "${kid}" to keys[0] of ${file}: it signs access tokens once the service reloads (send SIGHUP: kill -HUP <pid>)\n`,
  );
  return EXIT.ok;
}

export function keysRetire(args: readonly string[], io: CliIo): number {
  const ring = loadKeyring(args, io, KEYS_RETIRE_HELP);
  if (ring === undefined) return EXIT.ok;
  const { file, keys, index, kid } = ring;
  if (keys.length === 1) {
    throw new CliError(`"${kid}" is the only key of ${file}: add another first`, EXIT.dataErr);
  }
  if (index === 0) {
    throw new CliError(
      `"${kid}" is keys[0] of ${file}, the key that signs: promote another key first (token-service keys promote <kid>)`,
      EXIT.dataErr,
    );
  }
  const key = keys[index] as Record<string, unknown>;
  const remaining = keys.filter((_, i) => i !== index);
  writeJsonFileAtomically(file, { keys: remaining });
  // A client's ID tokens need a key of its id_token_signed_response_alg: without
  // one the reload (and the next start) refuses the configuration.
  const lastOfAlg = !remaining.some((other) => other.alg === key.alg);
  io.out(
    `removed ${String(key.alg)} key "${kid}" from ${file}: no longer published once the service reloads (send SIGHUP: kill -HUP <pid>); tokens it signed stop verifying then${
      lastOfAlg
        ? `. No ${String(key.alg)} key is left: if a client's id_token_signed_response_alg is ${String(key.alg)}, the service refuses this file (check first: token-service config check)`
        : ""
    }\n`,
  );
  return EXIT.ok;
}
