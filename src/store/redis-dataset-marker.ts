/**
 * The dataset marker (SPEC §7 "Fail closed": a lost authenticator must never
 * silently turn into an open enrollment). A key the operator writes with
 * `token-service redis accept-dataset` on every master — on a cluster one per
 * slot, so the marker moves with its slot when slots are resharded and a
 * master that restarted empty, lost its keys or was replaced by an empty
 * replica is found however its slots were assigned. A master without its
 * marker holds a dataset nobody accepted: writes are refused (row 12) until
 * the operator has looked and accepted it (docs/operations.md "Restoring
 * Redis"). `redis hold-dataset` deletes the markers to stop writes on purpose.
 *
 * Never written by the service itself: an empty Redis at start-up is a new
 * installation or a total loss, and only the operator can tell them apart.
 */
import { Cluster, type Redis } from "ioredis";
import { SLOT_COUNT, slotTags } from "./redis-slots.js";

const STANDALONE_KEY = "ts:dataset";
const slotKey = (tag: string) => `ts:dataset:{${tag}}`;

/** The marker key of every slot (a cluster) or the one key (standalone). */
function allMarkerKeys(client: Redis | Cluster): string[] {
  if (!(client instanceof Cluster)) return [STANDALONE_KEY];
  return slotTags().map(slotKey);
}

/**
 * The keys to look at, by master (`host:port`): standalone, the one key; a
 * cluster, the first slot of every range a master serves (a master that lost
 * its data lost them all; one per range keeps the check a few commands).
 */
export function markerKeysByMaster(client: Redis | Cluster, standaloneNode: string) {
  const byMaster = new Map<string, string[]>();
  if (!(client instanceof Cluster)) {
    byMaster.set(standaloneNode, [STANDALONE_KEY]);
    return byMaster;
  }
  const tags = slotTags();
  let previous: string | undefined;
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    const master = client.slots[slot]?.[0];
    if (master !== undefined && master !== previous) {
      const keys = byMaster.get(master) ?? [];
      keys.push(slotKey(tags[slot] ?? ""));
      byMaster.set(master, keys);
    }
    previous = master;
  }
  return byMaster;
}

/** Writes the marker (every slot's, on a cluster); resolves with how many keys. */
export async function acceptDataset(client: Redis | Cluster, nowMs: number): Promise<number> {
  const keys = allMarkerKeys(client);
  const value = JSON.stringify({ accepted_at: new Date(nowMs).toISOString() });
  await Promise.all(keys.map((key) => client.set(key, value)));
  return keys.length;
}

/** Deletes every marker: writes are refused until `acceptDataset`. */
export async function holdDataset(client: Redis | Cluster): Promise<void> {
  await Promise.all(allMarkerKeys(client).map((key) => client.del(key)));
}
