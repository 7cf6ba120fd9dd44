/**
 * A well-behaved client running beside an attack: one request every
 * `intervalMs` on fresh HTTP/1.1 connections, each with a timeout, recording
 * the latency of every answer and every failure. "Normal requests served
 * within a bound during the attack" is asserted on what it records.
 */
import http from "node:http";

export interface ProbeResult {
  sent: number;
  /** Latencies (ms) of the answers with the expected status. */
  latencies: number[];
  /** Requests that failed, timed out or got another status. */
  failures: string[];
  p50: number;
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
}

/** One request on a fresh connection; resolves with [status, ms] or rejects. */
export function timedRequest(options: ProbeOptions): Promise<[number, number]> {
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
      (error: Error) => {
        failures.push(error.message);
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
        p50: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN,
        max: sorted.at(-1) ?? Number.NaN,
      };
    },
  };
}
