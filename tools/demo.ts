/**
 * The terminal demo: `npm run demo -- --auto` (src/demo/terminal-demo.ts).
 * Without --auto it asks for the code on stdin.
 */
import { createInterface, type Interface } from "node:readline";
import { runTerminalDemo } from "../src/demo/terminal-demo.js";

// One reader for the whole run: a reader per question would drop the lines
// it had buffered (e.g. a second code piped in after a wrong first one).
let stdin: Interface | undefined;
let lines: AsyncIterator<string> | undefined;

process.exitCode = await runTerminalDemo(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
  nowMs: () => Date.now(),
  async readLine(prompt) {
    stdin ??= createInterface({ input: process.stdin, terminal: false });
    lines ??= stdin[Symbol.asyncIterator]();
    process.stdout.write(prompt);
    const next = await lines.next();
    return next.done ? undefined : next.value;
  },
});
stdin?.close();
