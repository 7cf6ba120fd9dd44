/** REDIS_DURABILITY_CHECK, REDIS_DATASET_CHECK, REDIS_MIN_REPLICAS_ACK, REDIS_ACK_TIMEOUT_MS (docs/configuration.md). */
export interface RedisSafetySettings {
  /** INFO must show noeviction and AOF on every master (default: on in production). */
  durabilityCheck: boolean;
  /** REDIS_DURABILITY_CHECK=off was set explicitly: a warning at every start. */
  durabilityCheckDisabled: boolean;
  /** Every master must hold the dataset marker (default: on in production). */
  datasetCheck: boolean;
  /** undefined: 1 when every master has a replica at start-up, else 0. */
  minReplicasAck: number | undefined;
  ackTimeoutMs: number;
}

/** Outside production with nothing set: no check, acknowledgement by default. */
export const DEFAULT_REDIS_SAFETY: RedisSafetySettings = {
  durabilityCheck: false,
  durabilityCheckDisabled: false,
  datasetCheck: false,
  minReplicasAck: undefined,
  ackTimeoutMs: 200,
};
