/**
 * What the access log (ACCESS_LOG) costs on the verify path.
 *
 *   node --conditions=@token-service/source --import tsx bench/access-log-cost.ts [requests] [rounds]
 *
 * (A) A/B through the real listener, as server CPU per request (the figure
 * that moves least with the host's speed, README "Performance"). One
 * server process (this script, forked with --server) runs the app twice,
 * ACCESS_LOG=true and ACCESS_LOG=false, on one memory store and one fake
 * clock, logging at info to its stdout: a file (default), or with
 * LOG_TO=pipe a pipe this process reads and drops (as a container runtime
 * reads a service's stdout), or LOG_TO=null /dev/null. This process is the client: CONNECTIONS
 * (default 16) keep-alive HTTP/1.1 connections sending `POST /oauth/token`
 * mfa-otp successes (each with its own user, mfa_token and code, built
 * before the clock starts). Phases alternate on/off for `rounds` rounds
 * (after one unrecorded round of each: the first phases run colder code),
 * each phase's first 300 requests a warm-up; per phase the server's CPU
 * µs per request (process.cpuUsage over IPC before and after). Reported:
 * every round, the medians, the spread, and on − off as a share of a
 * verify. On a shared 2-core machine a round moves by ±15 µs, so read the
 * median, and (B).
 *
 * (B) The line alone: the access log's `write` (the only work ACCESS_LOG
 * adds; ids, metrics and spans run either way) into a pino async
 * destination on a file, 16 lines per event-loop turn (a loaded server
 * completes several requests per turn) and 1 per turn (an idle one), as
 * CPU µs per line, every thread included (the file writes run on libuv's
 * pool), less the cost of the same turns without lines.
 *
 * The memory store makes a verify cheaper than on Redis, so the shares are
 * upper bounds.
 */
import { fork } from "node:child_process";
import { mkdtempSync, openSync, rmSync, statSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { type App, createApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createMfaTokenCodec } from "../src/mfa/mfa-token-codec.js";
import { decodeBase32Secret, generateTotp } from "../src/mfa/totp.js";
import { createAccessLog } from "../src/observability/access-log.js";
import type { AccessRecord } from "../src/observability/access-record.js";
import { createLogger } from "../src/observability/logger.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { createFakeClock } from "../src/util/clock.js";
import {
  CLIENT_ID,
  CLIENT_SECRET,
  INTERNAL_API_KEY,
  MFA_OTP_GRANT,
  median,
  postToken,
  SCOPE,
  SECRETS_KEY_B64,
} from "./common.js";

const [requestsArg, roundsArg] = process.argv.slice(2).filter((arg) => arg !== "--server");
const REQUESTS = Number(requestsArg ?? 3000);
const ROUNDS = Number(roundsArg ?? 6);
const WARMUP = 300;
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 16);
const CLIENTS_FILE = "bench:clients.json";

type ToServer = { cmd: "advance" } | { cmd: "cpu" };
type FromServer =
  | {
      ready: true;
      ports: { on: number; off: number };
      users: Array<{ userId: string; secret: string }>;
    }
  | { nowMs: number }
  | { cpuUs: number };

// ---------------------------------------------------------------- server side

async function server(): Promise<void> {
  const clock = createFakeClock(Date.now());
  const store = createMemoryStore({ now: clock.nowMs });
  const build = (accessLog: boolean): App =>
    createApp(
      loadConfig(
        {
          PORT: "0",
          CLIENTS_FILE,
          SECRETS_KEY: SECRETS_KEY_B64,
          INTERNAL_API_KEY,
          LOG_LEVEL: "info",
          ACCESS_LOG: String(accessLog),
        },
        {
          readFile: () =>
            JSON.stringify({
              clients: [
                {
                  client_id: CLIENT_ID,
                  client_secret: CLIENT_SECRET,
                  grant_types: [MFA_OTP_GRANT],
                },
              ],
            }),
        },
      ),
      { store, clock },
    );
  const on = build(true);
  const off = build(false);
  // Users with an active authenticator: associate, then one verify.
  const services = on.ctx.services;
  const users: Array<{ userId: string; secret: string }> = [];
  const issue = (userId: string) =>
    services.issueMfaToken({
      apiKey: INTERNAL_API_KEY,
      userId,
      clientId: CLIENT_ID,
      audience: "",
      scope: SCOPE,
      userLabel: userId,
    });
  for (let i = 0; i < WARMUP + REQUESTS; i++) {
    const userId = `access-bench-${i}`;
    const { secret } = await services.associate({
      mfaToken: (await issue(userId)).mfaToken,
      authenticatorTypes: ["otp"],
    });
    await services.tokenEndpoint.exchange({
      grantType: MFA_OTP_GRANT,
      client: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
      clientAddress: "127.0.0.1",
      params: {
        mfa_token: (await issue(userId)).mfaToken,
        otp: generateTotp(decodeBase32Secret(secret), Math.floor(clock.nowMs() / 1000)),
      },
      dpop: { proofs: undefined, htu: "http://localhost/oauth/token" },
    });
    users.push({ userId, secret });
  }
  const ports = { on: (await on.listen(0)).port, off: (await off.listen(0)).port };
  process.on("message", (message: ToServer) => {
    if (message.cmd === "advance") {
      clock.advance(30_000);
      process.send?.({ nowMs: clock.nowMs() } satisfies FromServer);
    } else {
      const { user, system } = process.cpuUsage();
      process.send?.({ cpuUs: user + system } satisfies FromServer);
    }
  });
  process.on("disconnect", () => process.exit(0));
  process.send?.({ ready: true, ports, users } satisfies FromServer);
}

// ---------------------------------------------------------------- client side

async function client(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "access-log-cost-"));
  const logFile = join(dir, "service.log");
  // LOG_TO=file (default), pipe (read and dropped by this process, as a container runtime reads stdout) or null.
  const logTo = process.env.LOG_TO ?? "file";
  const child = fork(fileURLToPath(import.meta.url), ["--server", String(REQUESTS)], {
    stdio: [
      "ignore",
      logTo === "pipe" ? "pipe" : openSync(logTo === "null" ? "/dev/null" : logFile, "w"),
      "inherit",
      "ipc",
    ],
    execArgv: process.execArgv,
  });
  let piped = 0;
  child.stdout?.on("data", (chunk: Buffer) => {
    piped += chunk.length;
  });
  const replies: Array<(m: FromServer) => void> = [];
  let ready: (m: Extract<FromServer, { ready: true }>) => void = () => {};
  const started = new Promise<Extract<FromServer, { ready: true }>>((r) => {
    ready = r;
  });
  child.on("message", (m: FromServer) => {
    if ("ready" in m) ready(m);
    else replies.shift()?.(m);
  });
  const ask = <T extends FromServer>(message: ToServer) =>
    new Promise<T>((resolve) => {
      replies.push(resolve as (m: FromServer) => void);
      child.send(message);
    });
  const { ports, users } = await started;
  const codec = createMfaTokenCodec(Buffer.from(SECRETS_KEY_B64, "base64"));

  const phase = async (port: number) => {
    const { nowMs } = await ask<{ nowMs: number }>({ cmd: "advance" });
    const bodies = users.map(({ userId, secret }) =>
      new URLSearchParams({
        grant_type: MFA_OTP_GRANT,
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        mfa_token: codec.issue({
          userId,
          clientId: CLIENT_ID,
          audience: "",
          scope: SCOPE,
          userLabel: userId,
          expiresAt: Math.floor(nowMs / 1000) + 600,
        }).token,
        otp: generateTotp(decodeBase32Secret(secret), Math.floor(nowMs / 1000)),
      }).toString(),
    );
    const warm = new Agent({ keepAlive: true, maxSockets: 1 });
    for (const body of bodies.slice(0, WARMUP)) await postToken(port, warm, body);
    warm.destroy();
    const timed = bodies.slice(WARMUP);
    const cpuBefore = (await ask<{ cpuUs: number }>({ cmd: "cpu" })).cpuUs;
    const latencies: number[] = [];
    // CONNECTIONS keep-alive connections, each sending its share one request at a time.
    const lanes = Array.from({ length: CONNECTIONS }, (_, lane) => async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      for (let i = lane; i < timed.length; i += CONNECTIONS) {
        const start = process.hrtime.bigint();
        const status = await postToken(port, agent, timed[i] as string);
        latencies.push(Number(process.hrtime.bigint() - start) / 1000);
        if (status !== 200) throw new Error(`status ${status}`);
      }
      agent.destroy();
    });
    await Promise.all(lanes.map((lane) => lane()));
    const cpuAfter = (await ask<{ cpuUs: number }>({ cmd: "cpu" })).cpuUs;
    // Two IPC round trips are inside the window; their CPU is negligible next to thousands of requests.
    return { cpuUsPerRequest: (cpuAfter - cpuBefore) / REQUESTS, p50Us: median(latencies) };
  };

  // One round of each first, not recorded: the process's first phases run colder code.
  await phase(ports.on);
  await phase(ports.off);
  const rows: Array<{
    on: Awaited<ReturnType<typeof phase>>;
    off: Awaited<ReturnType<typeof phase>>;
  }> = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which goes first, so neither always runs on a warmer (or colder) process.
    if (round % 2 === 0) {
      const on = await phase(ports.on);
      rows.push({ on, off: await phase(ports.off) });
    } else {
      const off = await phase(ports.off);
      rows.push({ off, on: await phase(ports.on) });
    }
  }
  const logBytes = logTo === "file" ? statSync(logFile).size : piped;
  child.disconnect();
  rmSync(dir, { recursive: true, force: true });

  const f = (n: number) => n.toFixed(1).padStart(7);
  console.log(
    `node ${process.version}, (A) ${REQUESTS} REST mfa-otp successes per phase on ${CONNECTIONS} connections (+${WARMUP} warm-up), memory store, logs to ${logTo === "file" ? "a file" : logTo === "pipe" ? "a pipe" : "/dev/null"} (${(logBytes / 1e6).toFixed(1)} MB)`,
  );
  console.log("round   CPU µs/req on     off       Δ   p50 µs on     off");
  for (const [i, r] of rows.entries()) {
    console.log(
      `${String(i + 1).padStart(5)}   ${f(r.on.cpuUsPerRequest)} ${f(r.off.cpuUsPerRequest)} ${f(r.on.cpuUsPerRequest - r.off.cpuUsPerRequest)}   ${f(r.on.p50Us)} ${f(r.off.p50Us)}`,
    );
  }
  const cpuOn = rows.map((r) => r.on.cpuUsPerRequest);
  const cpuOff = rows.map((r) => r.off.cpuUsPerRequest);
  const deltas = rows.map((r) => r.on.cpuUsPerRequest - r.off.cpuUsPerRequest);
  const spread = (v: number[]) => `${Math.min(...v).toFixed(1)}–${Math.max(...v).toFixed(1)}`;
  console.log(
    `median  ${f(median(cpuOn))} ${f(median(cpuOff))} ${f(median(deltas))}   ${f(median(rows.map((r) => r.on.p50Us)))} ${f(median(rows.map((r) => r.off.p50Us)))}`,
  );
  console.log(
    `(A) access log: ${median(deltas).toFixed(1)} CPU µs per request (rounds: ${spread(deltas)}) = ${((median(deltas) / median(cpuOff)) * 100).toFixed(1)} % of a verify (${median(cpuOff).toFixed(1)} µs, rounds ${spread(cpuOff)})`,
  );
}

// ---------------------------------------------------------------- (B) the line alone

async function lineAlone(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "access-log-line-"));
  const logger = createLogger(
    "info",
    pino.destination({ fd: openSync(join(dir, "lines.log"), "w"), sync: false }),
  );
  const log = createAccessLog(logger);
  const record: AccessRecord = {
    requestId: "e7443949-067c-4b4d-8ca8-58f723953ad5",
    method: "POST",
    surface: "rest",
    route: "/oauth/token",
    startNs: 0n,
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    clientId: CLIENT_ID,
  };
  const end = { status: 200, code: undefined, durationUs: 1234, aborted: false };
  const LINES = 200_000;
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  const settle = () => new Promise((resolve) => setTimeout(resolve, 50));
  const cpuUs = (usage: NodeJS.CpuUsage) => usage.user + usage.system;
  for (const perTurn of [16, 1]) {
    const samples: number[] = [];
    for (let round = 0; round < 5; round++) {
      const before = process.cpuUsage();
      for (let i = 0; i < LINES; i += perTurn) {
        for (let j = 0; j < perTurn; j++) log.write(record, end);
        await turn();
      }
      await settle();
      const withLines = cpuUs(process.cpuUsage(before));
      const idleBefore = process.cpuUsage();
      for (let i = 0; i < LINES; i += perTurn) await turn();
      await settle();
      samples.push((withLines - cpuUs(process.cpuUsage(idleBefore))) / LINES);
    }
    console.log(
      `(B) the line alone, ${String(perTurn).padStart(2)} per event-loop turn: ${median(samples).toFixed(2)} CPU µs per line (rounds ${Math.min(...samples).toFixed(2)}–${Math.max(...samples).toFixed(2)})`,
    );
  }
  rmSync(dir, { recursive: true, force: true });
}

if (process.argv.includes("--server")) {
  await server();
} else {
  await client();
  await lineAlone();
}
