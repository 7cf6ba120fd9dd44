/**
 * The `DEMO` variable: whether the service serves the demo page at `/demo`
 * (src/demo/demo-routes.ts). The page hands the demo client's secret to a
 * browser and mints mfa_tokens for throw-away demo users without a first
 * factor, which is harmless only on the embedded development default, so:
 *
 * - unset: on exactly when the demo client is registered and NODE_ENV is not
 *   production (the embedded default, or a copy of its clients file);
 * - `DEMO=false` (or 0): off;
 * - `DEMO=true` (or 1): on, but refused with NODE_ENV=production, and
 *   refused without the demo client (the page has no other client to use).
 */
export interface DemoSetting {
  enabled: boolean;
  /** One configuration problem, when the setting cannot be honoured. */
  problem?: string;
}

export function resolveDemoSetting(
  raw: string | undefined,
  context: { production: boolean; demoClient: boolean },
): DemoSetting {
  if (raw === undefined) return { enabled: context.demoClient && !context.production };
  const normalized = raw.toLowerCase();
  if (normalized === "false" || normalized === "0") return { enabled: false };
  if (normalized !== "true" && normalized !== "1") {
    return { enabled: false, problem: `DEMO must be true or false (got "${raw}")` };
  }
  if (context.production) {
    return {
      enabled: false,
      problem:
        "DEMO=true is refused with NODE_ENV=production: the demo page gives any browser mfa_tokens and the demo client's secret, so it runs only on the embedded development default (unset DEMO)",
    };
  }
  if (!context.demoClient) {
    return {
      enabled: false,
      problem:
        "DEMO=true needs the demo client (config/clients.example.json's demo-app, recognised by its secret) in CLIENTS_FILE: the page logs in as that client",
    };
  }
  return { enabled: true };
}
