/**
 * The PostgreSQL schema's versions: the SQL files under `migrations/`
 * (`NNNN-name.sql`, applied in order, each once), the runner behind
 * `token-service db migrate`, and the check that refuses to serve on an older
 * schema.
 *
 * - Each migration runs in its own transaction together with the row that
 *   records it in `schema_migrations`: it is applied whole or not at all.
 * - The runner holds a session advisory lock for its whole run, so runs
 *   started at once (several deploy jobs, several pods) apply each migration
 *   once: the others wait, then find the schema current. The lock's key names
 *   the schema, so two schemas of one database migrate independently.
 * - Everything is created in the first schema of the connection's
 *   search_path (the role's own database's `public`, or a schema set with
 *   `options=-c search_path=…` in DATABASE_URL): the service's role owns what
 *   it creates and needs no superuser, no extension (plpgsql is built in).
 * - A schema newer than this release is accepted: during a rolling upgrade
 *   the new release migrates first and the old instances keep serving
 *   (migrations only add; docs/operations.md "Upgrades").
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client, type DatabaseError } from "pg";
import type { PostgresSettings } from "./store-config.js";

/** The repository's (and the image's) `migrations/`: two folders up from src/store and dist/store. */
export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const FILE_NAME = /^(\d{4})-([a-z0-9-]+)\.sql$/;

/** Every migration, in order; throws when the files are not numbered 1, 2, 3, … */
export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .filter((file) => file.endsWith(".sql"))
    .map((file) => {
      const match = FILE_NAME.exec(file);
      if (!match?.[1] || !match[2]) throw new Error(`migrations: unexpected file name ${file}`);
      return {
        version: Number(match[1]),
        name: match[2],
        sql: readFileSync(join(dir, file), "utf8"),
      };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((migration, i) => {
    if (migration.version !== i + 1) {
      throw new Error(`migrations: expected version ${i + 1}, found ${migration.version}`);
    }
  });
  return migrations;
}

/** The schema version this release needs (its newest migration). */
export function requiredSchemaVersion(dir = MIGRATIONS_DIR): number {
  return listMigrations(dir).at(-1)?.version ?? 0;
}

/** The schema's version on a server is below what this release needs. */
export class SchemaOutdatedError extends Error {
  override readonly name = "SchemaOutdatedError";
  constructor(
    readonly found: number,
    readonly required: number,
  ) {
    super(
      `the database schema is at version ${found}, this release needs version ${required}: run \`token-service db migrate\``,
    );
  }
}

/** Something that runs one statement (a pg Client or Pool). */
interface Queryable {
  query<Row extends object>(text: string): Promise<{ rows: Row[] }>;
}

/** The applied version: 0 for an empty schema (no `schema_migrations` yet). */
export async function schemaVersion(db: Queryable): Promise<number> {
  try {
    const { rows } = await db.query<{ version: number | null }>(
      "SELECT max(version) AS version FROM schema_migrations",
    );
    return rows[0]?.version ?? 0;
  } catch (error) {
    if ((error as Partial<DatabaseError>).code === "42P01") return 0; // undefined_table
    throw error;
  }
}

/** Throws SchemaOutdatedError when the schema is older than `required`. */
export async function assertSchemaCurrent(
  db: Queryable,
  required = requiredSchemaVersion(),
): Promise<number> {
  const found = await schemaVersion(db);
  if (found < required) throw new SchemaOutdatedError(found, required);
  return found;
}

export interface MigrateResult {
  /** The version before the run (0: empty). */
  from: number;
  /** The version after it. */
  to: number;
  applied: Migration[];
}

/**
 * Brings the schema up to date, in order, each migration once. Safe to run
 * from several places at once (the advisory lock) and to run again (nothing
 * left to apply: `applied` is empty). `upTo` stops at a version (tests that
 * need an older schema).
 */
export async function migrate(
  settings: Pick<PostgresSettings, "url" | "connectTimeoutMs">,
  options: { upTo?: number; migrations?: Migration[] } = {},
): Promise<MigrateResult> {
  const migrations = (options.migrations ?? listMigrations()).filter(
    (m) => options.upTo === undefined || m.version <= options.upTo,
  );
  const client = new Client({
    connectionString: settings.url,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    application_name: "token-service db migrate",
  });
  // A lost connection is reported by the statement that fails; this keeps it from being uncaught.
  client.on("error", () => {});
  await client.connect();
  try {
    // Migrations may rewrite large tables: no statement deadline here.
    await client.query("SET statement_timeout = 0");
    await client.query(
      "SELECT pg_advisory_lock(hashtextextended('token-service migrate ' || coalesce(current_schema(), ''), 0))",
    );
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const from = await schemaVersion(client);
    const applied: Migration[] = [];
    for (const migration of migrations.filter((m) => m.version > from)) {
      await client.query("BEGIN");
      try {
        await client.query(migration.sql);
        await client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
          migration.version,
          migration.name,
        ]);
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(`migration ${migration.version} (${migration.name}) failed: ${reason}`, {
          cause: error,
        });
      }
      applied.push(migration);
    }
    return { from, to: applied.at(-1)?.version ?? from, applied };
  } finally {
    // Ending the session releases the advisory lock too.
    await client.end().catch(() => {});
  }
}
