/**
 * What one load run measured, the same way for every load tool: responses
 * and latencies per outcome ("ok", or the HTTP status / gRPC code of a
 * failure), so a mixed run can report the success half on its own.
 */
import { readdirSync, readFileSync } from "node:fs";
import { percentile } from "./common.js";

export interface LoadResult {
  seconds: number;
  counts: Map<string, number>;
  /** Milliseconds, sorted ascending, per outcome. */
  latencies: Map<string, Float64Array>;
  /** Connection errors and timeouts (not responses). */
  errors: number;
  /** Share of one core used by the load tool's process during the run. */
  loadCpu: number;
}

export class Recorder {
  private readonly samples = new Map<string, number[]>();
  private readonly startedAt = process.hrtime.bigint();
  private readonly cpuAtStart = process.cpuUsage();
  errors = 0;

  record(outcome: string, ms: number): void {
    let list = this.samples.get(outcome);
    if (list === undefined) {
      list = [];
      this.samples.set(outcome, list);
    }
    list.push(ms);
  }

  finish(): LoadResult {
    const seconds = Number(process.hrtime.bigint() - this.startedAt) / 1e9;
    const cpu = process.cpuUsage(this.cpuAtStart);
    const counts = new Map<string, number>();
    const latencies = new Map<string, Float64Array>();
    for (const [outcome, list] of this.samples) {
      counts.set(outcome, list.length);
      latencies.set(outcome, Float64Array.from(list).sort());
    }
    return {
      seconds,
      counts,
      latencies,
      errors: this.errors,
      loadCpu: (cpu.user + cpu.system) / 1e6 / seconds,
    };
  }
}

export interface OutcomeStats {
  rps: number;
  p50: number;
  p99: number;
  count: number;
}

export function statsOf(result: LoadResult, outcome: string): OutcomeStats {
  const sorted = result.latencies.get(outcome) ?? new Float64Array();
  return {
    rps: sorted.length / result.seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    count: sorted.length,
  };
}

/** Responses whose outcome is not `expected` (plus connection errors). */
export function unexpectedOf(result: LoadResult, ...expected: string[]): number {
  let n = result.errors;
  for (const [outcome, count] of result.counts) if (!expected.includes(outcome)) n += count;
  return n;
}

/** pid, parent pid and CPU seconds (user + system) so far, from /proc/<pid>/stat. */
function statOf(pid: string): { ppid: number; cpu: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start at ") ".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // ppid is field 4, utime and stime fields 14 and 15, in USER_HZ (100) ticks.
    return { ppid: Number(fields[1]), cpu: (Number(fields[11]) + Number(fields[12])) / 100 };
  } catch {
    return undefined; // exited meanwhile
  }
}

/** CPU seconds of a process and its children (the service's cluster workers). */
export function cpuSecondsOf(pid: number): number {
  let total = statOf(String(pid))?.cpu ?? 0;
  for (const child of readdirSync("/proc")) {
    if (/^\d+$/.test(child) && statOf(child)?.ppid === pid) total += statOf(child)?.cpu ?? 0;
  }
  return total;
}

/**
 * CPU seconds used by every process except `ours` (and their children, e.g.
 * cluster workers) and kernel threads. On a shared machine this tells when a
 * neighbour's work fell into a run.
 */
export function othersCpuSeconds(ours: readonly number[]): number {
  let total = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = statOf(pid);
    if (stat === undefined || stat.ppid === 2 || pid === "2") continue;
    if (ours.includes(Number(pid)) || ours.includes(stat.ppid)) continue;
    total += stat.cpu;
  }
  return total;
}
