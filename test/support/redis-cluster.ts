/**
 * Test helpers for Redis Cluster (docs/architecture.md): a throwaway 3-master cluster
 * on loopback ports (or the one named by REDIS_CLUSTER_NODES), and a
 * MONITOR-based command counter over every master.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { type Cluster, Redis } from "ioredis";
import { infoField, type RedisProcess, spawnRedisServer, waitUntil } from "./redis-process.js";
import { startTcpRelay, type TcpRelay } from "./tcp-relay.js";

const execFileAsync = promisify(execFile);

export interface ClusterNodeAddress {
  host: string;
  port: number;
}

export interface StartRedisClusterOptions {
  /** Always start a cluster of our own, even when REDIS_CLUSTER_NODES is set (e.g. to stop it). */
  dedicated?: boolean;
}

export interface RedisClusterHandle {
  /** The masters' addresses (startup nodes for a Cluster client). */
  nodes: ClusterNodeAddress[];
  /** The same as REDIS_CLUSTER_NODES: "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3". */
  nodesEnv: string;
  /** Stops the servers this helper started and removes their directory (a no-op for an external cluster). */
  stop(): Promise<void>;
}

const MASTERS = 3;
/** Redis Cluster's bus listens on port + 10000. */
const BUS_OFFSET = 10_000;

/** True when nothing listens on the loopback port (we could bind it). */
async function canBind(port: number): Promise<boolean> {
  const server = createServer();
  try {
    server.listen(port, "127.0.0.1");
    await Promise.race([
      once(server, "listening"),
      once(server, "error").then(([err]) => Promise.reject(err)),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    if (server.listening) {
      server.close();
      await once(server, "close");
    }
  }
}

/**
 * A free loopback port whose cluster bus port (port + 10000) is free too, so
 * both stay below 65536: an OS-assigned ephemeral port may be too high.
 */
async function freeClusterPort(taken: ReadonlySet<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if (taken.has(port) || taken.has(port + BUS_OFFSET)) continue;
    if ((await canBind(port)) && (await canBind(port + BUS_OFFSET))) return port;
  }
  throw new Error("no free port pair for a Redis Cluster node");
}

/** One command on a short-lived connection; undefined when the node does not answer. */
async function ask(port: number, ...args: string[]): Promise<unknown> {
  const client = new Redis({
    host: "127.0.0.1",
    port,
    lazyConnect: true,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    connectTimeout: 500,
    commandTimeout: 1000,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    const [command = "", ...rest] = args;
    return await client.call(command, ...rest);
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  alive: () => void,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    alive();
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(timer);
}

function parseNodesEnv(value: string): ClusterNodeAddress[] {
  return value.split(",").map((entry) => {
    const match = /^\s*([^\s:]+):(\d{1,5})\s*$/.exec(entry);
    if (!match?.[1] || !match[2])
      throw new Error(`REDIS_CLUSTER_NODES entry "${entry}" is not host:port`);
    return { host: match[1], port: Number(match[2]) };
  });
}

/**
 * Uses REDIS_CLUSTER_NODES when set (tests then use distinct keys: nothing is
 * flushed), else spawns 3 `redis-server --cluster-enabled yes` on free
 * loopback ports without persistence, joins them with
 * `redis-cli --cluster create … --cluster-replicas 0` (3 masters, no
 * replicas), and waits until every node reports `cluster_state:ok`.
 * `stop()` kills exactly those processes and removes their directory.
 */
export async function startRedisCluster(
  options: StartRedisClusterOptions = {},
): Promise<RedisClusterHandle> {
  const external = process.env.REDIS_CLUSTER_NODES?.trim();
  if (external && !options.dedicated) {
    return { nodes: parseNodesEnv(external), nodesEnv: external, stop: async () => {} };
  }

  const serverBin = process.env.REDIS_SERVER_BIN ?? "redis-server";
  const cliBin = process.env.REDIS_CLI_BIN ?? "redis-cli";
  const dir = await mkdtemp(join(tmpdir(), "token-service-cluster-"));
  const children: ChildProcess[] = [];
  // A crashed test run must not leave servers behind.
  const killOnExit = () => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  };
  process.on("exit", killOnExit);
  const stop = async () => {
    process.off("exit", killOnExit);
    await Promise.all(children.map(stopProcess));
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const taken = new Set<number>();
    const ports: number[] = [];
    for (let i = 0; i < MASTERS; i++) {
      const port = await freeClusterPort(taken);
      taken.add(port);
      taken.add(port + BUS_OFFSET);
      ports.push(port);
    }

    for (const port of ports) {
      const child = spawn(
        serverBin,
        [
          "--port",
          String(port),
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          join(dir, `nodes-${port}.conf`),
          "--cluster-node-timeout",
          "2000",
          "--save",
          "",
          "--appendonly",
          "no",
          "--bind",
          "127.0.0.1",
          "--dir",
          dir,
        ],
        { stdio: "ignore" },
      );
      children.push(child);
    }
    let spawnError: Error | undefined;
    for (const child of children) {
      child.on("error", (err) => {
        spawnError = err;
      });
    }
    const alive = () => {
      if (spawnError) throw spawnError;
      const dead = children.find((c) => c.exitCode !== null || c.signalCode !== null);
      if (dead) throw new Error(`redis-server exited (${dead.exitCode ?? dead.signalCode})`);
    };

    for (const port of ports) {
      await waitFor(
        `PING on ${port}`,
        async () => (await ask(port, "PING")) === "PONG",
        10_000,
        alive,
      );
    }

    const addresses = ports.map((port) => `127.0.0.1:${port}`);
    try {
      await execFileAsync(
        cliBin,
        ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"],
        { timeout: 30_000 },
      );
    } catch (error) {
      const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
      throw new Error(`redis-cli --cluster create failed:\n${stdout}\n${stderr}`, { cause: error });
    }

    for (const port of ports) {
      await waitFor(
        `cluster_state:ok on ${port}`,
        async () => String(await ask(port, "CLUSTER", "INFO")).includes("cluster_state:ok"),
        20_000,
        alive,
      );
    }

    return {
      nodes: ports.map((port) => ({ host: "127.0.0.1", port })),
      nodesEnv: addresses.join(","),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

export interface ClusterCommandCounter {
  /**
   * Waits until every master's MONITOR has reported everything executed
   * before this call, then returns the commands `client` sent since the
   * previous `take()`, over all masters (lower-cased name first; commands run
   * inside Lua scripts and other clients' commands excluded).
   */
  take(): Promise<string[][]>;
  stop(): Promise<void>;
}

/** "ip:port" of each open node connection of a Cluster client, as MONITOR names its source. */
function sourcesOf(client: Cluster): Set<string> {
  const sources = new Set<string>();
  for (const node of client.nodes("all")) {
    const { localAddress, localPort } = node.stream ?? {};
    if (localAddress && localPort) sources.add(`${localAddress}:${localPort}`);
  }
  return sources;
}

/**
 * Counts the commands the Cluster client `client` sends, via MONITOR on every
 * master of `client`. Only commands from `client`'s own node connections
 * count, so topology refreshes (on separate connections) and other clients
 * of a shared cluster do not. As countCommands (redis-server.ts), `take()`
 * sends a unique ECHO to each master and waits until its MONITOR reports it.
 * Connect `client` to every master before counting: a connection's
 * handshake would count otherwise.
 */
export async function countClusterCommands(client: Cluster): Promise<ClusterCommandCounter> {
  const masters = client.nodes("master").map((node) => ({
    host: node.options.host ?? "127.0.0.1",
    port: node.options.port ?? 6379,
  }));
  const seen: Array<{ source: string; command: string[] }> = [];
  const waiters = new Map<string, () => void>();
  const monitors: Redis[] = [];
  const probes: Redis[] = [];
  for (const { host, port } of masters) {
    const base = new Redis({ host, port, lazyConnect: true });
    const monitor = await base.monitor();
    base.disconnect();
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      if (source === "lua") return;
      const [name = "", ...rest] = args;
      const command = [name.toLowerCase(), ...rest];
      const waiter = command[0] === "echo" ? waiters.get(command[1] ?? "") : undefined;
      if (waiter) waiter();
      else seen.push({ source, command });
    });
    monitors.push(monitor);
    probes.push(new Redis({ host, port }));
  }

  const counter: ClusterCommandCounter = {
    async take() {
      await Promise.all(
        probes.map(async (probe) => {
          const nonce = `count-commands:${randomUUID()}`;
          const reported = new Promise<void>((resolve) => waiters.set(nonce, resolve));
          await probe.echo(nonce);
          await reported;
          waiters.delete(nonce);
        }),
      );
      const sources = sourcesOf(client);
      const result = seen.filter((entry) => sources.has(entry.source)).map((e) => e.command);
      seen.length = 0;
      return result;
    },
    async stop() {
      for (const monitor of monitors) monitor.disconnect();
      await Promise.all(probes.map((probe) => probe.quit()));
    },
  };
  await counter.take();
  return counter;
}

/** One node of a cluster started by startRedisClusterWithReplicas. */
export interface ClusterNodeHandle {
  /** The port the node listens on. */
  port: number;
  /** Where everyone reaches it (its relay's port for a master, else `port`). */
  announcedPort: number;
  /** The node's id (CLUSTER MYID). */
  id: string;
  /** The relay in front of a master (tcp-relay.ts), through which its replica replicates. */
  relay?: TcpRelay;
  kill(): Promise<void>;
}

export interface RedisClusterWithReplicasHandle {
  masters: ClusterNodeHandle[];
  replicas: ClusterNodeHandle[];
  /** REDIS_CLUSTER_NODES: the masters as announced ("127.0.0.1:<relay port>,…"). */
  nodesEnv: string;
  /** The master (as first started) that serves `key`'s slot. */
  masterOf(key: string): Promise<ClusterNodeHandle>;
  /** The replica of `master`. */
  replicaOf(master: ClusterNodeHandle): ClusterNodeHandle;
  /** A fresh node joined as a replica of the node `masterId`; resolves once it is in sync. */
  attachReplica(masterId: string): Promise<ClusterNodeHandle>;
  stop(): Promise<void>;
}

/**
 * A 3-master Redis Cluster with one replica per master (a failover suite:
 * test/integration/failover-cluster.test.ts). Each master is announced
 * (`cluster-announce-port`) at a TCP relay in front of it, so its clients
 * and its replica reach it through the relay while the cluster bus stays
 * direct: the test can stall a master's replication link
 * (`relay.freezeReplication()`) while clients are still served, as
 * redis-replication.ts does for a standalone pair. Always dedicated (never
 * REDIS_CLUSTER_NODES): a test kills one of its masters.
 */
export async function startRedisClusterWithReplicas(): Promise<RedisClusterWithReplicasHandle> {
  const cliBin = process.env.REDIS_CLI_BIN ?? "redis-cli";
  const started: RedisProcess[] = [];
  const relays: TcpRelay[] = [];
  const stop = async () => {
    await Promise.all(relays.map((relay) => relay.close()));
    await Promise.all(started.map((node) => node.kill()));
  };
  const taken = new Set<number>();
  const clusterPort = async () => {
    const port = await freeClusterPort(taken);
    taken.add(port);
    taken.add(port + BUS_OFFSET);
    return port;
  };
  const spawnNode = async (port: number, announcedPort: number) => {
    const node = await spawnRedisServer({
      port,
      args: [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        `nodes-${port}.conf`,
        "--cluster-node-timeout",
        "2000",
        "--cluster-announce-port",
        String(announcedPort),
        "--cluster-announce-bus-port",
        String(port + BUS_OFFSET),
      ],
    });
    started.push(node);
    return node;
  };
  const handleOf = async (
    node: RedisProcess,
    announcedPort: number,
    relay?: TcpRelay,
  ): Promise<ClusterNodeHandle> => ({
    port: node.port,
    announcedPort,
    id: String(await node.command("CLUSTER", "MYID")),
    relay,
    kill: async () => {
      await node.kill();
      relay?.cut();
    },
  });
  /** Joins a fresh node as a replica of `masterId`, once it sees that master. */
  const joinReplica = async (
    masterId: string,
    viaPort: number,
    announcedPort: number,
  ): Promise<ClusterNodeHandle> => {
    const port = await clusterPort();
    const node = await spawnNode(port, port);
    await node.command("CLUSTER", "MEET", "127.0.0.1", String(viaPort));
    // The MEET's address first, then the one the master announces: replicate from that one.
    await waitUntil(`node ${port} to learn of ${masterId} at ${announcedPort}`, async () =>
      String(await node.command("CLUSTER", "NODES"))
        .split("\n")
        .some((line) => line.startsWith(`${masterId} 127.0.0.1:${announcedPort}@`)),
    );
    await waitUntil(`node ${port} to replicate ${masterId}`, async () => {
      await node.command("CLUSTER", "REPLICATE", masterId);
      return true;
    });
    await waitUntil(
      `node ${port} in sync`,
      async () => (await infoField(port, undefined, "replication", "master_link_status")) === "up",
    );
    return handleOf(node, port);
  };

  try {
    const masters: ClusterNodeHandle[] = [];
    for (let i = 0; i < MASTERS; i++) {
      const port = await clusterPort();
      const relay = await startTcpRelay(port);
      relays.push(relay);
      masters.push(await handleOf(await spawnNode(port, relay.port), relay.port, relay));
    }
    const addresses = masters.map((master) => `127.0.0.1:${master.port}`);
    try {
      await execFileAsync(
        cliBin,
        ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"],
        { timeout: 30_000 },
      );
    } catch (error) {
      const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
      throw new Error(`redis-cli --cluster create failed:\n${stdout}\n${stderr}`, { cause: error });
    }
    const replicas: ClusterNodeHandle[] = [];
    for (const master of masters) {
      const replica = await joinReplica(master.id, master.port, master.announcedPort);
      // The replica must reach its master through the relay, or stalling it stalls nothing.
      const masterPort = await infoField(replica.port, undefined, "replication", "master_port");
      if (masterPort !== String(master.announcedPort)) {
        throw new Error(`replica ${replica.port} replicates from ${masterPort}, not the relay`);
      }
      replicas.push(replica);
    }
    for (const master of masters) {
      await waitUntil(`cluster_state:ok and a replica on ${master.port}`, async () => {
        const state = String(await ask(master.port, "CLUSTER", "INFO"));
        const replicaCount = await infoField(
          master.port,
          undefined,
          "replication",
          "connected_slaves",
        );
        return state.includes("cluster_state:ok") && replicaCount === "1";
      });
    }
    const replicaOf = new Map<string, ClusterNodeHandle>();
    for (const [index, master] of masters.entries()) {
      replicaOf.set(master.id, replicas[index] as ClusterNodeHandle);
    }

    return {
      masters,
      replicas,
      nodesEnv: masters.map((master) => `127.0.0.1:${master.announcedPort}`).join(","),
      async masterOf(key) {
        const slot = Number(await ask(masters[0]?.port ?? 0, "CLUSTER", "KEYSLOT", key));
        const ranges = (await ask(masters[0]?.port ?? 0, "CLUSTER", "SLOTS")) as [
          number,
          number,
          [string, number, string],
        ][];
        const owner = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2][2];
        const master = masters.find((m) => m.id === owner);
        if (!master) throw new Error(`no master of slot ${slot}`);
        return master;
      },
      replicaOf(master) {
        const replica = replicaOf.get(master.id);
        if (!replica) throw new Error(`no replica of ${master.id}`);
        return replica;
      },
      attachReplica: (masterId) => {
        const alive = [...masters, ...replicas].find((node) => node.id === masterId);
        if (!alive) throw new Error(`no node ${masterId}`);
        return joinReplica(masterId, alive.port, alive.announcedPort);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
