import { setTimeout as delay } from "node:timers/promises";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { grpcHealthV1, MfaService, MfaTokenService, TokenService } from "@token-service/client";
import type { Store } from "../store/store.js";

const { Health, HealthCheckResponse_ServingStatus: ServingStatus } = grpcHealthV1;
type ServingStatus = grpcHealthV1.HealthCheckResponse_ServingStatus;

/** "" is the server as a whole (grpc health-checking protocol). */
export const HEALTH_SERVICE_NAMES: readonly string[] = [
  "",
  TokenService.typeName,
  MfaService.typeName,
  MfaTokenService.typeName,
];

export interface HealthOptions {
  /** How often Watch re-checks the store (default 1 000 ms). */
  watchIntervalMs?: number;
  /** Aborted at shutdown: everything reports NOT_SERVING and Watch streams end. */
  shutdown?: AbortSignal;
}

/**
 * grpc.health.v1.Health: every service is as healthy as the store (the same
 * rule as GET /readyz). Unknown names: NotFound from Check, SERVICE_UNKNOWN
 * from Watch (which then stays open), as the protocol says. Errors are
 * ConnectErrors only, so the OAuth error interceptor passes them through.
 */
export function createHealthServiceImpl(
  store: Store,
  options: HealthOptions = {},
): ServiceImpl<typeof Health> {
  const intervalMs = options.watchIntervalMs ?? 1000;
  const shutdown = options.shutdown;
  const known = (service: string) => HEALTH_SERVICE_NAMES.includes(service);

  async function status(): Promise<ServingStatus> {
    if (shutdown?.aborted) return ServingStatus.NOT_SERVING;
    try {
      await store.ping();
      return ServingStatus.SERVING;
    } catch {
      return ServingStatus.NOT_SERVING;
    }
  }

  return {
    async check(request) {
      if (!known(request.service)) {
        throw new ConnectError(`unknown service ${request.service}`, Code.NotFound);
      }
      return { status: await status() };
    },

    async list() {
      const current = await status();
      const statuses: Record<string, { status: ServingStatus }> = {};
      for (const name of HEALTH_SERVICE_NAMES) statuses[name] = { status: current };
      return { statuses };
    },

    async *watch(request, context) {
      const signal = shutdown ? AbortSignal.any([context.signal, shutdown]) : context.signal;
      let last: ServingStatus | undefined;
      while (!context.signal.aborted) {
        const current = known(request.service) ? await status() : ServingStatus.SERVICE_UNKNOWN;
        if (current !== last) {
          yield { status: current };
          last = current;
        }
        if (shutdown?.aborted) return;
        // Resolves early (without throwing) when the client goes away or at shutdown.
        await delay(intervalMs, undefined, { signal }).catch(() => undefined);
      }
    },
  };
}
