import type { ClientRegistry } from "./client-registry.js";

/**
 * The secret of the demo client shipped in config/clients.example.json (the
 * embedded default). It is public, so a registry holding it is the demo
 * client wherever its file was copied to or however the client was renamed;
 * production refuses it (test/unit/config.test.ts keeps this in step with the
 * example file).
 */
export const DEMO_CLIENT_SECRET = "demo-secret-change-me";

export function hasDemoClient(clients: ClientRegistry): boolean {
  for (const client of clients.values()) {
    if (client.clientSecret === DEMO_CLIENT_SECRET) return true;
  }
  return false;
}
