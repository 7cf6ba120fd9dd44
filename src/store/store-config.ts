/** Which store the service uses (REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES, DATABASE_URL, or none). */
export type StoreConfig =
  | { kind: "memory" }
  | { kind: "redis"; url: string }
  | ({ kind: "redis-sentinel" } & RedisSentinelSettings)
  | { kind: "redis-cluster"; nodes: { host: string; port: number }[] }
  | ({ kind: "postgres" } & PostgresSettings);

export interface HostPort {
  host: string;
  port: number;
}

/** REDIS_SENTINELS and the settings that go with it (docs/configuration.md "Redis Sentinel"). */
export interface RedisSentinelSettings {
  /** REDIS_SENTINELS: the Sentinels asked for the master (more are learnt from them). */
  sentinels: HostPort[];
  /** REDIS_SENTINEL_NAME: the master group name the Sentinels monitor. */
  name: string;
  /** REDIS_SENTINEL_USERNAME / REDIS_SENTINEL_PASSWORD: the Sentinels' own ACL user or requirepass. */
  sentinelUsername?: string;
  sentinelPassword?: string;
  /** REDIS_USERNAME / REDIS_PASSWORD: the master's (and replicas') ACL user or requirepass. */
  username?: string;
  password?: string;
  /** REDIS_SENTINEL_TLS: TLS to the Sentinels. */
  sentinelTls: boolean;
  /** REDIS_TLS: TLS to the master the Sentinels name. */
  tls: boolean;
  /** REDIS_TLS_CA_FILE's PEM text: the CAs trusted for both (the system's when unset). */
  tlsCa?: string;
}

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
