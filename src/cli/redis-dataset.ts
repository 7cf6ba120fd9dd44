import type { Cluster, Redis } from "ioredis";
import { createRedisClient, createRedisClusterClient } from "../store/redis-client.js";
import { acceptDataset, holdDataset } from "../store/redis-dataset-marker.js";
import { CliError, type CliIo, EXIT } from "./cli-io.js";
import { parseCommandArgs } from "./parse-command-args.js";

export const REDIS_ACCEPT_DATASET_HELP = `Usage: token-service redis accept-dataset

Marks the data in the Redis that REDIS_URL or REDIS_CLUSTER_NODES names as
the token service's accepted dataset: writes a marker key on every master
(every slot of a cluster). In production (REDIS_DATASET_CHECK, on) the
service writes nothing to a master without it: run it once when installing,
and after a Redis lost or replaced its data, once you have checked what was
lost (docs/operations.md "Restoring Redis"). Safe to run again.

Example:
  REDIS_URL=redis://redis.internal:6379 token-service redis accept-dataset
`;

export const REDIS_HOLD_DATASET_HELP = `Usage: token-service redis hold-dataset

Deletes the dataset marker from the Redis that REDIS_URL or
REDIS_CLUSTER_NODES names: every service instance with REDIS_DATASET_CHECK on
refuses writes (503) within seconds, until \`token-service redis
accept-dataset\`. For an operator who knows the data is wrong (e.g. before
restoring a backup; docs/operations.md "Restoring Redis").
`;

/** A client on the configured Redis; the command reports failures as one line. */
function clientFrom(io: CliIo): Redis | Cluster {
  const url = io.env.REDIS_URL?.trim();
  const nodes = io.env.REDIS_CLUSTER_NODES?.trim();
  const redis = { maxRetriesPerRequest: 0, retryStrategy: () => null };
  if (url) {
    if (!/^rediss?:\/\//.test(url)) {
      throw new CliError("REDIS_URL must start with redis:// or rediss://", EXIT.config);
    }
    return createRedisClient(url, { redis });
  }
  if (nodes) {
    const parsed = nodes.split(",").map((entry) => {
      const match = /^\s*([^\s:]+):(\d{1,5})\s*$/.exec(entry);
      if (!match?.[1] || !match[2]) {
        throw new CliError(`REDIS_CLUSTER_NODES entry "${entry}" is not host:port`, EXIT.config);
      }
      return { host: match[1], port: Number(match[2]) };
    });
    return createRedisClusterClient(parsed, { cluster: { clusterRetryStrategy: () => null } });
  }
  throw new CliError("set REDIS_URL or REDIS_CLUSTER_NODES", EXIT.config);
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
