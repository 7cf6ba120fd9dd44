/**
 * Every write a Redis store sends goes through here (SPEC §7 "Fail closed",
 * "Replica acknowledgement"): the write is refused while the store cannot be
 * trusted (durability check failed, dataset marker missing: the guard's
 * `refusal`), and, while the key's master has replicas, it is followed by
 * `WAIT <replicas connected> <timeout>` in the same round trip — on a Cluster
 * in one pipeline, which ioredis sends to the node that owns the slot of its
 * keys (WAIT has none) — and fails unless at least
 * the minimum acknowledged it. WAIT covers every earlier write of the
 * connection, so the answer holds on whichever replica is promoted.
 *
 * The guard is attached to the client, not to a store: every store built on
 * the client (the main store, the session store, any later one) and every
 * script defined with defineScripts is covered without knowing about it.
 */
import { type ChainableCommander, Cluster, type Redis } from "ioredis";
import { StoreUnavailableError } from "./store.js";

export interface WriteGuard {
  /** Why writes are refused right now (logged once by its owner), or undefined. */
  refusal(): string | undefined;
  /** The WAIT to send after a write of `key`: replicas to wait for, the minimum, the timeout. */
  acknowledgementFor(key: string): Acknowledgement | undefined;
}

export interface Acknowledgement {
  /** The replicas the key's master last reported connected (WAIT's first argument). */
  replicas: number;
  /** REDIS_MIN_REPLICAS_ACK: fewer acknowledgements fail the write. */
  minimum: number;
  /** REDIS_ACK_TIMEOUT_MS. */
  timeoutMs: number;
}

type Client = Redis | Cluster;
interface Guarded {
  guard: WriteGuard;
  /** NOSCRIPT replies seen on the client (each means ioredis resends that script as EVAL). */
  noscripts: number;
}
const guards = new WeakMap<Client, Guarded>();

/** Makes every write sent through `confirmedWrite` on this client obey `guard`. */
export function attachWriteGuard(client: Client, guard: WriteGuard): void {
  const guarded: Guarded = { guard, noscripts: 0 };
  guards.set(client, guarded);
  // Every command passes here, pipelined ones included (ioredis writes a
  // pipeline through its client's sendCommand). A script the server forgot
  // (SCRIPT FLUSH on a live connection) answers NOSCRIPT and ioredis resends
  // it as EVAL, after the WAIT that followed it: confirmedWrite sees the
  // count move and waits once more.
  const send = client.sendCommand.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { sendCommand: (...args: unknown[]) => unknown }).sendCommand = (
    command: unknown,
    ...rest: unknown[]
  ) => {
    const script = command as { name?: string; reject?: (error: Error) => void };
    const reject = script.reject;
    if (script.name === "evalsha" && reject !== undefined) {
      script.reject = (error: Error) => {
        if (/^NOSCRIPT/.test(error?.message ?? "")) guarded.noscripts++;
        reject.call(script, error);
      };
    }
    return send(command, ...rest);
  };
}

/**
 * Sends one write (a script or a command) whose first key is `key`: `direct`
 * sends it alone (no replica to wait for: the client's auto-pipelining
 * applies), `queue` adds it to a pipeline that WAIT follows. Resolves with
 * the write's reply, or rejects with StoreUnavailableError when writes are
 * refused or too few replicas acknowledged (SPEC §5 row 12).
 *
 * A script the server forgot while the connection stayed up (SCRIPT FLUSH)
 * answers NOSCRIPT and ioredis resends it as EVAL after the WAIT, which then
 * covered nothing: when a NOSCRIPT was seen meanwhile (this write's or
 * another's), one more WAIT follows the write (one more round trip, rarely).
 */
export async function confirmedWrite<T>(
  client: Client,
  key: string,
  direct: () => Promise<T>,
  queue: (pipeline: ChainableCommander) => ChainableCommander,
): Promise<T> {
  const guarded = guards.get(client);
  if (guarded === undefined) return direct();
  const { guard } = guarded;
  const refused = guard.refusal();
  if (refused !== undefined) throw new StoreUnavailableError(`writes refused: ${refused}`);
  const ack = guard.acknowledgementFor(key);
  if (ack === undefined || ack.replicas === 0) {
    if (ack !== undefined && ack.minimum > 0) {
      // The master reported no replica: nothing could acknowledge (SPEC §7:
      // writes answer row 12 until one re-attaches).
      throw new StoreUnavailableError(
        `no replica connected; REDIS_MIN_REPLICAS_ACK is ${ack.minimum}`,
      );
    }
    return direct();
  }
  const noscriptsBefore = guarded.noscripts;
  let reply: unknown;
  let acknowledged: unknown;
  if (client instanceof Cluster) {
    // A keyless WAIT on its own would go to any node: the pipeline takes it
    // to the node of the write's slot.
    const replies = await queue(client.pipeline()).wait(ack.replicas, ack.timeoutMs).exec();
    if (replies === null || replies.length !== 2) throw new Error("unexpected pipeline reply");
    const [[writeError, written], [waitError, waited]] = replies as [
      [Error | null, unknown],
      [Error | null, unknown],
    ];
    if (writeError !== null) throw writeError;
    if (waitError !== null) throw waitError;
    [reply, acknowledged] = [written, waited];
  } else {
    // One connection: issued in the same tick, both leave in the client's
    // auto-pipelined batch, WAIT after the write (one round trip, no
    // pipeline object per request). Other requests' commands may sit between
    // them: WAIT covers every earlier write of the connection.
    const [written, waited] = await Promise.allSettled([
      direct(),
      client.wait(ack.replicas, ack.timeoutMs),
    ]);
    if (written.status === "rejected") throw written.reason;
    if (waited.status === "rejected") throw waited.reason;
    [reply, acknowledged] = [written.value, waited.value];
  }
  if (guarded.noscripts !== noscriptsBefore) {
    acknowledged = await client.wait(ack.replicas, ack.timeoutMs);
  }
  if (typeof acknowledged !== "number" || acknowledged < ack.minimum) {
    throw new StoreUnavailableError(
      `write acknowledged by ${String(acknowledged)} of ${ack.replicas} replicas; REDIS_MIN_REPLICAS_ACK is ${ack.minimum}`,
    );
  }
  return reply as T;
}
