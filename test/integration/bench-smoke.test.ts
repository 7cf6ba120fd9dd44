// `npm run bench` still works (issue 4): a 2-second smoke of the real script —
// build, own redis-server and PostgreSQL server, seeding, floor, three service
// rows on each store (the refresh rows' chained exchanges included) — that checks the
// exit status and the table, never the numbers (numbers belong in the
// benchmark, not in a timed test).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

test("npm run bench -- --smoke exits 0 and prints the table", { timeout: 240_000 }, async () => {
  const child = spawn("npm", ["run", "-s", "bench", "--", "--smoke"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];

  assert.equal(code, 0, `bench failed:\n${stderr.slice(-3000)}`);
  assert.match(stdout, /^\| row \| req\/s \| p50 ms \| p99 ms \| req\/s ÷ floor \|/m);
  for (const row of [
    "floor",
    "REST form success",
    "REST wrong code (attack path)",
    "REST refresh (rotating)",
    "REST form success, PostgreSQL",
    "REST wrong code (attack path), PostgreSQL",
    "REST refresh (rotating), PostgreSQL",
  ]) {
    assert.match(stdout, new RegExp(`^\\| ${row.replace(/[()]/g, "\\$&")}[^|]* \\| \\d+ \\|`, "m"));
  }
  assert.match(stdout, /RSS at start: [\d.]+ MiB/);
  // PostgreSQL: two statements per success, one per wrong code or exchange.
  assert.match(stdout, /^\| REST form success, PostgreSQL \|(?:[^|]*\|){6} 2(?:\.0\d)? \(/m);
});
