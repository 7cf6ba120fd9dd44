/** Which store the service uses (REDIS_URL, REDIS_CLUSTER_NODES, or neither). */
export type StoreConfig =
  | { kind: "memory" }
  | { kind: "redis"; url: string }
  | { kind: "redis-cluster"; nodes: { host: string; port: number }[] };
