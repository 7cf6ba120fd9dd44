import { readFileSync } from "node:fs";
import { CliError, type CliIo, EXIT } from "./cli-io.js";
import { clientNew } from "./client-new.js";
import { configCheck } from "./config-check.js";
import { dbMigrate } from "./db-migrate.js";
import { internalApiKey } from "./internal-api-key.js";
import { keysGenerate } from "./keys-generate.js";
import { keysPromote, keysRetire } from "./keys-rotate.js";
import { redisAcceptDataset, redisHoldDataset } from "./redis-dataset.js";
import { secretsKey } from "./secrets-key.js";
import { totp } from "./totp-command.js";
import { usersCommand } from "./users.js";

interface Command {
  words: readonly string[];
  synopsis: string;
  summary: string;
  run(args: readonly string[], io: CliIo): number | Promise<number>;
}

const COMMANDS: readonly Command[] = [
  {
    words: ["keys", "generate"],
    synopsis: "keys generate [--alg <alg>]... [--kid <kid>] [--add-to <file>]",
    summary: "a private signing JWKS for SIGNING_KEYS_FILE",
    run: keysGenerate,
  },
  {
    words: ["keys", "promote"],
    synopsis: "keys promote <kid> [--file <file>]",
    summary: "move a key to the front of SIGNING_KEYS_FILE: it signs after a reload (SIGHUP)",
    run: keysPromote,
  },
  {
    words: ["keys", "retire"],
    synopsis: "keys retire <kid> [--file <file>]",
    summary: "remove a key that no longer signs from SIGNING_KEYS_FILE (then SIGHUP)",
    run: keysRetire,
  },
  {
    words: ["secrets-key"],
    synopsis: "secrets-key",
    summary: "a SECRETS_KEY (base64 of 32 random bytes)",
    run: secretsKey,
  },
  {
    words: ["internal-api-key"],
    synopsis: "internal-api-key",
    summary: "an INTERNAL_API_KEY",
    run: internalApiKey,
  },
  {
    words: ["client", "new"],
    synopsis: "client new --id <id> [--auth-method <m>] [--grant <g>]... [--add-to <file>]",
    summary: "a CLIENTS_FILE entry with a generated secret",
    run: clientNew,
  },
  {
    words: ["config", "check"],
    synopsis: "config check",
    summary: "load the environment's configuration as the service does, start nothing",
    run: configCheck,
  },
  {
    words: ["db", "migrate"],
    synopsis: "db migrate",
    summary: "create or upgrade the PostgreSQL schema DATABASE_URL names",
    run: dbMigrate,
  },
  {
    words: ["users", "reset"],
    synopsis: "users reset <user_id> [--url <url>]",
    summary: "remove a user's authenticator and recovery code, end their sessions (ResetUserMfa)",
    run: usersCommand("reset"),
  },
  {
    words: ["users", "unlock"],
    synopsis: "users unlock <user_id> [--url <url>]",
    summary: "refill a locked-out user's failure bucket (UnlockUser)",
    run: usersCommand("unlock"),
  },
  {
    words: ["users", "delete"],
    synopsis: "users delete <user_id> [--url <url>]",
    summary: "erase everything stored about a user (DeleteUserData)",
    run: usersCommand("delete"),
  },
  {
    words: ["redis", "accept-dataset"],
    synopsis: "redis accept-dataset",
    summary:
      "accept the data in REDIS_URL / REDIS_CLUSTER_NODES: writes resume (docs/operations.md)",
    run: redisAcceptDataset,
  },
  {
    words: ["redis", "hold-dataset"],
    synopsis: "redis hold-dataset",
    summary: "stop every instance writing to that Redis until accept-dataset",
    run: redisHoldDataset,
  },
  {
    words: ["totp"],
    synopsis: "totp <base32-secret>",
    summary: "the current 6-digit code for a secret (an authenticator app's stand-in)",
    run: totp,
  },
];

const HELP = `Usage: token-service <command> [options]

The token service's starter kit: keys, secrets and clients for its
configuration, a configuration check, the PostgreSQL schema, the
administrator's tasks on one user (through the running service's internal
API), and an authenticator stand-in.

Commands:
${COMMANDS.map((c) => `  ${c.synopsis}\n      ${c.summary}`).join("\n")}

Options:
  --version, -v   the version of token-service
  --help, -h      this help

Run "token-service <command> --help" for a command's options and an example.
Exit status: 0 ok, 64 usage, 65 bad input data, 74 file error, 78 configuration problems.
`;

/**
 * Runs one command line and returns the exit status. Every failure is one
 * line on stderr, "token-service: <command>: <what>", never a stack trace.
 */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  const [first] = args;
  if (first === undefined) {
    io.err(HELP);
    return EXIT.usage;
  }
  if (first === "--help" || first === "-h" || first === "help") {
    io.out(HELP);
    return EXIT.ok;
  }
  if (first === "--version" || first === "-v") {
    io.out(`${version()}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.words.every((word, i) => args[i] === word));
  if (!command) {
    const typed = args
      .filter((a) => !a.startsWith("-"))
      .slice(0, 2)
      .join(" ");
    io.err(
      `token-service: unknown command "${typed}" (commands: ${COMMANDS.map((c) => c.words.join(" ")).join(", ")}; see token-service --help)\n`,
    );
    return EXIT.usage;
  }
  const name = command.words.join(" ");
  try {
    return await command.run(args.slice(command.words.length), io);
  } catch (error) {
    if (error instanceof CliError) {
      const hint = error.exitCode === EXIT.usage ? ` (see token-service ${name} --help)` : "";
      io.err(`token-service: ${name}: ${error.message}${hint}\n`);
      return error.exitCode;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.err(`token-service: ${name}: unexpected error: ${message.split("\n")[0]}\n`);
    return EXIT.failure;
  }
}

/** The root package's version (package.json sits two folders up from src/cli and dist/cli). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  return `token-service ${String(pkg.version)}`;
}
