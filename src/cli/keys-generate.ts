import { calculateJwkThumbprint, type JWK } from "jose";
import {
  generateSigningPrivateKey,
  importSigningKey,
  SIGNING_ALGORITHMS,
  type SigningAlgorithm,
} from "../tokens/signing-keys.js";
import { CliError, type CliIo, EXIT, usageError } from "./cli-io.js";
import { readJsonFileIfExists, writeJsonFileAtomically } from "./json-file.js";
import { parseCommandArgs } from "./parse-command-args.js";

export const KEYS_GENERATE_HELP = `Usage: token-service keys generate [--alg <alg>]... [--kid <kid>] [--add-to <file>]

Prints a private signing JWKS ({"keys":[...]}) that SIGNING_KEYS_FILE accepts:
every key has "kid", "alg" and "use":"sig". The first key of the file signs
access tokens; ID tokens are signed with the first key of each client's
id_token_signed_response_alg (RS256 unless the client says otherwise); every
key is published at /.well-known/jwks.json.

Options:
  --alg <alg>      ES256, EdDSA, Ed25519, RS256 or PS256 (EdDSA and Ed25519:
                   an Ed25519 key; RSA keys: 2048 bits). Repeat it
                   for several keys. Default: an ES256 key then an RS256 key,
                   what the service needs for access tokens and default ID tokens
                   (with --kid: one ES256 key)
  --kid <kid>      the key id (one key only); default: the key's RFC 7638 thumbprint
  --add-to <file>  add the new key(s) at the END of this JWKS file instead of
                   printing them (the file is created 0600 when missing). A key
                   added last is published but does not sign until it is moved
                   first: step one of a key rotation.
  -h, --help       this help

Examples:
  token-service keys generate --alg ES256 --alg RS256 --add-to signing-keys.json
  token-service keys generate --alg ES256 --kid 2026-12 > signing-keys.json
`;

/** A private JWK as SIGNING_KEYS_FILE holds it: kid, alg and use first, for people reading the file. */
export type PrivateSigningJwk = { kid: string; alg: SigningAlgorithm; use: "sig" } & Omit<
  JWK,
  "kid" | "alg" | "use"
>;

/**
 * A fresh key pair for `alg`, exported as a private JWK (node:crypto makes
 * and exports the keys; jose computes the RFC 7638 thumbprint used as the
 * default kid, so a kid names its key and never collides by accident).
 */
export async function generateSigningJwk(
  alg: SigningAlgorithm,
  kid?: string,
): Promise<PrivateSigningJwk> {
  const {
    kid: _kid,
    alg: _alg,
    use: _use,
    ...material
  } = generateSigningPrivateKey(alg).export({
    format: "jwk",
  }) as JWK;
  return {
    kid: kid ?? (await calculateJwkThumbprint(material, "sha256")),
    alg,
    use: "sig",
    ...material,
  };
}

export async function keysGenerate(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(args, {
    alg: { type: "string", multiple: true },
    kid: { type: "string" },
    "add-to": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(KEYS_GENERATE_HELP);
    return EXIT.ok;
  }
  // A --kid names one key: then one ES256 key, as before.
  const algs = (values.alg ?? (values.kid === undefined ? ["ES256", "RS256"] : ["ES256"])).map(
    parseAlg,
  );
  if (values.kid !== undefined && (values.kid === "" || algs.length > 1)) {
    throw usageError(
      values.kid === "" ? "--kid must not be empty" : "--kid names one key: give one --alg",
    );
  }
  const keys: PrivateSigningJwk[] = [];
  for (const alg of algs) keys.push(await generateSigningJwk(alg, values.kid));

  const file = values["add-to"];
  if (file === undefined) {
    io.out(`${JSON.stringify({ keys }, null, 2)}\n`);
    return EXIT.ok;
  }
  const existing = existingKeys(file);
  const kids = new Set(existing.map((key) => (key as { kid?: unknown }).kid));
  for (const key of keys) {
    if (kids.has(key.kid)) {
      throw new CliError(`${file} already has a key with kid "${key.kid}"`, EXIT.dataErr);
    }
  }
  writeJsonFileAtomically(file, { keys: [...existing, ...keys] });
  const added = keys
    .map((key, i) => `${key.alg} key "${key.kid}" as keys[${existing.length + i}]`)
    .join(", ");
  io.out(
    existing.length === 0
      ? `wrote ${file} with ${added}; keys[0] signs\n`
      : `added ${added} to ${file}: published, and signing once moved to keys[0]\n`,
  );
  return EXIT.ok;
}

function parseAlg(value: string): SigningAlgorithm {
  const alg = SIGNING_ALGORITHMS.find((known) => known.toLowerCase() === value.toLowerCase());
  if (!alg)
    throw usageError(`--alg must be one of ${SIGNING_ALGORITHMS.join(", ")} (got "${value}")`);
  return alg;
}

/**
 * The keys already in `file`, checked as the service checks them: adding to
 * a file the service would refuse only hides the first problem.
 */
function existingKeys(file: string): unknown[] {
  const json = readJsonFileIfExists(file);
  if (json === undefined) return [];
  const keys = (json as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) {
    throw new CliError(`${file} is not a JWKS: expected {"keys": [...]}`, EXIT.dataErr);
  }
  keys.forEach((jwk, i) => {
    const imported = importSigningKey(jwk, `${file} keys[${i}]`);
    if (typeof imported === "string") throw new CliError(imported, EXIT.dataErr);
  });
  return keys;
}
