/**
 * The processes a benchmark run owns: its own redis-server and PostgreSQL
 * server, the service (production build) and the floor server. Every one is
 * started here, pinned with taskset when asked, and stopped by its own pid.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { once } from "node:events";
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CLIENT_ID, CLIENT_SECRET, MFA_OTP_GRANT, REFRESH_TOKEN_GRANT } from "./common.js";

/** CPU list for `taskset -c`, or undefined to leave the process unpinned. */
export type Cpus = string | undefined;

export const hasTaskset = (): boolean => existsSync("/usr/bin/taskset");

/** Pins a running process, every thread (-a), to `cpus` (e.g. this one, where the load tools run). */
export function pinProcess(pid: number, cpus: string): void {
  execFileSync("taskset", ["-a", "-cp", cpus, String(pid)], { stdio: "ignore" });
}

/** Spawns `command` under `taskset -c cpus` (taskset execs, so the pid is the command's own). */
function spawnPinned(
  cpus: Cpus,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): ChildProcess {
  const [file, argv] =
    cpus === undefined ? [command, args] : ["taskset", ["-c", cpus, command, ...args]];
  return spawn(file, argv, { env, stdio: ["ignore", "ignore", "pipe"] });
}

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

export interface Proc {
  pid: number;
  port: number;
  child: ChildProcess;
  /** Last lines of stderr (for error messages). */
  stderr(): string;
  stop(): Promise<void>;
}

/** Every process this run started: killed if the driver dies before stopping them. */
const running = new Set<ChildProcess>();
/** Servers started as daemons (PostgreSQL): stopped the same way. */
const daemons = new Set<() => void>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
  for (const stop of daemons) stop();
});

function track(child: ChildProcess, port: number): Proc {
  running.add(child);
  child.once("exit", () => running.delete(child));
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  if (child.pid === undefined) throw new Error("spawn failed");
  return {
    pid: child.pid,
    port,
    child,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function waitUntil(what: string, proc: Proc, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await ready().catch(() => false))) {
    if (proc.child.exitCode !== null) {
      throw new Error(`${what} exited with ${proc.child.exitCode}:\n${proc.stderr()}`);
    }
    if (Date.now() > deadline) throw new Error(`${what} not ready in 30 s:\n${proc.stderr()}`);
    await sleep(50);
  }
}

/**
 * A redis-server without persistence on a free port (the bench's data is
 * throwaway); with `replicaOf`, a replica of the server on that port.
 */
export async function startRedis(cpus: Cpus, replicaOf?: number): Promise<Proc & { url: string }> {
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  if (replicaOf !== undefined) args.push("--replicaof", "127.0.0.1", String(replicaOf));
  const proc = track(spawnPinned(cpus, "redis-server", args, process.env), port);
  const { Redis } = await import("ioredis");
  await waitUntil("redis-server", proc, async () => {
    const client = new Redis(port, "127.0.0.1", { lazyConnect: true, retryStrategy: () => null });
    client.on("error", () => {}); // refused while it starts: the loop retries
    try {
      await client.connect();
      return (await client.ping()) === "PONG";
    } finally {
      client.disconnect();
    }
  });
  return { ...proc, url: `redis://127.0.0.1:${port}` };
}

const httpReady = (port: number, path: string) => async () =>
  (await fetch(`http://127.0.0.1:${port}${path}`)).ok;

export interface BenchFiles {
  signingKeysFile: string;
  clientsFile: string;
}

/**
 * A fresh JWKS (an ES256 key first: it signs access tokens; an RS256 key for
 * ID tokens, the clients' default algorithm) and a client_secret_post
 * client, in `dir`.
 */
export function writeBenchFiles(dir: string): BenchFiles {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = { ...privateKey.export({ format: "jwk" }), kid: "bench-es256", alg: "ES256" };
  const { privateKey: rsa } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const rsaJwk = { ...rsa.export({ format: "jwk" }), kid: "bench-rs256", alg: "RS256" };
  const signingKeysFile = join(dir, "signing-keys.json");
  writeFileSync(signingKeysFile, JSON.stringify({ keys: [jwk, rsaJwk] }));
  const clientsFile = join(dir, "clients.json");
  writeFileSync(
    clientsFile,
    JSON.stringify({
      clients: [
        {
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
          token_endpoint_auth_method: "client_secret_post",
          // refresh_token: the refresh row's sessions (Auth0's defaults: rotating, leeway 0).
          grant_types: [MFA_OTP_GRANT, REFRESH_TOKEN_GRANT],
        },
      ],
    }),
  );
  return { signingKeysFile, clientsFile };
}

/** Debian's PostgreSQL server binaries (newest major), or undefined when not installed. */
export function postgresBinDir(): string | undefined {
  if (process.env.POSTGRES_BIN_DIR) return process.env.POSTGRES_BIN_DIR;
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const major = readdirSync(root)
    .filter((name) => /^\d+$/.test(name) && existsSync(join(root, name, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a))[0];
  return major === undefined ? undefined : join(root, major, "bin");
}

export interface PostgresProc {
  /** The postmaster's pid (its backends are its children: cpuSecondsOf counts them). */
  pid: number;
  port: number;
  /** The service's connection: role `bench`, which owns database `bench` (not a superuser). */
  url: string;
  /** A superuser connection to database `bench` (pg_stat_statements). */
  adminUrl: string;
  stop(): Promise<void>;
}

/**
 * A PostgreSQL server of the bench's own: initdb in a temporary directory (as
 * the `postgres` user when run as root: initdb refuses root), on a free
 * loopback port, with production's durability (fsync and synchronous_commit
 * on: the cost of a PostgreSQL deployment is measured, unlike the Redis rows'
 * server, which runs without persistence) and pg_stat_statements loaded to
 * count statements per request. Pinned from its start (`taskset` before
 * pg_ctl), so every backend it forks inherits the CPU.
 */
export async function startPostgres(cpus: Cpus): Promise<PostgresProc> {
  const bin = postgresBinDir();
  if (bin === undefined)
    throw new Error("PostgreSQL is not installed (apt-get install postgresql)");
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), "token-service-bench-pg-"));
  if (asRoot) {
    const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"]).toString().trim());
    chownSync(dir, id("-u"), id("-g"));
  }
  const data = join(dir, "data");
  const asOwner = (binary: string, args: string[]) => {
    const command = [join(bin, binary), ...args];
    const owned = asRoot ? ["runuser", "-u", "postgres", "--", ...command] : command;
    const [file, ...argv] = cpus === undefined ? owned : ["taskset", "-c", cpus, ...owned];
    execFileSync(file as string, argv, { stdio: "ignore" });
  };
  asOwner("initdb", ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"]);
  const port = await freePort();
  appendFileSync(
    join(data, "postgresql.conf"),
    [
      "",
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      `unix_socket_directories = '${dir}'`,
      "fsync = on",
      "synchronous_commit = on",
      "shared_preload_libraries = 'pg_stat_statements'",
      "",
    ].join("\n"),
  );
  asOwner("pg_ctl", ["start", "-D", data, "-l", join(dir, "server.log"), "-w", "-t", "60", "-s"]);
  const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
  const kill = () => {
    try {
      process.kill(pid, "SIGQUIT"); // immediate shutdown
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  };
  daemons.add(kill);
  const admin = (database: string, sql: string) =>
    execFileSync(
      join(bin, "psql"),
      [
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "-U",
        "postgres",
        "-d",
        database,
        "-v",
        "ON_ERROR_STOP=1",
        "-qc",
        sql,
      ],
      { stdio: "ignore" },
    );
  admin("postgres", "CREATE ROLE bench LOGIN");
  admin("postgres", "CREATE DATABASE bench OWNER bench");
  admin("bench", "CREATE EXTENSION pg_stat_statements");
  return {
    pid,
    port,
    url: `postgres://bench@127.0.0.1:${port}/bench`,
    adminUrl: `postgres://postgres@127.0.0.1:${port}/bench`,
    async stop() {
      daemons.delete(kill);
      try {
        process.kill(pid, "SIGINT"); // fast shutdown
      } catch {
        return;
      }
      for (let i = 0; i < 600; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await sleep(50);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ServiceOptions {
  cpus: Cpus;
  /** REDIS_URL or DATABASE_URL: the service's store. */
  store: { REDIS_URL: string } | { DATABASE_URL: string };
  files: BenchFiles;
  secretsKey: string;
  internalApiKey: string;
  workers: number;
  /** The entry point, normally dist/main.js. */
  main: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[];
  /** Variables added to (or overriding) the service's environment. */
  extraEnv?: Record<string, string>;
}

/** The production build (`node dist/main.js`) with NODE_ENV=production. */
export async function startService(options: ServiceOptions): Promise<Proc> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    NODE_ENV: "production",
    PORT: String(port),
    HOST: "127.0.0.1",
    // Each run's own free port: never the shared default 9464.
    MANAGEMENT_PORT: "0",
    // DPoP htu is ISSUER_URL + "oauth/token": it must name this port.
    ISSUER_URL: `http://127.0.0.1:${port}/`,
    ...options.store,
    SECRETS_KEY: options.secretsKey,
    INTERNAL_API_KEY: options.internalApiKey,
    SIGNING_KEYS_FILE: options.files.signingKeysFile,
    CLIENTS_FILE: options.files.clientsFile,
    // Production as shipped (issue 23): LOG_LEVEL and ACCESS_LOG at their
    // defaults (info, on), so every request writes its access line through
    // the real logger; stdout is /dev/null (spawnPinned), which costs the
    // write(2) a file would. --quiet adds a row with ACCESS_LOG=false.
    WORKERS: String(options.workers),
    // The attack-path row sends wrong codes for the same users again and
    // again; with the default 10 it would soon measure 429s (a different,
    // cheaper path). 1000 (the maximum) keeps every wrong code a real check.
    OTP_MAX_FAILURES: "1000",
    // Per-address throttling stays on (production's default, so its cost is
    // measured), but every request comes from 127.0.0.1: the largest bucket
    // keeps the attack-path row from measuring 429s.
    ADDRESS_MAX_FAILURES: "1000000",
    ADDRESS_FAILURE_REFILL_SECONDS: "1",
    // The bench's redis-server runs without persistence (it measures the
    // request path, not the disk): production's checks of AOF, noeviction
    // and the dataset marker would refuse it (docs/operations.md).
    REDIS_DURABILITY_CHECK: "off",
    REDIS_DATASET_CHECK: "off",
    ...options.extraEnv,
  };
  const args = [...(options.nodeFlags ?? []), options.main];
  const proc = track(spawnPinned(options.cpus, process.execPath, args, env), port);
  await waitUntil("service", proc, httpReady(port, "/readyz"));
  return proc;
}

/** The floor process: HTTP/1.1 on `port`, and the bare HTTP/2 (gRPC) floor on `h2Port`. */
export async function startFloor(options: {
  cpus: Cpus;
  redisUrl: string;
  files: BenchFiles;
  users: number;
}): Promise<Proc & { h2Port: number }> {
  const port = await freePort();
  const h2Port = await freePort();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    PORT: String(port),
    H2_PORT: String(h2Port),
    REDIS_URL: options.redisUrl,
    SIGNING_KEYS_FILE: options.files.signingKeysFile,
    USERS: String(options.users),
  };
  const args = ["--import", "tsx", "bench/floor-server.ts"];
  const proc = track(spawnPinned(options.cpus, process.execPath, args, env), port);
  await waitUntil("floor server", proc, httpReady(port, "/"));
  return { ...proc, h2Port };
}

/** Resident set size of one process, MiB (Linux /proc). */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1]);
  return kib / 1024;
}
