/**
 * The attacker of held-connections.ts in a process of its own: its event
 * loop is not the probes', so a busy attacker does not inflate the latencies
 * the probes measure (all of them still share the machine's cores with the
 * service). Stopped with the test process if the test fails to stop it.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  type Holder,
  type HoldOptions,
  type HoldResult,
  holdConnections,
} from "./held-connections.js";

type FromChild = { held: number } | { result: HoldResult };

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** holdConnections(options), run in a child process. */
export function holdConnectionsInProcess(options: HoldOptions): Holder {
  const child = fork(fileURLToPath(import.meta.url), [JSON.stringify(options)], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  running.add(child);
  child.once("exit", () => running.delete(child));
  let held = 0;
  let deliver: ((value: HoldResult) => void) | undefined;
  const finished = new Promise<HoldResult>((resolve, reject) => {
    deliver = resolve;
    child.once("exit", (code) => reject(new Error(`attacker exited with ${code}`)));
  });
  child.on("message", (message: FromChild) => {
    if ("held" in message) held = message.held;
    else deliver?.(message.result);
  });
  return {
    held: () => held,
    async waitForHeld(n, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (held < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      return held;
    },
    async stop() {
      child.send("stop");
      const outcome = await finished;
      child.kill();
      return outcome;
    },
  };
}

// In the child: hold, report the count every 50 ms, and the result on "stop".
if (
  process.send !== undefined &&
  process.argv[2] !== undefined &&
  import.meta.url.endsWith(process.argv[1]?.split("/").pop() ?? "")
) {
  const send = process.send.bind(process);
  const holder = holdConnections(JSON.parse(process.argv[2]) as HoldOptions);
  const timer = setInterval(() => send({ held: holder.held() }), 50);
  // `on`, not `once`: the listener keeps the IPC channel (and this process)
  // alive until the parent kills it, after it has read the result.
  process.on("message", async () => {
    clearInterval(timer);
    send({ result: await holder.stop() });
  });
}
