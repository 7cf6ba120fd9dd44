/**
 * `npm run bench` — throughput and latency of the verify path (issue 4) and,
 * beside it, of a refresh-token exchange (issue 11).
 *
 * Builds the service, starts its own redis-server and PostgreSQL server,
 * seeds users straight into both, then runs the floor (bench/floor-server.ts)
 * and the production build (`node dist/main.js`, NODE_ENV=production) side by
 * side — on Redis, and a second instance on PostgreSQL for the rows marked so
 * — every row with the same load tool, connections and duration, the rows
 * taking turns run by run (see Bench.roundRobin). Prints one markdown table
 * plus memory, worker and target lines (progress goes to stderr).
 *
 * Flags:
 *   --smoke      CI: 2 s, one run, floor + three rows on Redis and three on PostgreSQL,
 *                small seed (numbers meaningless)
 *   --long       also 1,000,000 REST successes, RSS every 100,000 (leak check)
 *   --profile    also a `node --cpu-prof` run of the success path; prints the top frames
 *   --profile-row=form|json|connect|grpc|wrong|dpop|refresh   the row to profile (default form)
 *   --profile-dir=DIR   keep the .cpuprofile there (default: a temp dir, deleted)
 *   --no-pin     do not pin with taskset
 *   --no-build   use the existing dist/
 *   --dist=DIR   run the service from another build (A/B a change against dist/)
 *   --env=K=V    one more variable of the service's environment (repeatable; A/B a setting)
 *   --rows=form,json,connect,grpc,wrong,dpop,openid,issue,refresh,pg-form,pg-wrong,pg-refresh
 *                only these service rows (no workers lines; form-quiet: see --quiet)
 *   --no-postgres  no PostgreSQL rows (also when PostgreSQL is not installed: said on stderr)
 *   --quiet      also a REST form row against a second service with ACCESS_LOG=false:
 *                the access log's cost beside the default rows, which run with it on
 *   --duration=S, --runs=N, --users=N, --connections=N
 *   --grpc-sessions=N   HTTP/2 connections the gRPC row's calls share (default: one per call)
 *   --replica    a replica attached to the bench's Redis before the services start:
 *                every Redis row then waits for its acknowledgement (WAIT; SPEC §7
 *                "Replica acknowledgement"). Compare with a run without it.
 *   BENCH_DEBUG=1       every run's outcome counts and CPU shares on stderr
 *
 * The refresh row: REST form, the bench client (rotating, leeway 0), ES256,
 * no ID token; each connection exchanges the refresh token of its own
 * previous answer, starting from a session seeded in Redis (SessionPool).
 *
 * The PostgreSQL rows (`pg-*`): the same requests against a second service
 * process whose store is the bench's own PostgreSQL server (production's
 * durability: fsync and synchronous_commit on; the Redis rows' server runs
 * without persistence). Their round trips are the statements the service's
 * role ran per request (pg_stat_statements), beside Redis' commands (MONITOR).
 *
 * Floors: every row is divided by the floor that does its intrinsic work
 * (column `floor`): ES256 for most rows, ES256 + RS256 ID token for `openid`,
 * DPoP proof verification for `dpop`, bare node:http2 for `grpc`; only the
 * floors the chosen rows need are run.
 *
 * Pinning (2 cores): the server under test alone on CPU 0; this process (the
 * load tools), redis-server and PostgreSQL on CPU 1. Without pinning the load
 * tool and the server steal each other's core and run-to-run spread grows.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import pg from "pg";
import { generateTotp } from "../src/mfa/totp.js";
import { createDatabase } from "../src/store/postgres-client.js";
import { migrate } from "../src/store/postgres-migrations.js";
import { createPostgresSessionStore } from "../src/store/postgres-session-store.js";
import { createRedisSessionStore } from "../src/store/redis-session-store.js";
import { countCommands } from "../test/support/redis-server.js";
import { hotp6, INTERNAL_API_KEY, median, SECRETS_KEY_B64, userSecret } from "./common.js";
import { runGrpcLoad } from "./h2-load.js";
import { runHttpLoad } from "./http-load.js";
import {
  type BenchFiles,
  type Cpus,
  hasTaskset,
  type PostgresProc,
  type Proc,
  pinProcess,
  postgresBinDir,
  rssMiB,
  startFloor,
  startPostgres,
  startRedis,
  startService,
  writeBenchFiles,
} from "./processes.js";
import { topSelfFrames } from "./profile.js";
import {
  cpuSecondsOf,
  type LoadResult,
  othersCpuSeconds,
  statsOf,
  unexpectedOf,
} from "./recorder.js";
import { type BodyKind, Feed, nextRefreshRequest, SessionPool, UserPool } from "./seed.js";

const { values: flags } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    long: { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    "profile-row": { type: "string", default: "form" },
    rows: { type: "string" },
    "profile-dir": { type: "string" },
    dist: { type: "string", default: "dist" },
    "no-pin": { type: "boolean", default: false },
    "no-build": { type: "boolean", default: false },
    "no-postgres": { type: "boolean", default: false },
    replica: { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
    duration: { type: "string" },
    runs: { type: "string" },
    users: { type: "string" },
    connections: { type: "string" },
    "grpc-sessions": { type: "string" },
    /** KEY=VALUE for the service's environment (repeatable): A/B a setting, e.g. ACCESS_LOG=false. */
    env: { type: "string", multiple: true },
  },
});
const smoke = flags.smoke === true;
const settings = {
  duration: Number(flags.duration ?? (smoke ? 2 : 8)),
  warmup: smoke ? 0.5 : 2,
  runs: Number(flags.runs ?? (smoke ? 1 : 3)),
  connections: Number(flags.connections ?? 50),
  // A user gives one success per 30 s step: enough users for the fastest
  // row's runs within one step, else the driver waits for the next step.
  users: Number(flags.users ?? (smoke ? 80_000 : 400_000)),
};
const grpcSessions = Number(flags["grpc-sessions"] ?? settings.connections);
const CORES = availableParallelism(); // read before pinning this process to one CPU
const pin = !flags["no-pin"] && hasTaskset() && CORES >= 2;
const SERVER_CPUS: Cpus = pin ? "0" : undefined;
const DRIVER_CPUS: Cpus = pin ? "1" : undefined;

const VERIFY_RPC = "/token.v1.TokenService/VerifyMfaOtp";

type StoreKind = "redis" | "postgres";
type FloorKey = "floor" | "floor-openid" | "floor-dpop" | "floor-h2";

interface RowSpec {
  name: string;
  kind: BodyKind;
  /** The service's store (default redis). */
  store?: StoreKind;
  /** The floor this row is divided by (default "floor"). */
  floor?: FloorKey;
  /** Against the second service with the access log off (--quiet). */
  quiet?: boolean;
  /** A short name for the `floor` column (floor rows only). */
  short?: string;
  protocol: "http" | "grpc";
  path: string;
  contentType: string;
  headers?: Record<string, string>;
  /** Outcomes that count as the row's answers ("ok" = 200 / grpc-status 0). */
  expected: string[];
  /** Each connection's next request from its previous answer (http-load.ts). */
  chain?: (responseBody: string) => ReturnType<typeof nextRefreshRequest>;
}

const FORM = "application/x-www-form-urlencoded";
const ROWS: Record<string, RowSpec> = {
  floor: {
    name: "floor (node:http, 1 EVALSHA, 1 ES256)",
    short: "ES256",
    kind: "floor",
    protocol: "http",
    path: "/oauth/token",
    contentType: FORM,
    expected: ["ok"],
  },
  "floor-openid": {
    name: "floor openid (node:http, 1 EVALSHA, ES256 + RS256 ID token)",
    short: "openid",
    kind: "floor",
    protocol: "http",
    path: "/openid",
    contentType: FORM,
    expected: ["ok"],
  },
  "floor-dpop": {
    name: "floor DPoP (node:http, DPoP proof check, 1 EVALSHA, 1 ES256)",
    short: "DPoP",
    kind: "floor-dpop",
    protocol: "http",
    path: "/dpop",
    contentType: FORM,
    expected: ["ok"],
  },
  "floor-h2": {
    name: "floor HTTP/2 (node:http2, gRPC frame + protobuf, 1 EVALSHA, 1 ES256)",
    short: "HTTP/2",
    kind: "floor-grpc",
    protocol: "grpc",
    path: VERIFY_RPC,
    contentType: "application/grpc+proto",
    expected: ["ok"],
  },
  form: {
    name: "REST form success",
    kind: "form",
    protocol: "http",
    path: "/oauth/token",
    contentType: FORM,
    expected: ["ok"],
  },
  json: {
    name: "REST JSON success",
    kind: "json",
    protocol: "http",
    path: "/oauth/token",
    contentType: "application/json",
    expected: ["ok"],
  },
  connect: {
    name: "Connect JSON success",
    kind: "connect",
    protocol: "http",
    path: VERIFY_RPC,
    contentType: "application/json",
    headers: { "connect-protocol-version": "1" },
    expected: ["ok"],
  },
  grpc: {
    name: "gRPC success",
    kind: "grpc",
    protocol: "grpc",
    path: VERIFY_RPC,
    contentType: "application/grpc+proto",
    expected: ["ok"],
    floor: "floor-h2",
  },
  wrong: {
    name: "REST wrong code (attack path)",
    kind: "wrong",
    protocol: "http",
    path: "/oauth/token",
    contentType: FORM,
    expected: ["400"],
  },
  dpop: {
    name: "REST success with DPoP",
    kind: "dpop",
    protocol: "http",
    path: "/oauth/token",
    contentType: FORM,
    expected: ["ok"],
    floor: "floor-dpop",
  },
  openid: {
    name: "REST success, openid (+ RS256 ID token)",
    kind: "openid",
    protocol: "http",
    path: "/oauth/token",
    contentType: FORM,
    expected: ["ok"],
    floor: "floor-openid",
  },
  issue: {
    name: "Connect IssueMfaToken",
    kind: "issue",
    protocol: "http",
    path: "/token.v1.MfaTokenService/IssueMfaToken",
    contentType: "application/json",
    headers: {
      "connect-protocol-version": "1",
      authorization: `Bearer ${INTERNAL_API_KEY}`,
    },
    expected: ["ok"],
  },
  refresh: {
    name: "REST refresh (rotating)",
    kind: "refresh",
    protocol: "http",
    path: "/oauth/token",
    contentType: FORM,
    expected: ["ok"],
    chain: nextRefreshRequest,
  },
};
/** REST form against a service with ACCESS_LOG=false (--quiet): the log's cost. */
ROWS["form-quiet"] = {
  ...(ROWS.form as RowSpec),
  name: "REST form success, access log off (--quiet)",
  quiet: true,
};
/** The same rows on the PostgreSQL service: success, attack path, refresh. */
for (const key of ["form", "wrong", "refresh"]) {
  const spec = ROWS[key] as RowSpec;
  ROWS[`pg-${key}`] = { ...spec, name: `${spec.name}, PostgreSQL`, store: "postgres" };
}
const withPostgres = !flags["no-postgres"] && postgresBinDir() !== undefined;
if (!flags["no-postgres"] && !withPostgres) {
  process.stderr.write(
    "PostgreSQL is not installed: no PostgreSQL rows (apt-get install postgresql)\n",
  );
}
const SERVICE_ROWS = (
  flags.rows?.split(",") ??
  (smoke
    ? ["form", "wrong", "refresh", "pg-form", "pg-wrong", "pg-refresh"]
    : [
        "form",
        "json",
        "connect",
        "grpc",
        "wrong",
        "dpop",
        "openid",
        "issue",
        "refresh",
        "pg-form",
        "pg-wrong",
        "pg-refresh",
      ])
)
  .filter((key) => withPostgres || !key.startsWith("pg-"))
  .concat(flags.quiet && !flags.rows?.includes("form-quiet") ? ["form-quiet"] : []);
for (const key of SERVICE_ROWS) {
  if (!(key in ROWS) || key.startsWith("floor")) throw new Error(`unknown row ${key}`);
}
/** The floors the chosen rows are divided by; the ES256 floor always (the memory and p99 lines use it). */
const FLOORS: FloorKey[] = [
  "floor",
  ...(["floor-openid", "floor-dpop", "floor-h2"] as const).filter((floor) =>
    SERVICE_ROWS.some((key) => ROWS[key]?.floor === floor),
  ),
];

/** Share of one core per process group during a run (others: the busiest run). */
interface Cpu {
  server: number;
  /** Server CPU time per answered request, µs: steadier than req/s when a neighbour steals time. */
  serverUsPerRequest: number;
  load: number;
  /** The row's store: redis-server, or the PostgreSQL postmaster and its backends. */
  store: number;
  /** Processes that are not the bench's own: a neighbour on a shared machine. */
  others: number;
}

type Run = LoadResult & { cpu: Cpu };

/** One measured row: medians over the runs. */
interface RowResult {
  name: string;
  /** The floor row this row is divided by. */
  floor: FloorKey;
  rps: number;
  p50: number;
  p99: number;
  unexpected: number;
  /** req/s of each run, in order (the spread behind the median). */
  runRps: number[];
  cpu: Cpu;
  /** Store round trips per request: Redis commands (MONITOR) or statements (pg_stat_statements). */
  storePerRequest?: string;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

class Bench {
  /** Observed answers per second by body kind; sizes the next run's bodies. */
  private readonly estimate = new Map<string, number>();
  private redisProc!: Proc & { url: string };
  private replicaProc: Proc | undefined;
  private redis!: Redis;
  private postgresProc: PostgresProc | undefined;
  private postgres: pg.Pool | undefined;
  private pool!: UserPool;
  private readonly sessions: Record<StoreKind, SessionPool> = {
    redis: new SessionPool(),
    postgres: new SessionPool(),
  };
  private files!: BenchFiles;
  private tmp!: string;
  /** Requests answered per server process (for the memory lines). */
  private readonly served = new Map<number, number>();

  servedBy(server: Proc): number {
    return this.served.get(server.pid) ?? 0;
  }

  async setUp(): Promise<void> {
    this.tmp = mkdtempSync(join(tmpdir(), "token-service-bench-"));
    this.files = writeBenchFiles(this.tmp);
    this.redisProc = await startRedis(DRIVER_CPUS);
    this.redis = new Redis(this.redisProc.url);
    if (flags.replica) {
      this.replicaProc = await startRedis(DRIVER_CPUS, this.redisProc.port);
      // In sync before any service starts: it then fixes REDIS_MIN_REPLICAS_ACK at 1.
      const deadline = Date.now() + 30_000;
      while (!/^slave0:.*state=online/m.test(await this.redis.info("replication"))) {
        if (Date.now() > deadline) throw new Error("the replica never came online");
        await sleep(50);
      }
      log("replica attached: every Redis write waits for its acknowledgement");
    }
    const started = Date.now();
    this.pool = new UserPool(settings.users);
    checkTotp();
    await this.pool.seed(this.redis);
    log(`seeded ${settings.users} users in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // A chain head per connection and load, with room for chains that break.
    const sessionCount = settings.connections * (settings.runs + 8) * 4;
    if (SERVICE_ROWS.includes("refresh") || flags["profile-row"] === "refresh") {
      const sessionsStarted = Date.now();
      await this.sessions.redis.seed(createRedisSessionStore(this.redis), sessionCount);
      log(
        `seeded ${sessionCount} sessions in ${((Date.now() - sessionsStarted) / 1000).toFixed(1)} s`,
      );
    }
    if (SERVICE_ROWS.some((key) => key.startsWith("pg-"))) {
      const postgresStarted = Date.now();
      this.postgresProc = await startPostgres(DRIVER_CPUS);
      await migrate({ url: this.postgresProc.url, connectTimeoutMs: 10_000 });
      this.postgres = new pg.Pool({ connectionString: this.postgresProc.url, max: 10 });
      await this.pool.seedPostgres(this.postgres);
      if (SERVICE_ROWS.includes("pg-refresh")) {
        const db = createDatabase({
          url: this.postgresProc.url,
          poolSize: 10,
          statementTimeoutMs: 10_000,
          connectTimeoutMs: 10_000,
        });
        await this.sessions.postgres.seed(createPostgresSessionStore(db), sessionCount);
        await db.close();
      }
      await this.postgres.query("VACUUM ANALYZE");
      log(
        `PostgreSQL: seeded ${settings.users} users${SERVICE_ROWS.includes("pg-refresh") ? ` and ${sessionCount} sessions` : ""} in ${((Date.now() - postgresStarted) / 1000).toFixed(1)} s`,
      );
    }
  }

  async tearDown(): Promise<void> {
    this.redis?.disconnect();
    await this.replicaProc?.stop();
    await this.redisProc?.stop();
    await this.postgres?.end();
    await this.postgresProc?.stop();
    if (this.tmp) rmSync(this.tmp, { recursive: true, force: true });
  }

  /** Moves this process (the load tools), redis-server and PostgreSQL (every process) to `cpus`. */
  pinDriver(cpus: string): void {
    pinProcess(process.pid, cpus);
    pinProcess(this.redisProc.pid, cpus);
    for (const pid of this.postgresPids()) pinProcess(pid, cpus);
  }

  /** The postmaster and its children (backends, background processes). */
  private postgresPids(): number[] {
    const postmaster = this.postgresProc?.pid;
    if (postmaster === undefined) return [];
    const children = execFileSync("ps", ["-o", "pid=", "--ppid", String(postmaster)])
      .toString()
      .split("\n")
      .map(Number)
      .filter((pid) => pid > 0);
    return [postmaster, ...children];
  }

  /** The pid whose CPU (its own and its children's) is the row's store's. */
  private storePid(store: StoreKind = "redis"): number {
    return store === "postgres" ? (this.postgresProc?.pid ?? 0) : this.redisProc.pid;
  }

  get redisUrl(): string {
    return this.redisProc.url;
  }

  startFloor(): Promise<Proc & { h2Port: number }> {
    return startFloor({
      cpus: SERVER_CPUS,
      redisUrl: this.redisUrl,
      files: this.files,
      users: settings.users,
    });
  }

  startService(
    workers: number,
    cpus: Cpus,
    nodeFlags?: string[],
    store: StoreKind = "redis",
    env: Record<string, string> = {},
  ): Promise<Proc> {
    const url = store === "postgres" ? this.postgresProc?.url : this.redisUrl;
    if (url === undefined) throw new Error("no PostgreSQL server: --rows without pg- rows?");
    return startService({
      cpus,
      store: store === "postgres" ? { DATABASE_URL: url } : { REDIS_URL: url },
      files: this.files,
      secretsKey: SECRETS_KEY_B64,
      internalApiKey: INTERNAL_API_KEY,
      workers,
      main: join(flags.dist ?? "dist", "main.js"),
      ...(nodeFlags ? { nodeFlags } : {}),
      extraEnv: {
        ...Object.fromEntries(
          (flags.env ?? []).map((pair) => {
            const eq = pair.indexOf("=");
            if (eq < 1) throw new Error(`--env takes KEY=VALUE (got "${pair}")`);
            return [pair.slice(0, eq), pair.slice(eq + 1)];
          }),
        ),
        ...env,
      },
    });
  }

  /** Bodies for one run; waits for the next time step when the pool is used up in this one. */
  private async feedFor(
    kind: BodyKind,
    count: number,
    port: number,
    store: StoreKind = "redis",
  ): Promise<Feed> {
    // Chains: one head per connection; a broken chain takes a new head.
    if (kind === "refresh") {
      const sessions = this.sessions[store];
      const heads = Math.min(count, settings.connections);
      return new Feed(sessions.build(heads), () =>
        sessions.available() >= 10 ? sessions.build(10) : undefined,
      );
    }
    // Wrong codes reuse a fixed set of users and may simply cycle.
    if (kind === "wrong" || kind === "issue") return new Feed(this.pool.build(kind, count, port));
    // Every success body takes a user for the current step ("mixed": half of them).
    const perUser = kind === "mixed" ? 2 : 1;
    count = Math.min(count, settings.users * perUser);
    if (this.pool.available() * perUser < count) {
      const waitMs = 30_000 - (Date.now() % 30_000) + 50;
      log(`  (user pool used up in this time step: waiting ${(waitMs / 1000).toFixed(0)} s)`);
      await sleep(waitMs);
    }
    // A small batch at a time keeps the load tool's pause short (a few ms).
    const refillSize = kind === "dpop" || kind === "floor-dpop" ? 200 : 500;
    const refill = () =>
      this.pool.available() * perUser >= refillSize
        ? this.pool.build(kind, refillSize, port)
        : undefined;
    return new Feed(this.pool.build(kind, count, port), refill);
  }

  /** One load run of `seconds` (or `amount` requests) against `server`. */
  async load(spec: RowSpec, server: Proc, seconds: number, amount?: number): Promise<Run> {
    const estimateKey = `${spec.store ?? "redis"}:${spec.kind}`;
    const perSecond = this.estimate.get(estimateKey) ?? 15_000;
    // 15% spare; the feed refills in small batches if a run is faster still.
    const count = amount ?? Math.ceil(perSecond * seconds * 1.15) + 2 * settings.connections;
    const feed = await this.feedFor(spec.kind, count, server.port, spec.store);
    const ours = [process.pid, server.pid, this.redisProc.pid, ...this.postgresPids()];
    const storePid = this.storePid(spec.store);
    const before = [cpuSecondsOf(server.pid), cpuSecondsOf(storePid), othersCpuSeconds(ours)];
    const common = {
      port: server.port,
      path: spec.path,
      connections: settings.connections,
      feed,
      ...(amount !== undefined ? { amount } : { duration: seconds }),
    };
    const result =
      spec.protocol === "grpc"
        ? await runGrpcLoad({ ...common, sessions: grpcSessions })
        : await runHttpLoad({
            ...common,
            contentType: spec.contentType,
            ...(spec.headers ? { headers: spec.headers } : {}),
            ...(spec.chain ? { chain: spec.chain } : {}),
          });
    const share = (now: number, then: number | undefined) =>
      Math.max(0, now - (then ?? 0)) / result.seconds;
    const answered = [...result.counts.values()].reduce((a, b) => a + b, 0);
    const serverCpu = share(cpuSecondsOf(server.pid), before[0]);
    const run: Run = {
      ...result,
      cpu: {
        server: serverCpu,
        serverUsPerRequest: (serverCpu * result.seconds * 1e6) / answered,
        load: result.loadCpu,
        store: share(cpuSecondsOf(storePid), before[1]),
        others: share(othersCpuSeconds(ours), before[2]),
      },
    };
    this.served.set(server.pid, (this.served.get(server.pid) ?? 0) + answered);
    // Never lower: a cold warm-up run would undersize the next run's bodies.
    const observed = answered / result.seconds;
    this.estimate.set(estimateKey, Math.max(observed, this.estimate.get(estimateKey) ?? 0));
    if (process.env.BENCH_DEBUG) {
      log(
        `    ${spec.kind} ${seconds || amount}: ${JSON.stringify(Object.fromEntries(result.counts))} ` +
          `in ${result.seconds.toFixed(2)} s, ${count} bodies, refills=${feed.refills} ` +
          `wrapped=${feed.wrapped} rss=${fmt(rssMiB(server.pid), 0)}MiB cpu=${JSON.stringify(run.cpu, (_k, v) => (typeof v === "number" ? Math.round(v * 100) : v))}`,
      );
    }
    return run;
  }

  /** Warm-up, then `runs` measured runs; medians of each figure. */
  async row(spec: RowSpec, server: Proc, outcome = spec.expected[0] as string): Promise<RowResult> {
    await this.load(spec, server, settings.warmup);
    const runs: Run[] = [];
    for (let i = 0; i < settings.runs; i++) {
      runs.push(await this.load(spec, server, settings.duration));
    }
    return summarize(spec, runs, outcome);
  }

  /**
   * Several rows, round-robin: after one warm-up each, run 1 of every row,
   * then run 2 of every row, and so on. The host's speed drifts (a shared VM:
   * the same code moved ±20 % within an hour here), and taking turns spreads
   * a slow patch over every row instead of sinking one, so the ratios between
   * rows — which the targets are about — hold still.
   */
  async roundRobin(
    rows: { spec: RowSpec; server: Proc; outcome?: string }[],
  ): Promise<RowResult[]> {
    for (const { spec, server } of rows) await this.load(spec, server, settings.warmup);
    const runs: Run[][] = rows.map(() => []);
    for (let i = 0; i < settings.runs; i++) {
      for (const [n, { spec, server }] of rows.entries()) {
        runs[n]?.push(await this.load(spec, server, settings.duration));
      }
    }
    return rows.map(({ spec, outcome }, n) => summarize(spec, runs[n] ?? [], outcome));
  }

  /**
   * Store round trips per request, over a short separate pass (never during
   * the timed runs): Redis commands clients sent (MONITOR, commands run
   * inside scripts excluded: MONITOR slows Redis), or the statements the
   * service's role ran on PostgreSQL (pg_stat_statements, top-level
   * statements only: the statements inside a function are not round trips).
   */
  async storeRoundTripsPerRequest(spec: RowSpec, server: Proc): Promise<string> {
    const counter =
      spec.store === "postgres"
        ? await this.statementCounter()
        : await countCommands(this.redisUrl);
    const amount = 200;
    try {
      const feed = await this.feedFor(spec.kind, amount, server.port, spec.store);
      const common = { port: server.port, path: spec.path, connections: 10, amount, feed };
      const result =
        spec.protocol === "grpc"
          ? await runGrpcLoad(common)
          : await runHttpLoad({
              ...common,
              contentType: spec.contentType,
              ...(spec.headers ? { headers: spec.headers } : {}),
              ...(spec.chain ? { chain: spec.chain } : {}),
            });
      const commands = await counter.take();
      if (process.env.BENCH_DEBUG) {
        log(`    accounting ${spec.kind}: ${JSON.stringify(Object.fromEntries(result.counts))}`);
      }
      const answered = [...result.counts.values()].reduce((a, b) => a + b, 0);
      const names = new Map<string, number>();
      for (const [name = "?"] of commands) names.set(name, (names.get(name) ?? 0) + 1);
      const perRequest = (n: number) => (n / answered).toFixed(2).replace(/\.00$/, "");
      const detail = [...names].map(([name, n]) => `${perRequest(n)} ${name}`).join(" + ");
      const off = unexpectedOf(result, ...spec.expected);
      return `${perRequest(commands.length)} (${detail}${off > 0 ? `; ${off} of ${answered} unexpected` : ""})`;
    } finally {
      await counter.stop();
    }
  }

  /**
   * Counts the statements role `bench` ran since the previous take, one entry
   * per execution named by the function it calls (`ts_begin_verify`), in the
   * shape countCommands gives Redis commands.
   */
  private async statementCounter(): Promise<{
    take(): Promise<string[][]>;
    stop(): Promise<void>;
  }> {
    const url = this.postgresProc?.adminUrl;
    if (url === undefined) throw new Error("no PostgreSQL server");
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const snapshot = async () => {
      const { rows } = await client.query<{ query: string; calls: string }>(
        `SELECT query, calls FROM pg_stat_statements
         WHERE userid = 'bench'::regrole AND dbid = (SELECT oid FROM pg_database WHERE datname = 'bench')`,
      );
      return new Map(rows.map((r) => [r.query, Number(r.calls)]));
    };
    let last = await snapshot();
    return {
      async take() {
        const now = await snapshot();
        const ran: string[][] = [];
        for (const [query, calls] of now) {
          const name = (/\bts_[a-z_]+/.exec(query) ?? /^\w+/.exec(query))?.[0] ?? "?";
          for (let n = last.get(query) ?? 0; n < calls; n++) ran.push([name]);
        }
        last = now;
        return ran;
      },
      stop: () => client.end(),
    };
  }
}

function checkTotp(): void {
  // The driver's fast HOTP must agree with the service's otplib codes.
  const secret = userSecret(0);
  const now = Math.floor(Date.now() / 1000);
  if (hotp6(secret, Math.floor(now / 30)) !== generateTotp(secret, now)) {
    throw new Error("bench hotp6 disagrees with otplib");
  }
}

function summarize(spec: RowSpec, runs: Run[], outcome = spec.expected[0] as string): RowResult {
  const stats = runs.map((run) => statsOf(run, outcome));
  const row: RowResult = {
    name: spec.name,
    floor: spec.floor ?? "floor",
    rps: median(stats.map((s) => s.rps)),
    p50: median(stats.map((s) => s.p50)),
    p99: median(stats.map((s) => s.p99)),
    // Bodies reused after a feed wrapped answer with errors: counted here.
    unexpected: runs.reduce((n, run) => n + unexpectedOf(run, ...spec.expected), 0),
    runRps: stats.map((s) => s.rps),
    cpu: {
      server: median(runs.map((r) => r.cpu.server)),
      serverUsPerRequest: median(runs.map((r) => r.cpu.serverUsPerRequest)),
      load: median(runs.map((r) => r.cpu.load)),
      store: median(runs.map((r) => r.cpu.store)),
      others: Math.max(...runs.map((r) => r.cpu.others)),
    },
  };
  log(`  ${row.name}: ${fmt(row.rps, 0)} req/s, p50 ${fmt(row.p50)} ms, p99 ${fmt(row.p99)} ms`);
  return row;
}

const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "–");
const pct = (n: number) => `${Math.round(n * 100)}`;

async function main(): Promise<void> {
  if (!flags["no-build"]) {
    log("building (npm run build) …");
    execFileSync("npm", ["run", "build"], { stdio: ["ignore", "ignore", "inherit"] });
  }
  if (pin) pinProcess(process.pid, DRIVER_CPUS as string);
  const bench = new Bench();
  const out: string[] = [];
  try {
    await bench.setUp();
    const rows: RowResult[] = [];

    // Both servers run from here (both pinned to the server CPU); only one is
    // under load at a time, and the idle one costs nothing measurable.
    log("floor and service (WORKERS=1) …");
    const floor = await bench.startFloor();
    // The HTTP/2 floor: the same process, its node:http2 listener.
    const floorH2: Proc = { ...floor, port: floor.h2Port };
    const service = await bench.startService(1, SERVER_CPUS);
    const quietService = SERVICE_ROWS.some((key) => ROWS[key]?.quiet)
      ? await bench.startService(1, SERVER_CPUS, undefined, "redis", { ACCESS_LOG: "false" })
      : undefined;
    const pgService = SERVICE_ROWS.some((key) => key.startsWith("pg-"))
      ? await bench.startService(1, SERVER_CPUS, undefined, "postgres")
      : undefined;
    const serverOf = (spec: RowSpec): Proc => {
      if (spec.quiet) {
        if (quietService === undefined) throw new Error("no quiet service");
        return quietService;
      }
      if (spec.store !== "postgres") return service;
      if (pgService === undefined) throw new Error("no PostgreSQL service");
      return pgService;
    };
    const memory: string[] = [];
    let floorRows: RowResult[];
    let mixed: RowResult | undefined;
    try {
      memory.push(`RSS at start: ${fmt(rssMiB(service.pid), 1)} MiB`);
      await bench.load(ROWS.form as RowSpec, service, settings.warmup * 2);
      // The quiet service gets the same JIT warm-up as the main one.
      if (quietService !== undefined) {
        await bench.load(ROWS["form-quiet"] as RowSpec, quietService, settings.warmup * 2);
      }
      memory.push(
        `RSS after warm-up (${bench.servedBy(service)} requests): ${fmt(rssMiB(service.pid), 1)} MiB`,
      );
      const specs = SERVICE_ROWS.map((key) => ROWS[key] as RowSpec);
      const withMixed = !smoke && SERVICE_ROWS.includes("form") && SERVICE_ROWS.includes("wrong");
      const floorSpecs = FLOORS.map((key) => ROWS[key] as RowSpec);
      const results = await bench.roundRobin([
        ...floorSpecs.map((spec) => ({ spec, server: spec.protocol === "grpc" ? floorH2 : floor })),
        ...specs.map((spec) => ({ spec, server: serverOf(spec) })),
        ...(withMixed ? [{ spec: MIXED, server: service, outcome: "ok" }] : []),
      ]);
      floorRows = results.slice(0, FLOORS.length);
      rows.push(...results.slice(FLOORS.length, FLOORS.length + specs.length));
      mixed = withMixed ? results.at(-1) : undefined;
      // MONITOR's counter loses track of its replies while a replica is
      // attached (ioredis "Command queue state error"): with --replica the
      // round trips are not counted (they are the same, each write + WAIT pipelined).
      if (!flags.replica) {
        for (const [n, spec] of floorSpecs.entries()) {
          (floorRows[n] as RowResult).storePerRequest = await bench.storeRoundTripsPerRequest(
            spec,
            spec.protocol === "grpc" ? floorH2 : floor,
          );
        }
      }
      await floor.stop();
      for (const [n, spec] of specs.entries()) {
        if (flags.replica) break;
        (rows[n] as RowResult).storePerRequest = await bench.storeRoundTripsPerRequest(
          spec,
          serverOf(spec),
        );
      }
      memory.push(
        `RSS after every row (${bench.servedBy(service)} requests): ${fmt(rssMiB(service.pid), 1)} MiB`,
      );
      if (pgService !== undefined) {
        memory.push(
          `RSS of the PostgreSQL service after its rows (${bench.servedBy(pgService)} requests): ${fmt(rssMiB(pgService.pid), 1)} MiB`,
        );
      }
      if (flags.long) memory.push(...(await longRun(bench, service)));
    } finally {
      await floor.stop();
      await service.stop();
      await quietService?.stop();
      await pgService?.stop();
    }

    // Only in the full run: --rows is for looking at a few rows quickly.
    const workerLines = smoke || flags.rows !== undefined ? [] : await workersCompared(bench);
    const profileLines = flags.profile ? await profileRun(bench) : [];

    out.push(...table(floorRows, rows, mixed));
    out.push("", ...memory.map((m) => `- ${m}`));
    if (workerLines.length > 0) out.push("", ...workerLines);
    out.push("", ...targets(floorRows, rows, mixed));
    if (profileLines.length > 0) out.push("", ...profileLines);
  } finally {
    await bench.tearDown();
  }
  process.stdout.write(`${out.join("\n")}\n`);
}

/** 50/50 success and wrong code on the same connections; reported: the success half. */
const MIXED: RowSpec = {
  ...(ROWS.form as RowSpec),
  name: "REST mixed 50/50 (success half)",
  kind: "mixed",
  expected: ["ok", "400"],
};

async function longRun(bench: Bench, service: Proc): Promise<string[]> {
  const chunk = 100_000;
  const samples: string[] = [];
  let failed = 0;
  for (let done = 0; done < 1_000_000; done += chunk) {
    const run = await bench.load(ROWS.form as RowSpec, service, 0, chunk);
    failed += unexpectedOf(run, "ok");
    samples.push(fmt(rssMiB(service.pid), 0));
    log(`  long run: ${done + chunk} requests, RSS ${samples.at(-1)} MiB`);
  }
  return [
    `RSS after 1,000,000 more REST successes (--long; ${failed} not 200), every 100,000: ${samples.join(", ")} MiB`,
  ];
}

/** WORKERS=1 and 2, both unpinned (2 workers need both cores, shared with the load tool and Redis). */
/**
 * WORKERS=1 and 2 with nothing pinned: two workers need both cores, which
 * they share with the load tool and Redis, so the scheduler places them all.
 */
async function workersCompared(bench: Bench): Promise<string[]> {
  const lines = ["Workers (REST form success; service, load tool and Redis all unpinned):"];
  if (pin) bench.pinDriver(`0-${CORES - 1}`);
  try {
    for (const workers of [1, 2]) {
      log(`service (WORKERS=${workers}, unpinned) …`);
      const service = await bench.startService(workers, undefined);
      try {
        await bench.load(ROWS.form as RowSpec, service, settings.warmup);
        const row = await bench.row(ROWS.form as RowSpec, service);
        lines.push(
          `- WORKERS=${workers}: ${fmt(row.rps, 0)} req/s, p50 ${fmt(row.p50)} ms, p99 ${fmt(row.p99)} ms; ` +
            `service CPU ${pct(row.cpu.server)}% of a core (${fmt(row.cpu.serverUsPerRequest, 0)} µs/req), ` +
            `load tool ${pct(row.cpu.load)}%, Redis ${pct(row.cpu.store)}%`,
        );
      } finally {
        await service.stop();
      }
    }
  } finally {
    if (pin) bench.pinDriver(DRIVER_CPUS as string);
  }
  return lines;
}

async function profileRun(bench: Bench): Promise<string[]> {
  const keep = flags["profile-dir"];
  const dir = keep ?? join(tmpdir(), `token-service-bench-prof-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  log("service under --cpu-prof …");
  const service = await bench.startService(1, SERVER_CPUS, ["--cpu-prof", `--cpu-prof-dir=${dir}`]);
  const spec = ROWS[flags["profile-row"] ?? "form"] as RowSpec;
  try {
    await bench.load(spec, service, settings.warmup);
    await bench.load(spec, service, settings.duration);
  } finally {
    await service.stop();
  }
  // Node names it CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile.
  const file = readdirSync(dir).find(
    (name) => name.includes(`.${service.pid}.`) && name.endsWith(".cpuprofile"),
  );
  if (file === undefined) return ["(no .cpuprofile written)"];
  const frames = topSelfFrames(join(dir, file), 15);
  if (keep === undefined) rmSync(dir, { recursive: true, force: true });
  return [
    `Top self-time frames, ${spec.name} under load (\`node --cpu-prof\`, share of busy samples):`,
    "",
    "| # | self % | function | where |",
    "|---|---|---|---|",
    ...frames.map(
      (f, i) => `| ${i + 1} | ${(f.share * 100).toFixed(1)} | ${f.name} | ${f.where} |`,
    ),
  ];
}

/** The floor row `row` is divided by (the ES256 floor when its own did not run). */
function floorOf(floors: RowResult[], row: RowResult): RowResult {
  const name = ROWS[row.floor]?.name;
  return floors.find((f) => f.name === name) ?? (floors[0] as RowResult);
}

/**
 * Floor rows first (each divided by the ES256 floor: what its extra work
 * costs), then every row divided by its own floor, named in column `floor`.
 * The `floor` column is last so the columns before it keep their places.
 */
function table(floors: RowResult[], rows: RowResult[], mixed: RowResult | undefined): string[] {
  const date = new Date().toISOString().slice(0, 10);
  const lines = [
    `Benchmark ${date}, ${CORES} cores, Node ${process.version}, ${settings.connections} connections, ${settings.runs} × ${settings.duration} s per row (median), ${pin ? "server on CPU 0, load tool + Redis on CPU 1 (taskset)" : "unpinned"}; service as shipped: NODE_ENV=production, access log on (to /dev/null), per-address throttling and metrics on`,
    "",
    "| row | req/s | p50 ms | p99 ms | req/s ÷ floor | p99 ÷ floor | server CPU µs/req | store round trips/req | CPU % server/load/store/others | unexpected | req/s per run | floor |",
    "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---|---|",
  ];
  const es256 = floors[0] as RowResult;
  for (const row of [...floors, ...rows, ...(mixed ? [mixed] : [])]) {
    const floor = floors.includes(row) ? es256 : floorOf(floors, row);
    const short = ROWS[floors.includes(row) ? "floor" : row.floor]?.short ?? "ES256";
    lines.push(
      `| ${row.name} | ${fmt(row.rps, 0)} | ${fmt(row.p50)} | ${fmt(row.p99)} | ${fmt(row.rps / floor.rps)} | ${fmt(row.p99 / floor.p99)} | ${fmt(row.cpu.serverUsPerRequest, 0)} | ${row.storePerRequest ?? "–"} | ${pct(row.cpu.server)}/${pct(row.cpu.load)}/${pct(row.cpu.store)}/${pct(row.cpu.others)} | ${row.unexpected} | ${row.runRps.map((r) => fmt(r, 0)).join(", ")} | ${short} |`,
    );
  }
  return lines;
}

function targets(floors: RowResult[], rows: RowResult[], mixed: RowResult | undefined): string[] {
  const find = (name: string) => rows.find((r) => r.name === ROWS[name]?.name);
  const lines = ["Targets (issue 23; ratios to each row's own floor, this run's medians):"];
  const check = (ok: boolean, text: string) => lines.push(`- ${ok ? "met" : "NOT met"}: ${text}`);
  const againstFloor = (key: string, target: number) => {
    const row = find(key);
    if (row === undefined) return;
    const floor = floorOf(floors, row);
    check(
      row.rps >= target * floor.rps,
      `${row.name} ≥ ${target} × its floor (${ROWS[row.floor]?.short}) req/s (${fmt(row.rps / floor.rps)}×)`,
    );
  };
  againstFloor("form", 0.85);
  againstFloor("connect", 0.85);
  againstFloor("grpc", 0.85);
  againstFloor("openid", 0.85);
  againstFloor("dpop", 0.8);
  const form = find("form");
  for (const [key, target] of [
    ["connect", 0.85],
    ["grpc", 0.8],
  ] as const) {
    const row = find(key);
    if (row && form)
      check(
        row.rps >= target * form.rps,
        `${row.name} ≥ ${target} × REST form (${fmt(row.rps / form.rps)}×)`,
      );
  }
  const quiet = find("form-quiet");
  if (quiet && form)
    lines.push(
      `- access log: REST form with it on runs at ${fmt(form.rps / quiet.rps)}× the rate with it off (${fmt(form.cpu.serverUsPerRequest - quiet.cpu.serverUsPerRequest, 0)} µs of server CPU per request)`,
    );
  const wrong = find("wrong");
  if (wrong && form)
    check(
      wrong.rps >= 1.5 * form.rps,
      `attack path ≥ 1.5 × success req/s (${fmt(wrong.rps / form.rps)}×)`,
    );
  if (mixed && form)
    check(
      mixed.p99 <= 2 * form.p99,
      `mixed 50/50: success p99 ≤ 2 × success-only p99 (${fmt(mixed.p99 / form.p99)}×)`,
    );
  const p99Ratio = (row: RowResult) => row.p99 / floorOf(floors, row).p99;
  const worst = rows.reduce((a, b) => (p99Ratio(b) > p99Ratio(a) ? b : a), rows[0] as RowResult);
  check(
    p99Ratio(worst) <= 1.5,
    `p99 ≤ 1.5 × its floor's p99 on every row (worst: ${worst.name}, ${fmt(p99Ratio(worst))}×)`,
  );
  return lines;
}

await main();
