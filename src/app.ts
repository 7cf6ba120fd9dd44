import {
  type ConnectNodeAdapterOptions,
  compressionBrotli,
  compressionGzip,
} from "@connectrpc/connect-node";
import {
  file_token_v1_errors,
  file_token_v1_mfa_service,
  file_token_v1_mfa_token_service,
  file_token_v1_token_service,
  grpcHealthV1,
  grpcReflectionV1,
  MfaService,
  MfaTokenService,
  TokenService,
} from "@token-service/client";
import { type Clock, systemClock } from "./clock.js";
import type { Config } from "./config.js";
import { createHealthServiceImpl } from "./observability/health.js";
import { createLogger, type Logger } from "./observability/logger.js";
import { createCachedMetrics } from "./observability/metrics-cache.js";
import { createReflectionServiceImpl } from "./observability/reflection.js";
import { createStoreHealth, type StoreHealth } from "./observability/store-health.js";
import { createConnectAdapter } from "./rpc/connect-adapter.js";
import { createMfaServiceImpl } from "./rpc/mfa-service-impl.js";
import { createMfaTokenServiceImpl } from "./rpc/mfa-token-service-impl.js";
import { callWithOAuthErrors, createOAuthErrorInterceptor } from "./rpc/oauth-error-interceptor.js";
import { createTokenServiceImpl } from "./rpc/token-service-impl.js";
import { createUnaryFastPath, type UnaryFastPath } from "./rpc/unary-fast-path.js";
import { createManagementServer } from "./server/management-server.js";
import { createOnePortServer, type OnePortServer } from "./server/one-port-server.js";
import { createOpsRoutes } from "./server/ops-routes.js";
import { MAX_BODY_BYTES } from "./server/read-body.js";
import { createRequestHandler } from "./server/request-handler.js";
import { createRestRoutes } from "./server/rest-routes.js";
import { createServiceContext, type ServiceContext } from "./service-context.js";
import { createStore } from "./store/create-store.js";
import type { Store } from "./store/store.js";

export interface App {
  ctx: ServiceContext;
  server: OnePortServer;
  /** The management listener: /metrics, /healthz, /readyz. */
  management: OnePortServer;
  /** Its port once listening (MANAGEMENT_PORT=0 picks a free one). */
  readonly managementPort: number | undefined;
  /** The store's reachability, refreshed in the background; readiness reads it. */
  storeHealth: StoreHealth;
  /** The RPCs served without connect-es (empty with `rpcFastPath: false`). */
  rpcFastPaths: UnaryFastPath[];
  /**
   * Checks the store once, then listens on the configured (or given) public
   * port and on the management port; resolves with the actual public port.
   */
  listen(port?: number): Promise<{ port: number }>;
  /** Drains both listeners, then closes the store. */
  close(graceMs?: number): Promise<void>;
}

export interface AppOptions {
  store?: Store;
  clock?: Clock;
  logger?: Logger;
  /**
   * Serve unary VerifyMfaOtp's plain Connect and gRPC calls without
   * connect-es (rpc/unary-fast-path.ts). Default true; the differential
   * test turns it off to compare both paths.
   */
  rpcFastPath?: boolean;
}

/** Wires config → store → service context → RPC + REST → one-port server. */
export function createApp(config: Config, options: AppOptions = {}): App {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config.logLevel);
  const store = options.store ?? createStore(config.store, clock, logger);
  const ctx = createServiceContext(config, store, clock, logger);
  // Aborted by close(): health reports NOT_SERVING and ends Watch streams, which
  // would otherwise hold the drain open until the grace period runs out.
  const shutdown = new AbortController();
  const storeHealth = createStoreHealth(store, { logger });

  const tokenService = createTokenServiceImpl(ctx);
  const rpcOptions: ConnectNodeAdapterOptions = {
    routes(router) {
      router.service(TokenService, tokenService);
      router.service(MfaTokenService, createMfaTokenServiceImpl(ctx));
      router.service(MfaService, createMfaServiceImpl(ctx));
      // gRPC health and server reflection (buf curl --list-services, calls without --schema).
      // They throw ConnectErrors only, which the OAuth error interceptor passes through.
      router.service(
        grpcHealthV1.Health,
        createHealthServiceImpl(storeHealth, { shutdown: shutdown.signal }),
      );
      router.service(
        grpcReflectionV1.ServerReflection,
        createReflectionServiceImpl([
          file_token_v1_token_service,
          file_token_v1_mfa_service,
          file_token_v1_mfa_token_service,
          file_token_v1_errors,
          grpcHealthV1.file_grpc_health_v1_health,
          grpcReflectionV1.file_grpc_reflection_v1_reflection,
        ]),
      );
    },
    interceptors: [createOAuthErrorInterceptor(logger, ctx.metrics)],
    readMaxBytes: MAX_BODY_BYTES,
    // connect-node's connectNodeAdapter default, set here once: the adapter
    // and the fast path must negotiate from the same list.
    acceptCompression: [compressionGzip, compressionBrotli],
  };
  const fastPaths: UnaryFastPath[] =
    options.rpcFastPath === false
      ? []
      : [
          createUnaryFastPath(rpcOptions, TokenService.method.verifyMfaOtp, (request, context) =>
            callWithOAuthErrors(logger, ctx.metrics, "VerifyMfaOtp", () =>
              tokenService.verifyMfaOtp(request, context),
            ),
          ),
        ];
  const connect = createConnectAdapter(rpcOptions, fastPaths);
  const limits = {
    maxConnections: config.http.maxConnections,
    idleTimeoutMs: config.http.idleTimeoutSeconds * 1000,
    headersTimeoutMs: config.http.headersTimeoutSeconds * 1000,
    sniffTimeoutMs: config.http.headersTimeoutSeconds * 1000,
    requestTimeoutMs: config.http.requestTimeoutSeconds * 1000,
    http2MaxConcurrentStreams: config.http.http2MaxConcurrentStreams,
    http2MaxStreamsAwaitingBody: config.http.http2MaxStreamsAwaitingBody,
    http2MaxStreamsAwaitingBodyTotal: config.http.http2MaxStreamsAwaitingBodyTotal,
  };
  const metricsText = createCachedMetrics(ctx.metrics.registry);
  const publicOps = createOpsRoutes({
    readiness: storeHealth,
    metrics: config.publicMetrics ? metricsText : undefined,
  });
  const server = createOnePortServer(
    createRequestHandler(createRestRoutes(ctx, publicOps), connect),
    limits,
  );
  const management = createManagementServer(
    createOpsRoutes({ readiness: storeHealth, metrics: metricsText }),
    limits,
  );
  let managementPort: number | undefined;

  return {
    ctx,
    server,
    management,
    get managementPort() {
      return managementPort;
    },
    storeHealth,
    rpcFastPaths: fastPaths,
    async listen(port = config.port) {
      await storeHealth.start();
      const listening = await server.listen(port, config.host);
      try {
        const { host, port: wanted } = config.management;
        managementPort = (await management.listen(wanted, host)).port;
      } catch (error) {
        await server.close(0);
        throw error;
      }
      return listening;
    },
    async close(graceMs) {
      shutdown.abort();
      storeHealth.stop();
      await Promise.all([server.close(graceMs), management.close(graceMs)]);
      await store.close();
    },
  };
}
