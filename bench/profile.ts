/**
 * Reads a V8 .cpuprofile (written by `node --cpu-prof`) and ranks frames by
 * self time: samples × their time deltas, summed per node, then aggregated by
 * function name + script + line (one function appears as many nodes, one per
 * call path). Shares are of busy samples: "(idle)" is left out.
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Frame {
  name: string;
  where: string;
  selfMs: number;
  share: number;
}

export function topSelfFrames(file: string, limit: number): Frame[] {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byNode = new Map<number, ProfileNode>(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<string, { name: string; where: string; us: number }>();
  let totalUs = 0;
  profile.samples.forEach((nodeId, i) => {
    // timeDeltas[i] is the time since the previous sample: it belongs to sample i.
    const us = profile.timeDeltas[i] ?? 0;
    const frame = byNode.get(nodeId)?.callFrame;
    // Idle samples are the time the process waited (start-up, between runs): not work.
    if (frame === undefined || frame.functionName === "(idle)") return;
    totalUs += us;
    const where = frame.url
      ? `${shorten(frame.url)}:${frame.lineNumber + 1}` // lineNumber is 0-based
      : "";
    const key = `${frame.functionName}|${where}`;
    const entry = selfUs.get(key) ?? { name: frame.functionName || "(anonymous)", where, us: 0 };
    entry.us += us;
    selfUs.set(key, entry);
  });
  return [...selfUs.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, limit)
    .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, share: e.us / totalUs }));
}

/** Paths relative to the repository or node_modules, for a readable table. */
function shorten(url: string): string {
  const path = url.replace(/^file:\/\//, "");
  const modules = path.lastIndexOf("node_modules/");
  if (modules >= 0) return path.slice(modules + "node_modules/".length);
  const cwd = `${process.cwd()}/`;
  return path.startsWith(cwd) ? path.slice(cwd.length) : path;
}
