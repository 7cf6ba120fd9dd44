/**
 * Watches the masters a Redis store writes to (SPEC §7 "Redis durability,
 * checked", "Replica acknowledgement", "Fail closed") and is the client's
 * write guard (redis-write-guard.ts):
 * - at start-up and every `intervalMs` (2 s; the SPEC asks for at least every
 *   30 s), each master's INFO (noeviction, AOF on, replicas connected) and,
 *   when checked, its dataset marker (redis-dataset-marker.ts);
 * - a start-up check that refuses the start with one line naming the setting;
 * - at run time a non-compliant master refuses every write (row 12) and turns
 *   readiness 503 until it complies again; each change is logged once;
 * - the replicas WAIT asks for: the count each master last reported.
 */
import { Cluster, type Redis } from "ioredis";
import type { Logger } from "../observability/logger.js";
import { markerKeysByMaster } from "./redis-dataset-marker.js";
import { connectedReplicas, durabilityProblem, parseInfo } from "./redis-durability.js";
import type { RedisSafetySettings } from "./redis-safety-settings.js";
import { keySlot } from "./redis-slots.js";
import type { Acknowledgement, WriteGuard } from "./redis-write-guard.js";

export interface RedisSafety extends WriteGuard {
  /** Throws (one line) when start-up must be refused; starts the periodic checks. */
  startupCheck(): Promise<void>;
  /** Checks every master now (the loop calls it; tests may too). */
  refresh(): Promise<void>;
  stop(): void;
}

/** The masters' state as last inspected. */
interface Inspection {
  problem: string | undefined;
  replicas: Map<string, number>;
}

const nodeName = (redis: Redis) => `${redis.options.host}:${redis.options.port}`;

/**
 * A master's INFO; "" when the server refuses the command (a hosted Redis, an
 * ACL without it): the fields are then as hidden as when INFO leaves them out.
 */
async function readInfo(node: Redis): Promise<string> {
  try {
    return await node.info();
  } catch (error) {
    if (
      error instanceof Error &&
      error.name === "ReplyError" &&
      /^NOPERM|^ERR unknown command/.test(error.message)
    ) {
      return "";
    }
    throw error;
  }
}

export function createRedisSafety(
  client: Redis | Cluster,
  settings: RedisSafetySettings,
  logger: Logger,
  options: { intervalMs?: number } = {},
): RedisSafety {
  const intervalMs = options.intervalMs ?? 2_000;
  const inCluster = client instanceof Cluster;
  let minimum = settings.minReplicasAck;
  // Nothing is trusted before the first inspection answered.
  let refusal: string | undefined =
    settings.durabilityCheck || settings.datasetCheck ? "not checked yet" : undefined;
  let replicas = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const masters = async (): Promise<Redis[]> => {
    if (!inCluster) return [client];
    if (client.status !== "ready") await client.ping(); // waits for the slots
    return client.nodes("master");
  };
  const standaloneName = inCluster ? "" : nodeName(client);

  const inspect = async (): Promise<Inspection> => {
    const nodes = await masters();
    const found = new Map<string, number>();
    let problem: string | undefined;
    const markers = settings.datasetCheck ? markerKeysByMaster(client, standaloneName) : undefined;
    await Promise.all(
      nodes.map(async (node) => {
        const name = nodeName(node);
        const info = parseInfo(await readInfo(node));
        found.set(name, connectedReplicas(info));
        const durability = settings.durabilityCheck ? durabilityProblem(name, info) : undefined;
        problem ??= durability;
        const keys = markers?.get(name) ?? [];
        if (markers !== undefined && !problem) {
          // One EXISTS per key: on a cluster node, keys of several slots in
          // one command would be refused (CROSSSLOT).
          const present = await Promise.all(keys.map((key) => node.exists(key)));
          if (present.some((n) => n !== 1)) {
            problem ??= `Redis ${name} holds no accepted token-service dataset (restarted empty, evicted, restored or failed over to a replica that missed writes?): writes are refused until an operator checks it and runs \`token-service redis accept-dataset\` (docs/operations.md "Restoring Redis")`;
          }
        }
      }),
    );
    return { problem, replicas: found };
  };

  const apply = (next: Inspection): void => {
    replicas = next.replicas;
    if (minimum === undefined) {
      // Fixed at the first inspection (start-up): 1 when every master has a replica.
      const counts = [...next.replicas.values()];
      minimum = counts.length > 0 && counts.every((n) => n > 0) ? 1 : 0;
      logger.info(
        { event: "redis_replica_acknowledgement", minReplicasAck: minimum },
        "replica acknowledgement fixed at start-up",
      );
    }
    if (next.problem === refusal) return;
    const previous = refusal;
    refusal = next.problem;
    if (refusal !== undefined) {
      logger.error({ event: "redis_writes_refused", reason: refusal }, refusal);
    } else if (previous !== "not checked yet") {
      logger.info({ event: "redis_writes_accepted" }, "redis complies again: writes accepted");
    }
  };

  const refresh = async (): Promise<void> => {
    try {
      apply(await inspect());
    } catch {
      // Unreachable: requests fail on their own (row 12); the state stays as it was.
    }
  };

  const loop = (): void => {
    timer = setTimeout(() => {
      void refresh().then(() => {
        if (!stopped) loop();
      });
    }, intervalMs).unref();
  };

  return {
    refusal: () => refusal,
    acknowledgementFor(key: string): Acknowledgement | undefined {
      if (minimum === undefined) return undefined;
      const node = inCluster ? client.slots[keySlot(key)]?.[0] : standaloneName;
      const count = node === undefined ? undefined : replicas.get(node);
      if (count === undefined && minimum === 0) return undefined;
      return { replicas: count ?? 0, minimum, timeoutMs: settings.ackTimeoutMs };
    },
    async startupCheck() {
      if (settings.durabilityCheckDisabled) {
        logger.warn(
          { event: "redis_durability_check_off" },
          "REDIS_DURABILITY_CHECK=off: single use, failure buckets and enrollments now rest on the operator's Redis settings (maxmemory-policy noeviction, appendonly yes)",
        );
      }
      let inspection: Inspection | undefined;
      try {
        inspection = await inspect();
      } catch (error) {
        // Unreachable at start-up: not a refusal (the service waits for it,
        // readiness 503); checked again every interval, writes refused meanwhile.
        logger.warn(
          { event: "redis_check_failed", message: error instanceof Error ? error.message : "" },
          "could not check Redis at start-up; writes refused until it answers",
        );
      }
      if (inspection !== undefined) {
        if (inspection.problem !== undefined) throw new Error(inspection.problem);
        apply(inspection);
      }
      if (!stopped) loop();
    },
    refresh,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
