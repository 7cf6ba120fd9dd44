/**
 * Real redis-server and redis-sentinel processes for the failover suites
 * (test/support/redis-replication.ts): each on a free loopback port, in a
 * temporary directory, killed by pid (and on exit, should a test crash).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { freePort } from "./redis-server.js";

export interface RedisProcess {
  port: number;
  /** Its temporary directory. */
  dir: string;
  /** SIGKILL: the process dies without a word (a crashed host), and is waited for. */
  kill(): Promise<void>;
  /** One command on a short-lived connection (with the password the process was given). */
  command(...args: string[]): Promise<unknown>;
}

/** A server certificate for 127.0.0.1 that is its own CA (tls-proxy.ts selfSignedCertificate). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** The CA file to trust: the certificate itself. */
  caFile: string;
  /** Its PEM text, for clients. */
  ca: string;
}

export interface SpawnRedisOptions {
  /** TLS only (`port 0`, `tls-port`); clients are not asked for certificates. */
  tls?: TlsFiles;
  /** requirepass (and masterauth, so a replica can reach a master with the same password). */
  password?: string;
  /** Extra redis-server arguments (`--replicaof`, `--cluster-enabled`, …). */
  args?: string[];
  /** A port chosen beforehand (a cluster node: its bus port must be free too). */
  port?: number;
}

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
});

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}

/** Polls `check` every 25 ms until it holds; fails after `timeoutMs` naming `what`. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export async function redisCommand(
  port: number,
  password: string | undefined,
  ...args: string[]
): Promise<unknown> {
  return redisCommandOver(port, password, undefined, ...args);
}

async function redisCommandOver(
  port: number,
  password: string | undefined,
  tls: TlsFiles | undefined,
  ...args: string[]
): Promise<unknown> {
  const client = new Redis({
    host: "127.0.0.1",
    port,
    password,
    tls: tls ? { ca: tls.ca } : undefined,
    lazyConnect: true,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    connectTimeout: 1000,
    commandTimeout: 2000,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    const [name = "", ...rest] = args;
    return await client.call(name, ...rest);
  } finally {
    client.disconnect();
  }
}

/** One field of an `INFO` section, e.g. infoField(port, pw, "replication", "role"). */
export async function infoField(
  port: number,
  password: string | undefined,
  section: string,
  field: string,
): Promise<string | undefined> {
  const info = String(await redisCommand(port, password, "INFO", section));
  return new RegExp(`^${field}:(.*)\\r?$`, "m").exec(info)?.[1]?.trim();
}

async function spawnAndWait(
  binary: string,
  args: string[],
  port: number,
  dir: string,
  password: string | undefined,
  tls?: TlsFiles,
): Promise<RedisProcess> {
  const child = spawn(binary, args, { stdio: "ignore", cwd: dir });
  children.add(child);
  let spawnError: Error | undefined;
  child.on("error", (err) => {
    spawnError = err;
  });
  child.on("exit", () => children.delete(child));
  const handle: RedisProcess = {
    port,
    dir,
    kill: () => kill(child),
    command: (...command) => redisCommandOver(port, password, tls, ...command),
  };
  try {
    await waitUntil(`${binary} on port ${port}`, async () => {
      if (spawnError) throw spawnError;
      if (child.exitCode !== null) throw new Error(`${binary} exited with ${child.exitCode}`);
      return (await handle.command("PING")) === "PONG";
    });
  } catch (error) {
    await kill(child);
    throw error;
  }
  return handle;
}

/** A redis-server without persistence (a throwaway data set). */
export async function spawnRedisServer(options: SpawnRedisOptions = {}): Promise<RedisProcess> {
  const port = options.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), `token-service-redis-${port}-`));
  const auth = options.password
    ? ["--requirepass", options.password, "--masterauth", options.password]
    : [];
  const tls = options.tls;
  const listen = tls
    ? [
        "--port",
        "0",
        "--tls-port",
        String(port),
        "--tls-cert-file",
        tls.certFile,
        "--tls-key-file",
        tls.keyFile,
        "--tls-ca-cert-file",
        tls.caFile,
        "--tls-auth-clients",
        "no",
        "--tls-replication",
        "yes",
      ]
    : ["--port", String(port)];
  const args = [
    ...listen,
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "no",
    // A replica's full sync starts at once (the default waits 5 s for more replicas).
    "--repl-diskless-sync-delay",
    "0",
    ...auth,
    ...(options.args ?? []),
  ];
  const handle = await spawnAndWait(
    process.env.REDIS_SERVER_BIN ?? "redis-server",
    args,
    port,
    dir,
    options.password,
    tls,
  );
  return {
    ...handle,
    kill: () => handle.kill().then(() => rm(dir, { recursive: true, force: true })),
  };
}

export interface SentinelOptions {
  /** The name the Sentinels monitor the master under. */
  name: string;
  master: { host: string; port: number };
  quorum: number;
  /** The master's password (`sentinel auth-pass`). */
  masterPassword?: string;
  /** The Sentinel's own password (`requirepass`; also used towards the other Sentinels). */
  password?: string;
  /** `down-after-milliseconds`: how soon an unanswering master is subjectively down. */
  downAfterMs: number;
  /** `failover-timeout`. */
  failoverTimeoutMs: number;
  /** TLS towards clients and towards the master and replicas (`tls-replication yes`). */
  tls?: TlsFiles;
}

/** A redis-sentinel with a config file of its own (Sentinel rewrites it). */
export async function spawnSentinel(options: SentinelOptions): Promise<RedisProcess> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), `token-service-sentinel-${port}-`));
  const { name, master } = options;
  const tls = options.tls;
  const lines = [
    ...(tls
      ? [
          "port 0",
          `tls-port ${port}`,
          `tls-cert-file ${tls.certFile}`,
          `tls-key-file ${tls.keyFile}`,
          `tls-ca-cert-file ${tls.caFile}`,
          "tls-auth-clients no",
          "tls-replication yes",
        ]
      : [`port ${port}`]),
    "bind 127.0.0.1",
    `dir ${dir}`,
    `sentinel monitor ${name} ${master.host} ${master.port} ${options.quorum}`,
    `sentinel down-after-milliseconds ${name} ${options.downAfterMs}`,
    `sentinel failover-timeout ${name} ${options.failoverTimeoutMs}`,
    `sentinel parallel-syncs ${name} 1`,
    ...(options.masterPassword ? [`sentinel auth-pass ${name} ${options.masterPassword}`] : []),
    ...(options.password ? [`requirepass ${options.password}`] : []),
  ];
  const file = join(dir, "sentinel.conf");
  await writeFile(file, `${lines.join("\n")}\n`);
  const handle = await spawnAndWait(
    process.env.REDIS_SENTINEL_BIN ?? "redis-sentinel",
    [file],
    port,
    dir,
    options.password,
    tls,
  );
  return {
    ...handle,
    kill: () => handle.kill().then(() => rm(dir, { recursive: true, force: true })),
  };
}
