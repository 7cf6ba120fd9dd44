/**
 * The PostgreSQL connection pool (`DATABASE_URL`), with options chosen to
 * fail fast and fail closed, and the one function the PostgreSQL stores send
 * statements through. Driver: node-postgres (`pg`); docs/architecture.md
 * says why.
 *
 * - `max` = DATABASE_POOL_SIZE: the connections one process opens at most; a
 *   statement waits for a free one at most `connectionTimeoutMillis`.
 * - `connectionTimeoutMillis` = DATABASE_CONNECT_TIMEOUT_MS: both the wait
 *   for a pooled connection and the set-up of a new one (TCP, TLS, auth).
 * - `statement_timeout` = DATABASE_STATEMENT_TIMEOUT_MS: the server cancels a
 *   statement running longer, waits for a user's lock included (the
 *   transaction is rolled back: nothing of it stays).
 * - `query_timeout`: one second more, on the client: a server that stopped
 *   answering without closing the socket (a partition, a frozen host) cannot
 *   hold a request. The connection is then destroyed (pg-pool releases a
 *   client with the error), never reused half-way through a reply.
 * - No pipelining (node-postgres' `pipeline` stays off): a statement waiting
 *   for a user's lock would hold up every statement queued behind it on the
 *   same connection.
 * - `keepAlive`: TCP keep-alives find dead idle connections.
 *
 * Every error — connection refused or lost, a timeout, the pool exhausted,
 * any error the server sends — becomes a StoreUnavailableError (error row
 * 12). A serialization failure or a deadlock means the server rolled the
 * whole statement back, so it is sent once more first; nothing else is ever
 * resent (a statement whose connection broke may already have committed).
 */
import { type DatabaseError, Pool, type PoolConfig } from "pg";
import { StoreUnavailableError } from "./store.js";
import type { PostgresSettings } from "./store-config.js";

/** One statement: prepared once per connection under `name` (Parse is skipped afterwards). */
export interface Statement {
  name: string;
  text: string;
}

export interface Database {
  /** Runs one statement (one round trip) and returns its rows. */
  query<Row extends object>(statement: Statement, values: readonly unknown[]): Promise<Row[]>;
  /** Closes every connection; statements in flight fail. */
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** Errors of idle connections (a server restart); they also reach callers as StoreUnavailableError. */
  onError?: (err: Error) => void;
  /** Overrides of the pool options (tests). */
  pool?: PoolConfig;
}

/** SQLSTATEs after which the server has rolled the statement back: safe to send again, once. */
const RETRIED_ONCE = new Set(["40001", "40P01"]);

/** A pool with the options above; connects lazily (an unreachable server is a readiness matter). */
export function createDatabase(
  settings: PostgresSettings,
  options: DatabaseOptions = {},
): Database {
  const pool = new Pool({
    connectionString: settings.url,
    max: settings.poolSize,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    statement_timeout: settings.statementTimeoutMs,
    query_timeout: settings.statementTimeoutMs + 1000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: "token-service",
    ...options.pool,
  });
  // Without a listener an idle connection's error (the server restarting)
  // would be an uncaught exception.
  pool.on("error", (err: Error) => options.onError?.(err));

  const run = async <Row extends object>(
    statement: Statement,
    values: readonly unknown[],
  ): Promise<Row[]> => {
    const result = await pool.query<Row>({
      name: statement.name,
      text: statement.text,
      values: values as unknown[],
    });
    return result.rows;
  };

  return {
    async query<Row extends object>(statement: Statement, values: readonly unknown[]) {
      try {
        try {
          return await run<Row>(statement, values);
        } catch (error) {
          if (!RETRIED_ONCE.has((error as Partial<DatabaseError>).code ?? "")) throw error;
          return await run<Row>(statement, values);
        }
      } catch (error) {
        throw toStoreError(error);
      }
    },
    close: () => pool.end(),
  };
}

/** Any failure to run a statement is error row 12: the store cannot be trusted right now. */
export function toStoreError(error: unknown): StoreUnavailableError {
  if (error instanceof StoreUnavailableError) return error;
  const code = (error as Partial<DatabaseError>).code;
  const reason = error instanceof Error ? error.message : String(error);
  return new StoreUnavailableError(
    `database unavailable: ${code ? `${code} ` : ""}${reason.split("\n")[0]}`,
    { cause: error },
  );
}
