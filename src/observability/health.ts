import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { grpcHealthV1, MfaService, MfaTokenService, TokenService } from "@token-service/client";
import type { Readiness } from "./store-health.js";

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
  /** Aborted at shutdown: everything reports NOT_SERVING and Watch streams end. */
  shutdown?: AbortSignal;
  /** The names this listener knows ("" first); default HEALTH_SERVICE_NAMES. */
  services?: readonly string[];
}

/**
 * grpc.health.v1.Health: every service is as healthy as the store (the same
 * rule as GET /readyz), read from the background store health state
 * (store-health.ts), so a probe costs no store round trip. Unknown names:
 * NotFound from Check, SERVICE_UNKNOWN from Watch (which then stays open), as
 * the protocol says. Errors are ConnectErrors only, so the OAuth error
 * interceptor passes them through.
 */
export function createHealthServiceImpl(
  readiness: Readiness,
  options: HealthOptions = {},
): ServiceImpl<typeof Health> {
  const shutdown = options.shutdown;
  const names = options.services ?? HEALTH_SERVICE_NAMES;
  const known = (service: string) => names.includes(service);

  function status(): ServingStatus {
    if (shutdown?.aborted || !readiness.ready) return ServingStatus.NOT_SERVING;
    return ServingStatus.SERVING;
  }

  /** Resolves once the status differs from `last`, or when `signal` aborts. */
  function nextChange(signal: AbortSignal, last: ServingStatus): Promise<void> {
    return new Promise((resolve) => {
      // A change while the last answer was being sent is not missed.
      if (signal.aborted || status() !== last) return resolve();
      const done = () => {
        unsubscribe();
        signal.removeEventListener("abort", done);
        resolve();
      };
      const unsubscribe = readiness.onChange(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  return {
    async check(request) {
      if (!known(request.service)) {
        throw new ConnectError(`unknown service ${request.service}`, Code.NotFound);
      }
      return { status: status() };
    },

    async list() {
      const current = status();
      const statuses: Record<string, { status: ServingStatus }> = {};
      for (const name of names) statuses[name] = { status: current };
      return { statuses };
    },

    async *watch(request, context) {
      const signal = shutdown ? AbortSignal.any([context.signal, shutdown]) : context.signal;
      let last = ServingStatus.UNKNOWN;
      while (!context.signal.aborted) {
        const current = known(request.service) ? status() : ServingStatus.SERVICE_UNKNOWN;
        if (current !== last) {
          yield { status: current };
          last = current;
        }
        if (shutdown?.aborted) return;
        // Resolves on a change, when the client goes away, or at shutdown.
        if (!known(request.service)) await nextChange(signal, status());
        else await nextChange(signal, last);
      }
    },
  };
}
