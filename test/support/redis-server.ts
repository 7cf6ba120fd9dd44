/**
 * Test helpers for a real Redis: a throwaway redis-server per suite, and a
 * MONITOR-based command counter (docs/architecture.md: "a verify costs at most 2 Redis
 * round trips").
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";

export interface RedisServerHandle {
  url: string;
  port: number;
  /** The process this helper started (undefined for an external REDIS_URL). */
  pid?: number;
  /** Stops the server this helper started (a no-op for an external REDIS_URL). */
  stop(): Promise<void>;
}

export interface StartRedisServerOptions {
  /**
   * Always spawn a server of our own, even when REDIS_URL is set (e.g. a test
   * that stops it to simulate an outage).
   */
  dedicated?: boolean;
  /**
   * More redis-server options, after the defaults (a later option wins:
   * e.g. `["--appendonly", "yes"]`). Implies `dedicated`. Files (AOF, RDB)
   * go to a temporary directory of the server's own, removed by `stop()`.
   */
  args?: string[];
}

/** A free loopback port: listen on port 0, read the port, close. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** True when something on the port answers `PING` with `+PONG`. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let data = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      data += chunk.toString();
      if (data.includes("\r\n")) done(data.startsWith("+PONG"));
    });
  });
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(timer);
}

/**
 * Uses REDIS_URL when set (then tests must use distinct keys: nothing is
 * flushed), else spawns `redis-server` on a free loopback port without
 * persistence and waits until it answers PING. `stop()` kills exactly that
 * process.
 */
export async function startRedisServer(
  options: StartRedisServerOptions = {},
): Promise<RedisServerHandle> {
  const external = process.env.REDIS_URL;
  if (external && !options.dedicated && options.args === undefined) {
    const port = Number(new URL(external).port || 6379);
    return { url: external, port, stop: async () => {} };
  }

  const port = await freePort();
  const binary = process.env.REDIS_SERVER_BIN ?? "redis-server";
  const dir = mkdtempSync(join(tmpdir(), "token-service-redis-"));
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    ...(options.args ?? []),
  ];
  const child = spawn(binary, args, { stdio: "ignore" });
  let spawnError: Error | undefined;
  child.on("error", (err) => {
    spawnError = err;
  });

  const deadline = Date.now() + 10_000;
  while (!(await answersPing(port))) {
    if (spawnError) throw spawnError;
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    if (Date.now() > deadline) {
      await stopProcess(child);
      throw new Error(`redis-server did not answer PING on port ${port}`);
    }
    await sleep(25);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    stop: async () => {
      await stopProcess(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CommandCounter {
  /**
   * Waits until MONITOR has reported every command executed before this call,
   * then returns the commands sent by clients since the previous `take()`
   * (lower-cased name first; commands run inside Lua scripts excluded).
   */
  take(): Promise<string[][]>;
  stop(): Promise<void>;
}

/**
 * Counts the commands clients send to the server at `redisUrl`, via MONITOR
 * on a separate connection. MONITOR reports asynchronously, so `take()`
 * sends a unique `ECHO` from a third connection and waits until it shows up:
 * everything executed before it has been reported by then.
 */
export async function countCommands(redisUrl: string): Promise<CommandCounter> {
  const base = new Redis(redisUrl, { lazyConnect: true });
  const monitor = await base.monitor();
  const probe = new Redis(redisUrl);
  let seen: string[][] = [];
  const waiters = new Map<string, () => void>();

  monitor.on("monitor", (_time: string, args: string[], source: string) => {
    // Commands a script runs are reported with source "lua".
    if (source === "lua") return;
    const [name = "", ...rest] = args;
    const command = [name.toLowerCase(), ...rest];
    const waiter = command[0] === "echo" ? waiters.get(command[1] ?? "") : undefined;
    if (waiter) waiter();
    else seen.push(command);
  });

  const counter: CommandCounter = {
    async take() {
      const nonce = `count-commands:${randomUUID()}`;
      const reported = new Promise<void>((resolve) => waiters.set(nonce, resolve));
      await probe.echo(nonce);
      await reported;
      waiters.delete(nonce);
      const result = seen;
      seen = [];
      return result;
    },
    async stop() {
      monitor.disconnect();
      base.disconnect();
      await probe.quit();
    },
  };
  // Drop what was reported before the caller starts counting (the probe's
  // own connection handshake, for one).
  await counter.take();
  return counter;
}
