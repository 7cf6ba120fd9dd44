import type { Grant } from "./grant.js";

/**
 * The token endpoint's grants, one entry per `grant_type`. REST dispatch,
 * the RPC implementations and the discovery document's
 * `grant_types_supported` all read this table; adding a grant is one module
 * and one entry where the app builds the table.
 */
export interface GrantTable {
  /** The grant for a `grant_type`, or undefined (row 10). */
  get(uri: string): Grant | undefined;
  /** Every supported `grant_type`, in table order (discovery). */
  readonly uris: readonly string[];
}

export function createGrantTable(grants: readonly Grant[]): GrantTable {
  const byUri = new Map<string, Grant>();
  for (const grant of grants) {
    if (byUri.has(grant.uri)) throw new Error(`grant ${grant.uri} registered twice`);
    byUri.set(grant.uri, grant as Grant);
  }
  return { get: (uri) => byUri.get(uri), uris: [...byUri.keys()] };
}
