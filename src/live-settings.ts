import type { ClientRegistry } from "./oauth/client-registry.js";
import type { SigningKey } from "./tokens/signing-keys.js";

/** What a reload may change: the clients and the signing keys, always together. */
export interface Reloadable {
  clients: ClientRegistry;
  signingKeys: readonly SigningKey[];
}

/**
 * The settings `SIGHUP` reloads. Everything that uses them reads them through
 * these getters at the start of its work (and derives its lookups once per
 * new value, util/derived.ts), so a reload is one assignment: requests that
 * already read the old set finish with it, the next ones see the new one.
 */
export interface LiveSettings {
  clients(): ClientRegistry;
  signingKeys(): readonly SigningKey[];
  replace(next: Reloadable): void;
}

export function createLiveSettings(initial: Reloadable): LiveSettings {
  let current: Reloadable = { ...initial };
  return {
    clients: () => current.clients,
    signingKeys: () => current.signingKeys,
    replace(next) {
      current = { clients: next.clients, signingKeys: next.signingKeys };
    },
  };
}
