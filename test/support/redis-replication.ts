/**
 * A Redis master and a replica whose replication link the test controls
 * (SPEC §7 "Replica acknowledgement"; docs/operations.md "What a failover
 * can lose"): the replica reaches the master through a TCP relay
 * (tcp-relay.ts) that the test freezes (the link stalls: both sides still
 * think it is up, the master's writes stop reaching the replica) and then
 * cuts; the master is killed (SIGKILL) and the replica promoted
 * (`REPLICAOF NO ONE`), or a Sentinel promotes it.
 *
 * The relay is also the master's address for everyone else who should follow
 * it (Sentinels, or a Cluster's clients): freezing stalls replication
 * connections only, so clients keep being served by the master while its
 * replica falls behind — the case `WAIT` exists for.
 */
import {
  infoField,
  type RedisProcess,
  type SentinelOptions,
  spawnRedisServer,
  spawnSentinel,
  waitUntil,
} from "./redis-process.js";
import { startTcpRelay, type TcpRelay } from "./tcp-relay.js";

export interface ReplicationPair {
  master: RedisProcess;
  replica: RedisProcess;
  /** The master's address for the replica (and for whoever should follow the old master). */
  link: TcpRelay;
  password: string | undefined;
  /** Kills the master (SIGKILL) and cuts the link: the replica keeps what it had. */
  killMaster(): Promise<void>;
  /** `REPLICAOF NO ONE` on the replica; resolves once it reports `role:master`. */
  promoteReplica(): Promise<void>;
  /**
   * A fresh replica of `masterPort` (the promoted one), so the new master
   * has a replica to acknowledge writes again; resolves once it is in sync.
   */
  attachReplica(masterPort: number): Promise<RedisProcess>;
  /** Stops every process and relay this pair started. */
  stop(): Promise<void>;
}

export interface ReplicationPairOptions {
  /** requirepass and masterauth on both servers. */
  password?: string;
}

/** Resolves once the replica at `replicaPort` is in sync with its master at `masterPort`. */
export async function waitInSync(
  masterPort: number,
  replicaPort: number,
  password: string | undefined,
): Promise<void> {
  await waitUntil(`replica ${replicaPort} in sync with ${masterPort}`, async () => {
    if ((await infoField(replicaPort, password, "replication", "master_link_status")) !== "up") {
      return false;
    }
    const masterOffset = await infoField(masterPort, password, "replication", "master_repl_offset");
    const replicaOffset = await infoField(
      replicaPort,
      password,
      "replication",
      "slave_repl_offset",
    );
    return masterOffset !== undefined && masterOffset === replicaOffset;
  });
}

export async function startReplicationPair(
  options: ReplicationPairOptions = {},
): Promise<ReplicationPair> {
  const { password } = options;
  const started: RedisProcess[] = [];
  const relays: TcpRelay[] = [];
  const stop = async () => {
    await Promise.all(relays.map((relay) => relay.close()));
    await Promise.all(started.map((process) => process.kill()));
  };
  try {
    const master = await spawnRedisServer({ password });
    started.push(master);
    const link = await startTcpRelay(master.port);
    relays.push(link);
    const replica = await spawnRedisServer({
      password,
      args: ["--replicaof", "127.0.0.1", String(link.port)],
    });
    started.push(replica);
    await waitInSync(master.port, replica.port, password);

    return {
      master,
      replica,
      link,
      password,
      async killMaster() {
        await master.kill();
        link.cut();
      },
      async promoteReplica() {
        await replica.command("REPLICAOF", "NO", "ONE");
        await waitUntil(
          "the replica to report role:master",
          async () => (await infoField(replica.port, password, "replication", "role")) === "master",
        );
      },
      async attachReplica(masterPort) {
        const fresh = await spawnRedisServer({
          password,
          args: ["--replicaof", "127.0.0.1", String(masterPort)],
        });
        started.push(fresh);
        await waitInSync(masterPort, fresh.port, password);
        return fresh;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

export interface Sentinels {
  /** REDIS_SENTINELS: "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3". */
  env: string;
  processes: RedisProcess[];
  /** The master's port every Sentinel reports now. */
  masterPorts(): Promise<number[]>;
  stop(): Promise<void>;
}

/**
 * `count` Sentinels monitoring `options.master`; resolves once each one knows
 * the others and the replica (so they can agree and have someone to promote).
 */
export async function startSentinels(
  count: number,
  options: SentinelOptions & { replicas: number },
): Promise<Sentinels> {
  const processes: RedisProcess[] = [];
  const stop = async () => {
    await Promise.all(processes.map((process) => process.kill()));
  };
  try {
    for (let i = 0; i < count; i++) processes.push(await spawnSentinel(options));
    for (const sentinel of processes) {
      await waitUntil(`Sentinel ${sentinel.port} to know the others and the replica`, async () => {
        const master = fields(await sentinel.command("SENTINEL", "MASTER", options.name));
        return (
          Number(master["num-other-sentinels"]) === count - 1 &&
          Number(master["num-slaves"]) >= options.replicas
        );
      });
    }
    return {
      env: processes.map((process) => `127.0.0.1:${process.port}`).join(","),
      processes,
      async masterPorts() {
        return Promise.all(
          processes.map(async (sentinel) => {
            const reply = await sentinel.command(
              "SENTINEL",
              "GET-MASTER-ADDR-BY-NAME",
              options.name,
            );
            return Number((reply as string[])[1]);
          }),
        );
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A flat [key, value, …] reply as an object. */
function fields(reply: unknown): Record<string, string> {
  const list = reply as string[];
  const result: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) result[String(list[i])] = String(list[i + 1]);
  return result;
}
