/** Which store the service uses (REDIS_URL, REDIS_CLUSTER_NODES, DATABASE_URL, or none). */
export type StoreConfig =
  | { kind: "memory" }
  | { kind: "redis"; url: string }
  | { kind: "redis-cluster"; nodes: { host: string; port: number }[] }
  | ({ kind: "postgres" } & PostgresSettings);

/** DATABASE_URL and the DATABASE_* settings (docs/configuration.md). */
export interface PostgresSettings {
  /** `postgres://` or `postgresql://`, with libpq's TLS parameters (`sslmode`, `sslrootcert`, …). */
  url: string;
  /** Connections per process (DATABASE_POOL_SIZE, 10). */
  poolSize: number;
  /** Longest a statement may run, lock waits included (DATABASE_STATEMENT_TIMEOUT_MS, 2000). */
  statementTimeoutMs: number;
  /** Longest wait for a connection, new or from the pool (DATABASE_CONNECT_TIMEOUT_MS, 2000). */
  connectTimeoutMs: number;
}
