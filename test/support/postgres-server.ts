/**
 * A real PostgreSQL server for a test file (SPEC §8): Debian's `postgresql`
 * binaries, a cluster made with `initdb` in a temporary directory (as the
 * `postgres` user when the tests run as root: initdb refuses root), its
 * socket in that directory, listening on a free loopback port, stopped by the
 * postmaster's own pid. One server per test file; each suite takes a fresh
 * database owned by a role that is not a superuser (the service needs none),
 * with the schema migrated by the service's own runner.
 *
 * With `DATABASE_URL` set, that server is used instead (unless a test needs
 * one of its own: `dedicated`, e.g. to stop it): each suite then gets a fresh
 * schema (`options=-c search_path=…` in its URL), dropped at the end;
 * nothing else there is touched.
 */
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { appendFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import pg from "pg";
import { migrate } from "../../src/store/postgres-migrations.js";
import { freePort } from "./redis-server.js";

const run = promisify(execFile);

/** The role the service connects as in our own servers: owns its databases, not a superuser. */
export const SERVICE_ROLE = "token_service";

export interface PostgresServerHandle {
  /** A superuser connection (our own server) or DATABASE_URL itself. */
  adminUrl: string;
  port: number;
  /** True when DATABASE_URL is used (no start/stop/crash of it). */
  external: boolean;
  /**
   * A fresh, empty database (external: a schema) for one suite, migrated to
   * `migrateTo` (default: the newest version; 0: left empty). Returns the URL
   * the service uses.
   */
  freshDatabase(options?: { migrateTo?: number }): Promise<string>;
  /** `pg_dump` of the database a freshDatabase URL names (plain SQL, data included). */
  dump(url: string): Promise<string>;
  /** Stops the server (fast shutdown), keeping its data; `start()` brings it back. */
  halt(): Promise<void>;
  start(): Promise<void>;
  /** `pg_ctl restart -m immediate`: a crash (no checkpoint), then crash recovery. */
  crashRestart(): Promise<void>;
  /** With `tls`: the server's self-signed certificate (its own CA), for `sslrootcert`. */
  certificateFile?: string;
  /** The postmaster's pid (our own server, while it runs). */
  pid(): number;
  /** Stops the server and deletes its directory (external: drops the schemas it made). */
  stop(): Promise<void>;
  /**
   * Counts the statements the service's role runs in the database `url`
   * names (pg_stat_statements, top-level statements only: one per round
   * trip). Our own servers only: undefined on DATABASE_URL's.
   */
  countStatements(url: string): Promise<StatementCounter | undefined>;
}

export interface StatementCounter {
  /** The statements run since the previous take (one entry per execution). */
  take(): Promise<string[]>;
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** A server of our own even when DATABASE_URL is set (a test that stops or crashes it). */
  dedicated?: boolean;
  /**
   * fsync on (the default keeps it off: faster, and a process crash loses
   * nothing either way, as the WAL is in the kernel's cache; a crash test
   * turns it on all the same).
   */
  durable?: boolean;
  /** TLS on, with a self-signed certificate for 127.0.0.1 (implies a server of our own). */
  tls?: boolean;
}

/** Debian's layout (/usr/lib/postgresql/<major>/bin), the newest major, or POSTGRES_BIN_DIR. */
export function postgresBinDir(): string {
  if (process.env.POSTGRES_BIN_DIR) return process.env.POSTGRES_BIN_DIR;
  const root = "/usr/lib/postgresql";
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((name) => /^\d+$/.test(name) && existsSync(join(root, name, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (majors[0] !== undefined) return join(root, majors[0], "bin");
  throw new Error(
    "no PostgreSQL server binaries (apt-get install postgresql, or POSTGRES_BIN_DIR)",
  );
}

const asRoot = process.getuid?.() === 0;

/** Runs a server binary, as the `postgres` user when we are root. */
function runAsOwner(binary: string, args: string[]) {
  const file = join(postgresBinDir(), binary);
  return asRoot ? run("runuser", ["-u", "postgres", "--", file, ...args]) : run(file, args);
}

/** Servers this process started: stopped (immediate shutdown) if it exits without stopping them. */
const running = new Map<string, () => number | undefined>();
process.on("exit", () => {
  for (const [dir, pidOf] of running) {
    const pid = pidOf();
    if (pid !== undefined) {
      try {
        process.kill(pid, "SIGQUIT");
      } catch {}
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

export async function startPostgresServer(
  options: StartPostgresOptions = {},
): Promise<PostgresServerHandle> {
  const external = process.env.DATABASE_URL;
  if (external && !options.dedicated && !options.tls) return externalServer(external);
  return ownServer(options);
}

async function ownServer(options: StartPostgresOptions): Promise<PostgresServerHandle> {
  const dir = mkdtempSync(join(tmpdir(), "token-service-pg-"));
  const data = join(dir, "data");
  const log = join(dir, "server.log");
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    chownSync(dir, uid, gid);
  }
  const port = await freePort();
  const readPid = (): number | undefined => {
    try {
      const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  running.set(dir, readPid);

  await runAsOwner("initdb", [
    "-D",
    data,
    "-U",
    "postgres",
    "-A",
    "trust",
    "-E",
    "UTF8",
    "--no-locale",
    "--no-sync",
  ]);
  const settings = [
    "listen_addresses = '127.0.0.1'",
    `port = ${port}`,
    `unix_socket_directories = '${dir}'`,
    // Test files share the machine: several services with pools of 10 each.
    "max_connections = 200",
    `fsync = ${options.durable ? "on" : "off"}`,
    // Statement counts for the round-trip tests (countStatements).
    "shared_preload_libraries = 'pg_stat_statements'",
    "synchronous_commit = on",
  ];
  await appendFile(join(data, "postgresql.conf"), `\n${settings.join("\n")}\n`);

  let certificateFile: string | undefined;
  if (options.tls) {
    certificateFile = join(dir, "server.crt");
    const keyFile = join(dir, "server.key");
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-days",
      "1",
      "-keyout",
      keyFile,
      "-out",
      certificateFile,
    ]);
    chmodSync(keyFile, 0o600);
    if (asRoot) {
      const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
      chownSync(keyFile, uid, -1);
      chownSync(certificateFile, uid, -1);
    }
    await appendFile(
      join(data, "postgresql.conf"),
      `ssl = on\nssl_cert_file = '${certificateFile}'\nssl_key_file = '${keyFile}'\n`,
    );
  }
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const start = async () => {
    await runAsOwner("pg_ctl", ["start", "-D", data, "-l", log, "-w", "-t", "60", "-s"]);
  };
  await start();
  await withClient(adminUrl, (client) => client.query(`CREATE ROLE ${SERVICE_ROLE} LOGIN`));

  const halt = async () => {
    const pid = readPid();
    if (pid === undefined) return;
    try {
      process.kill(pid, "SIGINT"); // fast shutdown: sessions end, a checkpoint is written
    } catch {
      return;
    }
    const deadline = Date.now() + 30_000;
    while (alive(pid)) {
      if (Date.now() > deadline) throw new Error(`postgres ${pid} did not stop`);
      await sleep(25);
    }
  };

  return {
    adminUrl,
    port,
    external: false,
    ...(certificateFile ? { certificateFile } : {}),
    async freshDatabase({ migrateTo } = {}) {
      const name = `ts_${randomBytes(6).toString("hex")}`;
      await withClient(adminUrl, (client) =>
        client.query(`CREATE DATABASE ${name} OWNER ${SERVICE_ROLE}`),
      );
      const url = `postgres://${SERVICE_ROLE}@127.0.0.1:${port}/${name}`;
      if (migrateTo !== 0) await migrate({ url, connectTimeoutMs: 10_000 }, { upTo: migrateTo });
      return url;
    },
    async dump(url) {
      const { stdout } = await run(
        join(postgresBinDir(), "pg_dump"),
        ["--no-owner", "--dbname", url],
        { maxBuffer: 256 * 1024 * 1024 },
      );
      return stdout;
    },
    halt,
    start,
    async crashRestart() {
      await runAsOwner("pg_ctl", ["restart", "-D", data, "-m", "immediate", "-l", log, "-w", "-s"]);
    },
    pid() {
      const pid = readPid();
      if (pid === undefined) throw new Error("postgres is not running");
      return pid;
    },
    async stop() {
      await halt();
      running.delete(dir);
      rmSync(dir, { recursive: true, force: true });
    },
    async countStatements(url) {
      const database = new URL(url).pathname.slice(1);
      const client = new pg.Client({
        connectionString: `postgres://postgres@127.0.0.1:${port}/${database}`,
      });
      client.on("error", () => {});
      await client.connect();
      await client.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
      const snapshot = async () => {
        const { rows } = await client.query<{ query: string; calls: string }>(
          `SELECT s.query, s.calls FROM pg_stat_statements s
           WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND s.userid = $1::regrole`,
          [SERVICE_ROLE],
        );
        return new Map(rows.map((r) => [r.query, Number(r.calls)]));
      };
      let last = await snapshot();
      return {
        async take() {
          const now = await snapshot();
          const ran: string[] = [];
          for (const [query, calls] of now) {
            for (let n = last.get(query) ?? 0; n < calls; n++) ran.push(query);
          }
          last = now;
          return ran;
        },
        stop: () => client.end(),
      };
    },
  };
}

function externalServer(url: string): PostgresServerHandle {
  const schemas: string[] = [];
  const notOurs = (what: string) => async () => {
    throw new Error(`${what}: not on DATABASE_URL's server (start one with { dedicated: true })`);
  };
  return {
    adminUrl: url,
    port: Number(new URL(url).port || 5432),
    external: true,
    async freshDatabase({ migrateTo } = {}) {
      const schema = `ts_test_${randomBytes(6).toString("hex")}`;
      await withClient(url, (client) => client.query(`CREATE SCHEMA ${schema}`));
      schemas.push(schema);
      const fresh = new URL(url);
      fresh.searchParams.set("options", `-c search_path=${schema}`);
      const freshUrl = fresh.toString();
      if (migrateTo !== 0) {
        await migrate({ url: freshUrl, connectTimeoutMs: 10_000 }, { upTo: migrateTo });
      }
      return freshUrl;
    },
    async dump(freshUrl) {
      const parsed = new URL(freshUrl);
      const schema = /search_path=(\w+)/.exec(parsed.searchParams.get("options") ?? "")?.[1];
      parsed.searchParams.delete("options");
      const { stdout } = await run(
        join(postgresBinDir(), "pg_dump"),
        ["--no-owner", ...(schema ? ["--schema", schema] : []), "--dbname", parsed.toString()],
        { maxBuffer: 256 * 1024 * 1024 },
      );
      return stdout;
    },
    halt: notOurs("halt"),
    start: notOurs("start"),
    crashRestart: notOurs("crashRestart"),
    pid() {
      throw new Error("pid: not our server");
    },
    countStatements: async () => undefined,
    async stop() {
      if (schemas.length === 0) return;
      await withClient(url, async (client) => {
        for (const schema of schemas) await client.query(`DROP SCHEMA ${schema} CASCADE`);
      });
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One connection for a few statements, closed afterwards. */
export async function withClient<T>(
  url: string,
  use: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on("error", () => {});
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => {});
  }
}
