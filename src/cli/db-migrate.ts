import { MIGRATIONS_DIR, migrate, requiredSchemaVersion } from "../store/postgres-migrations.js";
import { CliError, type CliIo, EXIT } from "./cli-io.js";
import { parseCommandArgs } from "./parse-command-args.js";

export const DB_MIGRATE_HELP = `Usage: token-service db migrate

Creates or upgrades the PostgreSQL schema that DATABASE_URL names to the
version this release needs, applying the SQL files under migrations/ in
order, each once, each in its own transaction. Needs DATABASE_URL only
(DATABASE_CONNECT_TIMEOUT_MS, default 2000, bounds the connection). Safe to
run again (exit 0 when the schema is current) and from several places at
once (the runs take turns on an advisory lock).

Upgrades: run it with the new release, then roll the service
(docs/operations.md "PostgreSQL").

Example:
  DATABASE_URL=postgres://token_service@db.internal/token_service token-service db migrate
`;

export async function dbMigrate(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(args, { help: { type: "boolean", short: "h" } });
  if (values.help) {
    io.out(DB_MIGRATE_HELP);
    return EXIT.ok;
  }
  const url = io.env.DATABASE_URL?.trim();
  if (!url) throw new CliError("DATABASE_URL is not set", EXIT.config);
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new CliError("DATABASE_URL must start with postgres:// or postgresql://", EXIT.config);
  }
  const timeoutRaw = io.env.DATABASE_CONNECT_TIMEOUT_MS?.trim() || "2000";
  const connectTimeoutMs = Number(timeoutRaw);
  if (!/^\d+$/.test(timeoutRaw) || connectTimeoutMs < 100 || connectTimeoutMs > 600_000) {
    throw new CliError(
      `DATABASE_CONNECT_TIMEOUT_MS must be an integer from 100 to 600000 (got "${timeoutRaw}")`,
      EXIT.config,
    );
  }
  const required = requiredSchemaVersion(MIGRATIONS_DIR);
  let result: Awaited<ReturnType<typeof migrate>>;
  try {
    result = await migrate({ url, connectTimeoutMs });
  } catch (error) {
    // pg's messages name the host and the reason, never the password.
    const reason = error instanceof Error ? error.message : String(error);
    throw new CliError(reason.split("\n")[0] ?? reason);
  }
  if (result.applied.length === 0) {
    io.out(
      result.to > required
        ? `schema at version ${result.to}, newer than this release's ${required}: nothing to do\n`
        : `schema is current (version ${result.to})\n`,
    );
  } else {
    const names = result.applied.map((m) => `${String(m.version).padStart(4, "0")}-${m.name}`);
    io.out(`schema migrated from version ${result.from} to ${result.to} (${names.join(", ")})\n`);
  }
  return EXIT.ok;
}
