import { readFileSync } from "node:fs";
import type { Cluster, Redis } from "ioredis";
import { createRedisClient, createRedisClusterClient } from "../store/redis-client.js";
import { acceptDataset, holdDataset } from "../store/redis-dataset-marker.js";
import { createRedisSentinelClient } from "../store/redis-sentinel-client.js";
import { parseStoreSettings } from "../store/store-settings.js";
import { CliError, type CliIo, EXIT } from "./cli-io.js";
import { parseCommandArgs } from "./parse-command-args.js";

export const REDIS_ACCEPT_DATASET_HELP = `Usage: token-service redis accept-dataset

Marks the data in the Redis that REDIS_URL, REDIS_SENTINELS (with
REDIS_SENTINEL_NAME) or REDIS_CLUSTER_NODES names as
the token service's accepted dataset: writes a marker key on every master
(every slot of a cluster). In production (REDIS_DATASET_CHECK, on) the
service writes nothing to a master without it: run it once when installing,
and after a Redis lost or replaced its data, once you have checked what was
lost (docs/operations.md "Restoring Redis"). Safe to run again.

Example:
  REDIS_URL=redis://redis.internal:6379 token-service redis accept-dataset
`;

export const REDIS_HOLD_DATASET_HELP = `Usage: token-service redis hold-dataset

Deletes the dataset marker from the Redis that REDIS_URL, REDIS_SENTINELS or
REDIS_CLUSTER_NODES names: every service instance with REDIS_DATASET_CHECK on
refuses writes (503) within seconds, until \`token-service redis
accept-dataset\`. For an operator who knows the data is wrong (e.g. before
restoring a backup; docs/operations.md "Restoring Redis").
`;

/**
 * A client on the configured Redis (REDIS_URL, REDIS_SENTINELS or
 * REDIS_CLUSTER_NODES, read by the service's own store settings parser), with
 * no retries: the command reports a failure as one line.
 */
function clientFrom(io: CliIo): Redis | Cluster {
  const problems: string[] = [];
  const value = (name: string) => {
    const text = io.env[name]?.trim();
    return text === undefined || text === "" ? undefined : text;
  };
  const { store } = parseStoreSettings(
    {
      value,
      integer: (name, fallback) => Number(value(name) ?? fallback),
      readFile: (path) => readFileSync(path, "utf8"),
    },
    problems,
  );
  if (problems.length > 0) throw new CliError(problems.join("; "), EXIT.config);
  const redis = { maxRetriesPerRequest: 0, retryStrategy: () => null };
  switch (store.kind) {
    case "redis":
      return createRedisClient(store.url, { redis });
    case "redis-cluster":
      return createRedisClusterClient(store.nodes, {
        cluster: { clusterRetryStrategy: () => null },
      });
    case "redis-sentinel":
      return createRedisSentinelClient(store, { redis });
    default:
      throw new CliError("set REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES", EXIT.config);
  }
}

async function withClient(io: CliIo, work: (client: Redis | Cluster) => Promise<string>) {
  const client = clientFrom(io);
  try {
    io.out(await work(client));
    return EXIT.ok;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new CliError(`redis: ${reason.split("\n")[0] ?? reason}`);
  } finally {
    client.disconnect();
  }
}

export function redisAcceptDataset(args: readonly string[], io: CliIo): Promise<number> | number {
  const { values } = parseCommandArgs(args, { help: { type: "boolean", short: "h" } });
  if (values.help) {
    io.out(REDIS_ACCEPT_DATASET_HELP);
    return EXIT.ok;
  }
  return withClient(io, async (client) => {
    const keys = await acceptDataset(client, Date.now());
    return `dataset accepted (${keys} marker ${keys === 1 ? "key" : "keys"} written): writes resume within seconds\n`;
  });
}

export function redisHoldDataset(args: readonly string[], io: CliIo): Promise<number> | number {
  const { values } = parseCommandArgs(args, { help: { type: "boolean", short: "h" } });
  if (values.help) {
    io.out(REDIS_HOLD_DATASET_HELP);
    return EXIT.ok;
  }
  return withClient(io, async (client) => {
    await holdDataset(client);
    return "dataset held: writes are refused until `token-service redis accept-dataset`\n";
  });
}
