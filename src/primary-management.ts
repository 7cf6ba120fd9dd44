import type { Config } from "./config.js";
import {
  answerRelayedScrapes,
  createClusterMetrics,
  createWorkersReadiness,
} from "./observability/cluster-metrics.js";
import type { Logger } from "./observability/logger.js";
import { createCachedMetrics } from "./observability/metrics-cache.js";
import { createManagementServer } from "./server/management-server.js";
import { createOpsRoutes } from "./server/ops-routes.js";
import { describeStartupFailure } from "./startup-failure.js";

export interface PrimaryManagement {
  /** SIGTERM: readiness turns 503 at once, then the listener closes. */
  stop(): Promise<void>;
}

/**
 * With WORKERS > 1 the management listener (MANAGEMENT_PORT) lives in the
 * primary, so one scrape of /metrics answers the sum over every worker
 * (SPEC §6) instead of whichever worker the connection was dealt to. /readyz
 * is ready while every worker is; /healthz while the primary runs. The
 * workers serve no management listener of their own (app.ts,
 * `clusterWorker`). Logs `management_listening` with the port.
 */
export function startPrimaryManagement(
  config: Config,
  logger: Logger,
  /** An explicit MANAGEMENT_PORT that cannot be listened on: the start-up failure line. */
  onFatal: (line: string) => void,
): PrimaryManagement {
  const readiness = createWorkersReadiness();
  const metrics = createCachedMetrics(createClusterMetrics());
  answerRelayedScrapes(metrics);
  const server = createManagementServer(createOpsRoutes({ readiness, metrics }), {
    maxConnections: config.http.maxConnections,
    idleTimeoutMs: config.http.idleTimeoutSeconds * 1000,
    headersTimeoutMs: config.http.headersTimeoutSeconds * 1000,
    sniffTimeoutMs: config.http.headersTimeoutSeconds * 1000,
    requestTimeoutMs: config.http.requestTimeoutSeconds * 1000,
  });
  const { host, port, explicit } = config.management;
  const listening = server.listen(port, host).then(
    ({ port: actual }) => {
      logger.info(
        {
          event: "management_listening",
          managementPort: actual,
          managementHost: host,
          pid: process.pid,
        },
        "management listener (sum over workers)",
      );
    },
    (error: NodeJS.ErrnoException) => {
      // As a single process does (app.ts): an explicit port that fails is a
      // start-up failure; a taken default port costs /metrics, not the service.
      if (explicit || error.code !== "EADDRINUSE") {
        onFatal(`token-service: ${describeStartupFailure(error, { host, port })}`);
        return;
      }
      logger.error(
        { event: "management_listener_unavailable", host, port },
        "management port in use: /metrics is not served; set MANAGEMENT_PORT",
      );
    },
  );
  return {
    async stop() {
      readiness.stop();
      await listening;
      await server.close(0);
    },
  };
}
