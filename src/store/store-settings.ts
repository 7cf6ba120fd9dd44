/**
 * The store's part of the configuration, read by the one loader (config.ts):
 * which store (one at a time) and its settings. Every problem is pushed onto
 * `problems`, so the loader reports them all at once.
 */
import type { HostPort, StoreConfig } from "./store-config.js";

export interface StoreSettingsReaders {
  value: (name: string) => string | undefined;
  integer: (name: string, fallback: number, min: number, max: number) => number;
  readFile: (path: string) => string;
}

/** The variables that each name a persistent store; at most one may be set. */
export const STORE_VARIABLES = [
  "DATABASE_URL",
  "REDIS_URL",
  "REDIS_CLUSTER_NODES",
  "REDIS_SENTINELS",
] as const;
export type StoreVariable = (typeof STORE_VARIABLES)[number];

/** Variables that only mean something beside REDIS_SENTINELS. */
const SENTINEL_ONLY = [
  "REDIS_SENTINEL_NAME",
  "REDIS_SENTINEL_USERNAME",
  "REDIS_SENTINEL_PASSWORD",
  "REDIS_USERNAME",
  "REDIS_PASSWORD",
  "REDIS_SENTINEL_TLS",
  "REDIS_TLS",
  "REDIS_TLS_CA_FILE",
] as const;

export interface StoreSettings {
  store: StoreConfig;
  /** The variable that chose the store (for messages), undefined for memory. */
  variable: StoreVariable | undefined;
}

export function parseStoreSettings(
  { value, integer, readFile }: StoreSettingsReaders,
  problems: string[],
): StoreSettings {
  const set = STORE_VARIABLES.filter((name) => value(name) !== undefined);
  if (set.length === 2) {
    problems.push(`set ${set.join(" or ")}, not both: one store at a time`);
  } else if (set.length > 2) {
    problems.push(`set one of ${set.join(", ")}, not several: one store at a time`);
  }

  // Each variable that is set is checked, so a conflict does not hide a typo.
  let store: StoreConfig = { kind: "memory" };
  let variable: StoreVariable | undefined;
  const choose = (name: StoreVariable, parsed: StoreConfig) => {
    if (variable === undefined) {
      store = parsed;
      variable = name;
    }
  };

  const databaseUrl = value("DATABASE_URL");
  if (databaseUrl !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(databaseUrl)) {
      problems.push("DATABASE_URL must start with postgres:// or postgresql://");
    }
    choose("DATABASE_URL", {
      kind: "postgres",
      url: databaseUrl,
      poolSize: integer("DATABASE_POOL_SIZE", 10, 1, 1_000),
      statementTimeoutMs: integer("DATABASE_STATEMENT_TIMEOUT_MS", 2_000, 100, 600_000),
      connectTimeoutMs: integer("DATABASE_CONNECT_TIMEOUT_MS", 2_000, 100, 600_000),
    });
  }

  const redisUrl = value("REDIS_URL");
  if (redisUrl !== undefined) {
    if (!/^rediss?:\/\//.test(redisUrl)) {
      problems.push("REDIS_URL must start with redis:// or rediss://");
    }
    choose("REDIS_URL", { kind: "redis", url: redisUrl });
  }

  const clusterNodes = value("REDIS_CLUSTER_NODES");
  if (clusterNodes !== undefined) {
    choose("REDIS_CLUSTER_NODES", {
      kind: "redis-cluster",
      nodes: hostPorts("REDIS_CLUSTER_NODES", clusterNodes, problems),
    });
  }

  const sentinels = value("REDIS_SENTINELS");
  if (sentinels !== undefined) {
    choose("REDIS_SENTINELS", {
      kind: "redis-sentinel",
      ...sentinelSettings(sentinels, { value, integer, readFile }, problems),
    });
  } else {
    const stray = SENTINEL_ONLY.filter((name) => value(name) !== undefined);
    if (stray.length > 0) {
      problems.push(
        `${stray.join(", ")} ${stray.length === 1 ? "is" : "are"} only used with REDIS_SENTINELS (REDIS_URL carries its own credentials and rediss://)`,
      );
    }
  }

  return { store, variable };
}

function sentinelSettings(
  raw: string,
  { value, readFile }: StoreSettingsReaders,
  problems: string[],
) {
  const name = value("REDIS_SENTINEL_NAME");
  if (name === undefined) {
    problems.push(
      "REDIS_SENTINEL_NAME is required with REDIS_SENTINELS: the master group name the Sentinels monitor (`sentinel monitor <name> …`)",
    );
  }
  const flag = (variable: string): boolean => {
    const text = value(variable)?.toLowerCase();
    if (text === undefined || text === "false" || text === "0") return false;
    if (text === "true" || text === "1") return true;
    problems.push(`${variable} must be true or false (got "${value(variable)}")`);
    return false;
  };
  const caFile = value("REDIS_TLS_CA_FILE");
  let tlsCa: string | undefined;
  if (caFile !== undefined) {
    try {
      tlsCa = readFile(caFile);
      if (!tlsCa.includes("-----BEGIN CERTIFICATE-----")) {
        problems.push(`REDIS_TLS_CA_FILE (${caFile}) holds no PEM certificate`);
      }
    } catch {
      problems.push(`REDIS_TLS_CA_FILE (${caFile}) cannot be read`);
    }
  }
  const tls = flag("REDIS_TLS");
  const sentinelTls = flag("REDIS_SENTINEL_TLS");
  if (caFile !== undefined && !tls && !sentinelTls) {
    problems.push("REDIS_TLS_CA_FILE is set but neither REDIS_TLS nor REDIS_SENTINEL_TLS is true");
  }
  return {
    sentinels: hostPorts("REDIS_SENTINELS", raw, problems),
    name: name ?? "",
    sentinelUsername: value("REDIS_SENTINEL_USERNAME"),
    sentinelPassword: value("REDIS_SENTINEL_PASSWORD"),
    username: value("REDIS_USERNAME"),
    password: value("REDIS_PASSWORD"),
    tls,
    sentinelTls,
    tlsCa,
  };
}

/** `host:port,…` (an IPv6 host in brackets: `[::1]:26379`). */
function hostPorts(variable: string, raw: string, problems: string[]): HostPort[] {
  return raw.split(",").map((entry) => {
    const match = /^\s*(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):(\d{1,5})\s*$/.exec(entry);
    const port = Number(match?.[2]);
    if (!match?.[1] || !(port >= 1 && port <= 65535)) {
      problems.push(`${variable} entry "${entry}" is not host:port`);
      return { host: "", port: 0 };
    }
    return { host: match[1].replace(/^\[(.*)\]$/, "$1"), port };
  });
}
