/**
 * A well-behaved client running beside an attack: one request every
 * `intervalMs` on a fresh connection (HTTP/1.1, or an h2c session with
 * `protocol: "h2"`), each with a timeout, from `localAddress` when given (the
 * other users' address, 127.0.0.2, while the attacker uses 127.0.0.1),
 * recording the latency of every answer and every failure. "Normal requests
 * served during the attack" is asserted on what it records.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";

export interface ProbeResult {
  sent: number;
  /** Latencies (ms) of the answers with the expected status. */
  latencies: number[];
  /** Requests that failed, timed out or got another status. */
  failures: string[];
  p50: number;
  p95: number;
  max: number;
}

export interface Probe {
  stop(): Promise<ProbeResult>;
}

export interface ProbeOptions {
  port: number;
  path?: string;
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  expectStatus?: number;
  intervalMs?: number;
  timeoutMs?: number;
  /** The source address of the probe's connections (default: the system's choice, 127.0.0.1). */
  localAddress?: string;
  /** "h1" (default): HTTP/1.1 with `Connection: close`; "h2": one h2c session per request. */
  protocol?: "h1" | "h2";
}

/** One request on a fresh connection; resolves with [status, ms] or rejects. */
export function timedRequest(options: ProbeOptions): Promise<[number, number]> {
  return options.protocol === "h2" ? timedH2Request(options) : timedH1Request(options);
}

function timedH1Request(options: ProbeOptions): Promise<[number, number]> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: options.port,
        path: options.path ?? "/healthz",
        method: options.method ?? "GET",
        headers: { connection: "close", ...options.headers },
        agent: false,
        timeout: options.timeoutMs ?? 5_000,
        ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
      },
      (res) => {
        res.resume();
        res.once("end", () => resolve([res.statusCode ?? 0, performance.now() - started]));
        res.once("error", reject);
      },
    );
    req.once("timeout", () => req.destroy(new Error("timeout")));
    req.once("error", reject);
    req.end(options.body);
  });
}

function timedH2Request(options: ProbeOptions): Promise<[number, number]> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${options.port}`, {
      createConnection: () =>
        net.connect({
          host: "127.0.0.1",
          port: options.port,
          ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
        }),
    });
    const fail = (error: Error) => {
      session.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error("timeout")), options.timeoutMs ?? 5_000);
    session.once("error", fail);
    const stream = session.request({
      ":method": options.method ?? "GET",
      ":path": options.path ?? "/healthz",
      ...options.headers,
    });
    stream.once("error", fail);
    let status = 0;
    stream.once("response", (headers) => {
      status = Number(headers[":status"]);
    });
    stream.resume();
    stream.once("end", () => {
      clearTimeout(timer);
      session.close();
      resolve([status, performance.now() - started]);
    });
    stream.end(options.body);
  });
}

/** The value below which `fraction` of the sorted values lie (nearest rank). */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] as number;
}

/** Starts probing at once; `stop()` waits for the requests in flight. */
export function startProbe(options: ProbeOptions): Probe {
  const latencies: number[] = [];
  const failures: string[] = [];
  const inFlight = new Set<Promise<void>>();
  let sent = 0;
  const expected = options.expectStatus ?? 200;
  const timer = setInterval(() => {
    sent++;
    const request: Promise<void> = timedRequest(options).then(
      ([status, ms]) => {
        if (status === expected) latencies.push(ms);
        else failures.push(`status ${status}`);
      },
      (error: Error & { code?: string }) => {
        failures.push(error.code ?? error.message);
      },
    );
    inFlight.add(request);
    void request.finally(() => inFlight.delete(request));
  }, options.intervalMs ?? 100);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all(inFlight);
      const sorted = [...latencies].sort((a, b) => a - b);
      return {
        sent,
        latencies,
        failures,
        p50: percentile(sorted, 0.5),
        p95: percentile(sorted, 0.95),
        max: sorted.at(-1) ?? Number.NaN,
      };
    },
  };
}

/** "12/12 ok, p50 1.2 ms, p95 3.4 ms, max 5.6 ms" (and the failures, counted by kind). */
export function describeProbe(result: ProbeResult): string {
  const failures: Record<string, number> = {};
  for (const failure of result.failures) failures[failure] = (failures[failure] ?? 0) + 1;
  return (
    `${result.latencies.length}/${result.sent} ok, p50 ${result.p50.toFixed(1)} ms, ` +
    `p95 ${result.p95.toFixed(1)} ms, max ${result.max.toFixed(1)} ms` +
    (result.failures.length > 0 ? `, failures ${JSON.stringify(failures)}` : "")
  );
}
