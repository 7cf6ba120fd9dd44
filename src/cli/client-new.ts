import { createPublicKey, type JsonWebKey, randomBytes } from "node:crypto";
import {
  CLIENT_AUTH_METHODS,
  type ClientAuthMethod,
  parseClients,
} from "../oauth/client-registry.js";
import { MFA_OTP_GRANT } from "../oauth/grants/mfa-otp.js";
import { MFA_RECOVERY_CODE_GRANT } from "../oauth/grants/mfa-recovery-code.js";
import { ACCEPTED_PUBLIC_KEYS, publicKeyProblem } from "../oauth/key-policy.js";
import { CliError, type CliIo, EXIT, usageError } from "./cli-io.js";
import { readJsonFileIfExists, writeJsonFileAtomically } from "./json-file.js";
import { parseCommandArgs } from "./parse-command-args.js";

/** Short names accepted by --grant, and the grant_types value each stands for. */
const GRANT_NAMES: Readonly<Record<string, string>> = {
  "mfa-otp": MFA_OTP_GRANT,
  "mfa-recovery-code": MFA_RECOVERY_CODE_GRANT,
  refresh_token: "refresh_token",
};
const DEFAULT_GRANTS = [MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT];

export const CLIENT_NEW_HELP = `Usage: token-service client new --id <client_id> [options]

Prints a CLIENTS_FILE entry with a generated client_secret (32 random bytes,
base64url). Put it in the file's "clients" array, or use --add-to.

Options:
  --id <client_id>       the client's id (required)
  --auth-method <m>      ${CLIENT_AUTH_METHODS.join(" | ")}
                         (default client_secret_post; none = a public client,
                         no secret; private_key_jwt needs --jwks)
  --grant <grant>        mfa-otp, mfa-recovery-code, refresh_token or a full
                         grant URI; repeat for several (default: mfa-otp and
                         mfa-recovery-code)
  --jwks <file>          private_key_jwt: a JWKS with the client's keys; only
                         their public members are written
  --add-to <file>        also append the entry to this clients file (created
                         0600 when missing); the entry is still printed, since
                         it holds the secret to hand to the client
  -h, --help             this help

Example:
  token-service client new --id web-app --grant mfa-otp --grant refresh_token --add-to clients.json
`;

export interface ClientEntry {
  client_id: string;
  client_secret?: string;
  token_endpoint_auth_method: ClientAuthMethod;
  grant_types: string[];
  jwks?: { keys: Record<string, unknown>[] };
}

export interface NewClientOptions {
  id: string;
  authMethod?: ClientAuthMethod;
  grantTypes?: string[];
  /** private_key_jwt: the client's keys (private members are dropped). */
  jwks?: unknown;
}

export function newClientEntry(options: NewClientOptions): ClientEntry {
  const authMethod = options.authMethod ?? "client_secret_post";
  const hasSecret = authMethod === "client_secret_post" || authMethod === "client_secret_basic";
  const entry: ClientEntry = {
    client_id: options.id,
    ...(hasSecret ? { client_secret: randomBytes(32).toString("base64url") } : {}),
    token_endpoint_auth_method: authMethod,
    grant_types: options.grantTypes ?? DEFAULT_GRANTS,
    ...(authMethod === "private_key_jwt" ? { jwks: publicJwks(options.jwks) } : {}),
  };
  // The loader's own check: an entry this command prints is one the service accepts.
  const { problems } = parseClients({ clients: [entry] }, "entry");
  if (problems.length > 0) throw new CliError(problems.join("; "), EXIT.dataErr);
  return entry;
}

export async function clientNew(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(args, {
    id: { type: "string" },
    "auth-method": { type: "string" },
    grant: { type: "string", multiple: true },
    jwks: { type: "string" },
    "add-to": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(CLIENT_NEW_HELP);
    return EXIT.ok;
  }
  const id = values.id;
  if (id === undefined) throw usageError("--id <client_id> is required");
  if (!/^[\x21-\x7e]+$/.test(id)) {
    throw usageError("--id must be printable ASCII without spaces");
  }
  const method = values["auth-method"] ?? "client_secret_post";
  if (!(CLIENT_AUTH_METHODS as readonly string[]).includes(method)) {
    throw usageError(`--auth-method must be one of ${CLIENT_AUTH_METHODS.join(", ")}`);
  }
  const authMethod = method as ClientAuthMethod;
  if ((authMethod === "private_key_jwt") !== (values.jwks !== undefined)) {
    throw usageError(
      authMethod === "private_key_jwt"
        ? "private_key_jwt needs --jwks <file> (the client's public keys)"
        : "--jwks is only for --auth-method private_key_jwt",
    );
  }
  let jwks: unknown;
  if (values.jwks !== undefined) {
    jwks = readJsonFileIfExists(values.jwks);
    if (jwks === undefined) throw new CliError(`${values.jwks} does not exist`, EXIT.ioErr);
  }
  const entry = newClientEntry({
    id,
    authMethod,
    ...(values.grant ? { grantTypes: [...new Set(values.grant.map(parseGrant))] } : {}),
    jwks,
  });

  const file = values["add-to"];
  if (file !== undefined) {
    const clients = existingClients(file);
    if (clients.some((c) => (c as { client_id?: unknown }).client_id === id)) {
      throw new CliError(`${file} already has a client "${id}"`, EXIT.dataErr);
    }
    writeJsonFileAtomically(file, { clients: [...clients, entry] });
    io.err(`added client "${id}" to ${file}; it is used from the next start or reload\n`);
  }
  io.out(`${JSON.stringify(entry, null, 2)}\n`);
  return EXIT.ok;
}

function parseGrant(value: string): string {
  const grant = GRANT_NAMES[value] ?? (Object.values(GRANT_NAMES).includes(value) ? value : null);
  if (grant === null) {
    throw usageError(
      `--grant must be one of ${Object.keys(GRANT_NAMES).join(", ")} or its full URI (got "${value}")`,
    );
  }
  return grant;
}

/** RFC 7517 §4 / RFC 7518 §6: the members of a public JWK (private ones are dropped). */
const PUBLIC_MEMBERS = ["kty", "kid", "alg", "use", "key_ops", "crv", "x", "y", "n", "e"];

function publicJwks(jwks: unknown): { keys: Record<string, unknown>[] } {
  const keys = (jwks as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new CliError('--jwks must be a JWKS {"keys": [...]} with at least one key', EXIT.dataErr);
  }
  return {
    keys: keys.map((key: unknown, i) => {
      if (
        typeof key !== "object" ||
        key === null ||
        typeof (key as { kty?: unknown }).kty !== "string"
      ) {
        throw new CliError(`--jwks keys[${i}] is not a JWK`, EXIT.dataErr);
      }
      const publicKey = Object.fromEntries(
        Object.entries(key).filter(([name]) => PUBLIC_MEMBERS.includes(name)),
      );
      try {
        createPublicKey({ key: publicKey as JsonWebKey, format: "jwk" });
      } catch {
        throw new CliError(`--jwks keys[${i}] is not a valid public key`, EXIT.dataErr);
      }
      // The service refuses such a clients file at load (bounded key cost):
      // say so now, with the same rule, rather than write a file it refuses.
      const problem = publicKeyProblem(publicKey);
      if (problem !== undefined) {
        throw new CliError(
          `--jwks keys[${i}] is refused (${problem}): ${ACCEPTED_PUBLIC_KEYS}`,
          EXIT.dataErr,
        );
      }
      return publicKey;
    }),
  };
}

/** The entries already in `file`, which must be a clients file the service accepts. */
function existingClients(file: string): unknown[] {
  const json = readJsonFileIfExists(file);
  if (json === undefined) return [];
  const { problems } = parseClients(json, file);
  if (problems.length > 0) throw new CliError(problems[0] ?? file, EXIT.dataErr);
  return (json as { clients: unknown[] }).clients;
}
