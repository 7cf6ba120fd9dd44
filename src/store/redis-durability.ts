/**
 * What a master's `INFO` must show for the service to trust it with writes
 * (SPEC §7 "Redis durability, checked"): `maxmemory_policy:noeviction` (an
 * evicting policy drops authenticators, single-use markers and failure
 * buckets under memory pressure) and `aof_enabled:1` (without the AOF a
 * restart loses every write since the last snapshot). Read with INFO, which
 * hosted services allow, never CONFIG GET.
 */

/** INFO's `field:value` lines as a map (section headers and blank lines skipped). */
export function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

/**
 * One line naming the setting and the fix, or undefined when the master
 * complies. `node` names the master (`host:port`).
 */
export function durabilityProblem(node: string, info: Map<string, string>): string | undefined {
  const policy = info.get("maxmemory_policy");
  const aof = info.get("aof_enabled");
  if (policy === undefined || aof === undefined) {
    return `Redis ${node} does not report maxmemory_policy and aof_enabled in INFO (a hosted Redis may hide them): set REDIS_DURABILITY_CHECK=off only once you know it runs with maxmemory-policy noeviction and appendonly yes`;
  }
  if (policy !== "noeviction") {
    return `Redis ${node} runs with maxmemory-policy ${policy}, which evicts authenticators and single-use markers under memory pressure: set maxmemory-policy noeviction (redis.conf, or CONFIG SET maxmemory-policy noeviction)`;
  }
  if (aof !== "1") {
    return `Redis ${node} runs with appendonly no, so a restart loses every write since the last snapshot: set appendonly yes (redis.conf, or CONFIG SET appendonly yes; appendfsync everysec or always)`;
  }
  return undefined;
}

/** `connected_slaves` of INFO's replication section (0 when absent). */
export function connectedReplicas(info: Map<string, string>): number {
  const value = Number(info.get("connected_slaves") ?? "0");
  return Number.isSafeInteger(value) && value > 0 ? value : 0;
}
