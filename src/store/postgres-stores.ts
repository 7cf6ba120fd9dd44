/**
 * The stores of `DATABASE_URL`: the main Store and the SessionStore on one
 * connection pool, the expiry sweeper beside them, and the schema check.
 *
 * The schema must be at the version this release needs (`token-service db
 * migrate`). At start-up an older (or empty) schema refuses the start with
 * one line naming the command; an unreachable server does not (the service
 * starts unready, like on Redis), and readiness then stays 503 until the
 * server answers with a current schema.
 */
import type { Logger } from "../observability/logger.js";
import type { Clock } from "../util/clock.js";
import { createDatabase, type Database } from "./postgres-client.js";
import { requiredSchemaVersion, SchemaOutdatedError } from "./postgres-migrations.js";
import { createPostgresSessionStore } from "./postgres-session-store.js";
import { SCHEMA_VERSION } from "./postgres-statements.js";
import { createPostgresStore } from "./postgres-store.js";
import { createSweeper, type SweeperOptions } from "./postgres-sweeper.js";
import type { SessionStore } from "./session-store.js";
import { type Store, StoreUnavailableError } from "./store.js";
import type { PostgresSettings } from "./store-config.js";

export interface PostgresStores {
  store: Store;
  sessions: SessionStore;
  /** Refuses (SchemaOutdatedError) an older schema; resolves when the server cannot be reached. */
  startupCheck(): Promise<void>;
  /** The pool both stores share (tests). */
  db: Database;
}

export interface PostgresStoresOptions {
  clock: Clock;
  logger?: Logger;
  /** Sweeper settings (tests); `false`: no background sweeping. */
  sweeper?: Omit<SweeperOptions, "clock" | "logger"> | false;
}

/** The applied schema version through the pool (0: empty schema). */
async function schemaVersionOf(db: Database): Promise<number> {
  try {
    const [row] = await db.query<{ version: number | null }>(SCHEMA_VERSION, []);
    return row?.version ?? 0;
  } catch (error) {
    const cause = error instanceof StoreUnavailableError ? error.cause : undefined;
    if ((cause as { code?: string } | undefined)?.code === "42P01") return 0; // undefined_table
    throw error;
  }
}

export function createPostgresStores(
  settings: PostgresSettings,
  options: PostgresStoresOptions,
): PostgresStores {
  const { clock, logger } = options;
  const db = createDatabase(settings, {
    onError: (err) =>
      logger?.warn({ event: "database_error", message: err.message }, "database error"),
  });
  const sweeper =
    options.sweeper === false
      ? undefined
      : createSweeper(db, { clock, ...(logger ? { logger } : {}), ...options.sweeper });
  const store = createPostgresStore(db, { clock });
  const required = requiredSchemaVersion();

  /** Set once the schema was found current: from then on a ping is `SELECT 1`. */
  let schemaCurrent = false;
  let reportedOutdated = false;
  const checkSchema = async (): Promise<void> => {
    const found = await schemaVersionOf(db);
    if (found < required) throw new SchemaOutdatedError(found, required);
    schemaCurrent = true;
  };

  return {
    db,
    store: {
      ...store,
      async ping() {
        if (schemaCurrent) return store.ping();
        try {
          await checkSchema();
        } catch (error) {
          if (!(error instanceof SchemaOutdatedError)) throw error;
          if (!reportedOutdated) {
            reportedOutdated = true;
            logger?.error({ event: "database_schema_outdated" }, error.message);
          }
          throw new StoreUnavailableError(error.message, { cause: error });
        }
      },
      async close() {
        sweeper?.stop();
        await db.close();
      },
    },
    sessions: createPostgresSessionStore(db),
    async startupCheck() {
      try {
        await checkSchema();
      } catch (error) {
        if (!(error instanceof StoreUnavailableError)) throw error;
        // Unreachable: start unready; the pings check the schema once it answers.
        logger?.warn(
          { event: "database_unreachable", message: error.message },
          "database unreachable at start-up: not ready until it answers",
        );
      }
    },
  };
}
