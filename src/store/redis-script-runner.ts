import { type ChainableCommander, Cluster, type Redis } from "ioredis";
import { onceKey } from "./redis-keys.js";
import type { ScriptDefinition } from "./redis-scripts.js";
import { confirmedWrite } from "./redis-write-guard.js";
import { PROOF_SCOPE, type ProofMark } from "./store.js";

type ScriptCall = (...args: Array<string | number>) => Promise<unknown>;

/**
 * Registers a store's Lua scripts with ioredis `defineCommand` (the full
 * EVAL the first time on each connection, EVALSHA afterwards, EVAL again on
 * NOSCRIPT: no script is loaded per request) and returns the function that
 * runs one by name. A script not marked `readOnly` is a write: it goes
 * through confirmedWrite (refused while the store cannot be trusted, followed
 * by WAIT on its key's master while that master has replicas).
 */
export function defineScripts<N extends string>(
  client: Redis | Cluster,
  scripts: Record<N, ScriptDefinition>,
): (name: N, args: Array<string | number>) => Promise<unknown> {
  for (const [name, definition] of Object.entries<ScriptDefinition>(scripts)) {
    client.defineCommand(name, definition);
  }
  const commands = client as unknown as Record<N, ScriptCall>;
  // Called as a method: the generated function reads `this`.
  const direct = (name: N, args: Array<string | number>) => commands[name].call(client, ...args);
  return (name, args) => {
    if (scripts[name].readOnly === true) return direct(name, args);
    return confirmedWrite(
      client,
      String(args[0]),
      () => direct(name, args),
      (pipeline) =>
        (pipeline as unknown as Record<N, (...a: unknown[]) => ChainableCommander>)[name].call(
          pipeline,
          ...args,
        ),
    );
  };
}

/**
 * Where a DPoP proof mark (RFC 9449 §11.1: one proof, one use, whoever's
 * request it comes with) is recorded by a script that changes one user's
 * keys. The mark's key is global, so it is not in the user's slot.
 * Standalone Redis has no slots: the mark is one of the script's KEYS and
 * costs no extra round trip. On a cluster the key may live on another node,
 * so it is recorded first with one SET NX (one more round trip, DPoP
 * requests only) and the script gets `placeholder`, a key of the user's slot,
 * with TTL 0 ("no proof"). "replayed" when the proof was used before.
 */
export function createProofMarks(client: Redis | Cluster) {
  const inCluster = client instanceof Cluster;
  return async (
    placeholder: string,
    proof: ProofMark | undefined,
  ): Promise<{ key: string; ttl: number } | "replayed"> => {
    if (proof === undefined) return { key: placeholder, ttl: 0 };
    const key = onceKey(PROOF_SCOPE, proof.id);
    const ttl = Math.max(1, Math.ceil(proof.ttlMs));
    if (!inCluster) return { key, ttl };
    const reply = await confirmedWrite(
      client,
      key,
      () => client.set(key, "1", "PX", ttl, "NX"),
      (pipeline) => pipeline.set(key, "1", "PX", ttl, "NX"),
    );
    return reply === "OK" ? { key: placeholder, ttl: 0 } : "replayed";
  };
}
