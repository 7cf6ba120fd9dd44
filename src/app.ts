import type { DescFile } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import {
  file_token_v1_errors,
  file_token_v1_mfa_service,
  file_token_v1_mfa_token_service,
  file_token_v1_token_service,
  grpcHealthV1,
  grpcReflectionV1,
  grpcReflectionV1alpha,
  MfaService,
  MfaTokenService,
  TokenService,
} from "@token-service/client";
import type { Config } from "./config.js";
import { withDemoRoutes } from "./demo/demo-routes.js";
import { createLiveSettings, type LiveSettings } from "./live-settings.js";
import { createAccessLog } from "./observability/access-log.js";
import { noteClient } from "./observability/access-record.js";
import {
  reportReadinessToPrimary,
  shareMetricsWithPrimary,
} from "./observability/cluster-metrics.js";
import { createHealthServiceImpl } from "./observability/health.js";
import { instrumentStore } from "./observability/instrumented-store.js";
import { createLogger, type Logger } from "./observability/logger.js";
import { createMetrics, type Metrics } from "./observability/metrics.js";
import { createCachedMetrics } from "./observability/metrics-cache.js";
import { createReflectionServiceImpls } from "./observability/reflection.js";
import { currentRequestStartNs } from "./observability/request-context.js";
import { observeRequests } from "./observability/request-observer.js";
import { createStoreHealth, type StoreHealth } from "./observability/store-health.js";
import { countVerifyOutcomes } from "./observability/verify-outcomes.js";
import { boundedGzip } from "./rpc/bounded-gzip.js";
import { type CorsForClient, callValuesOf } from "./rpc/call-headers.js";
import { callRecordOf } from "./rpc/call-record.js";
import { createConnectAdapter } from "./rpc/connect-adapter.js";
import { createMfaServiceImpl } from "./rpc/mfa-service-impl.js";
import { createMfaTokenServiceImpl } from "./rpc/mfa-token-service-impl.js";
import { createOAuthErrorInterceptor } from "./rpc/oauth-error-interceptor.js";
import { createServerStreamLimits, type ServerStreamLimits } from "./rpc/server-stream-limits.js";
import { createTokenServiceImpl } from "./rpc/token-service-impl.js";
import { createTraceContextInterceptor } from "./rpc/trace-context-interceptor.js";
import { createUnaryFastPath, type UnaryFastPath } from "./rpc/unary-fast-path.js";
import { createClientAddressOf } from "./server/client-address.js";
import { createCors } from "./server/cors.js";
import { createInternalRequestHandler } from "./server/internal-server.js";
import { createManagementServer } from "./server/management-server.js";
import { createOnePortServer, type OnePortServer } from "./server/one-port-server.js";
import { createOpsRoutes } from "./server/ops-routes.js";
import { MAX_BODY_BYTES } from "./server/read-body.js";
import { createRequestHandler, sendNotFound } from "./server/request-handler.js";
import { createRestRoutes } from "./server/rest-routes.js";
import { createServices, type Services } from "./service/services.js";
import { createServiceDeps } from "./service-deps.js";
import { createStores, type Stores, sessionsBeside } from "./store/create-stores.js";
import type { RedisSafety } from "./store/redis-safety.js";
import type { SessionStore } from "./store/session-store.js";
import type { Store } from "./store/store.js";
import { withStoreDeadline } from "./store/store-deadline.js";
import { type Clock, systemClock } from "./util/clock.js";

/** What tests and the bench reach into: the built pieces, never a place to read rules from. */
export interface AppParts {
  config: Config;
  /** The clients and signing keys in use (replaced by a reload). */
  live: LiveSettings;
  store: Store;
  /** Refresh-token families, on the same backend as `store`. */
  sessions: SessionStore;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  services: Services;
}

export interface App {
  ctx: AppParts;
  server: OnePortServer;
  /** The management listener: /metrics, /healthz, /readyz. */
  management: OnePortServer;
  /** Its port once listening (MANAGEMENT_PORT=0 picks a free one). */
  readonly managementPort: number | undefined;
  /**
   * The internal listener (INTERNAL_PORT): token.v1.MfaTokenService with
   * health and reflection, absent from the public port. Undefined when
   * INTERNAL_PORT is not set (MfaTokenService is then on the public port).
   */
  internal: OnePortServer | undefined;
  /** Its port once listening (INTERNAL_PORT=0 picks a free one). */
  readonly internalPort: number | undefined;
  /** The store's reachability, refreshed in the background; readiness reads it. */
  storeHealth: StoreHealth;
  /** Redis built from the configuration: its masters' checks (durability, marker, replicas). */
  redisSafety: RedisSafety | undefined;
  /** The RPCs served without connect-es (empty with `rpcFastPath: false`). */
  rpcFastPaths: UnaryFastPath[];
  /**
   * Checks the store once, then listens on the configured (or given) public
   * port and on the management port; resolves with the actual public port.
   */
  listen(port?: number): Promise<{ port: number }>;
  /** Long-lived server streams (Watch): their budget and lifetime. */
  serverStreams: ServerStreamLimits;
  /**
   * SPEC §6 "Stopping": readiness turns 503 / NOT_SERVING at once; for
   * `delayMs` both listeners keep serving, each answer closing its
   * connection; then they stop accepting, close idle connections and give
   * requests in flight `timeoutMs` to finish; then the stores close.
   */
  stop(options: { delayMs: number; timeoutMs: number }): Promise<void>;
  /** stop() without the delay: drains both listeners, then closes the stores. */
  close(graceMs?: number): Promise<void>;
}

export interface AppOptions {
  store?: Store;
  /**
   * The session store beside a given `store` (e.g. on the same Redis
   * client); without it a given store gets an in-process one.
   */
  sessions?: SessionStore;
  clock?: Clock;
  logger?: Logger;
  /**
   * Serve unary VerifyMfaOtp's plain Connect and gRPC calls without
   * connect-es (rpc/unary-fast-path.ts). Default true; the differential
   * test turns it off to compare both paths.
   */
  rpcFastPath?: boolean;
  /**
   * A node:cluster worker (WORKERS > 1): no management listener of its own
   * (the primary serves it with the sum over workers, primary-management.ts);
   * its registry and readiness are shared with the primary, and the public
   * port's /metrics (PUBLIC_METRICS) asks the primary for that sum.
   */
  clusterWorker?: boolean;
}

/** Wires config → store → service context → RPC + REST → one-port server. */
export function createApp(config: Config, options: AppOptions = {}): App {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config.logLevel);
  const built: Stores =
    options.store === undefined
      ? createStores(config.store, clock, logger, config.redisSafety)
      : options.sessions === undefined
        ? sessionsBeside(options.store)
        : { store: options.store, sessions: options.sessions };
  const metrics = createMetrics();
  // Every round trip timed (and a span when tracing): see instrumented-store.ts.
  const system =
    config.store.kind === "memory"
      ? undefined
      : config.store.kind === "postgres"
        ? "postgresql"
        : "redis";
  // One store budget per request (store-deadline.ts), inside the measurement
  // so a deadline counts as an unavailable round trip.
  const deadline = config.storeDeadlineMs;
  const store = instrumentStore(
    withStoreDeadline(built.store, deadline, currentRequestStartNs),
    "store",
    metrics,
    system,
  );
  const sessions = instrumentStore(
    withStoreDeadline(built.sessions, deadline, currentRequestStartNs),
    "session-store",
    metrics,
    system,
  );
  const live = createLiveSettings({ clients: config.clients, signingKeys: config.signingKeys });
  const created = createServices(
    createServiceDeps(config, live, store, clock, logger, sessions, metrics),
  );
  const services = {
    ...created,
    tokenEndpoint: countVerifyOutcomes(created.tokenEndpoint, metrics),
  };
  const ctx: AppParts = { config, live, store, sessions, clock, logger, metrics, services };
  // Aborted by close(): health reports NOT_SERVING and ends Watch streams, which
  // would otherwise hold the drain open until the grace period runs out.
  const shutdown = new AbortController();
  const storeHealth = createStoreHealth(store, { logger });

  const cors = createCors(live.clients);
  const corsFor: CorsForClient = (context, client) => {
    // Called once a call's client has authenticated: the access log's client_id.
    noteClient(callRecordOf(context.values), client.clientId);
    return cors.headersForClient(context.requestHeader.get("origin") ?? undefined, client);
  };
  const mfaTokenService = createMfaTokenServiceImpl(services);
  const tokenService = createTokenServiceImpl(services, config.issuerUrl, corsFor);
  const clientAddressOf = createClientAddressOf(config.clientAddress.trustProxyHops);
  // Every server stream (grpc.health.v1.Health/Watch) shares one budget; one
  // address gets a tenth of it while addresses are counted (SPEC §6).
  const serverStreams = createServerStreamLimits({
    maxOpen: config.streams.maxOpen,
    maxOpenPerAddress:
      config.http.maxConnectionsPerAddress > 0
        ? Math.max(1, Math.floor(config.streams.maxOpen / 10))
        : 0,
    maxMs: config.streams.maxSeconds * 1000,
  });
  // With INTERNAL_PORT, MfaTokenService (the internal key's RPCs) is served
  // only on the internal listener: the public port answers its paths as
  // unknown routes and leaves it out of its health names and reflection.
  const internalListener = config.internal !== undefined;
  /** gRPC health and server reflection (buf curl --list-services, calls without --schema). */
  const serveHealthAndReflection = (
    router: ConnectRouter,
    files: DescFile[],
    healthNames: readonly string[],
  ) => {
    // They throw ConnectErrors only, which the OAuth error interceptor passes through.
    router.service(
      grpcHealthV1.Health,
      createHealthServiceImpl(storeHealth, { shutdown: shutdown.signal, services: healthNames }),
    );
    const reflection = createReflectionServiceImpls([
      ...files,
      file_token_v1_errors,
      grpcHealthV1.file_grpc_health_v1_health,
      grpcReflectionV1.file_grpc_reflection_v1_reflection,
      grpcReflectionV1alpha.file_grpc_reflection_v1alpha_reflection,
    ]);
    router.service(grpcReflectionV1.ServerReflection, reflection.v1);
    router.service(grpcReflectionV1alpha.ServerReflection, reflection.v1alpha);
  };
  const publicFiles = [file_token_v1_token_service, file_token_v1_mfa_service];
  const publicNames = ["", TokenService.typeName, MfaService.typeName];
  const internalNames = ["", MfaTokenService.typeName];
  const rpcOptions: ConnectNodeAdapterOptions = {
    routes(router) {
      router.service(TokenService, tokenService);
      if (!internalListener) router.service(MfaTokenService, mfaTokenService);
      router.service(MfaService, createMfaServiceImpl(services, config.issuerUrl, corsFor));
      if (internalListener) serveHealthAndReflection(router, publicFiles, publicNames);
      else {
        serveHealthAndReflection(
          router,
          [...publicFiles, file_token_v1_mfa_token_service],
          [...publicNames, MfaTokenService.typeName],
        );
      }
    },
    interceptors: [
      createTraceContextInterceptor(),
      createOAuthErrorInterceptor(logger, metrics),
      serverStreams.interceptor,
    ],
    // Per call: the client's address (the token RPCs throttle by it).
    contextValues: callValuesOf(clientAddressOf),
    readMaxBytes: MAX_BODY_BYTES,
    // Set here once: the adapter and the fast path must negotiate from the
    // same list. gzip only (connect-node's default adds brotli): a 27-byte
    // brotli request that inflates to 16 MiB cost about 13 ms of CPU and a
    // 16 MiB window before the 64 KiB limit could stop it; gzip stops at the
    // limit (rpc/bounded-gzip.ts; SECURITY.md, "Bounded work per request").
    acceptCompression: [boundedGzip],
  };
  const internalRpcOptions: ConnectNodeAdapterOptions | undefined = internalListener
    ? {
        ...rpcOptions,
        routes(router) {
          router.service(MfaTokenService, mfaTokenService);
          serveHealthAndReflection(router, [file_token_v1_mfa_token_service], internalNames);
        },
      }
    : undefined;
  const fastPath = options.rpcFastPath !== false;
  // Called on every login by the first-factor service (bench/RESULTS.md).
  const issueFastPath = (over: ConnectNodeAdapterOptions) =>
    createUnaryFastPath(over, MfaTokenService.method.issueMfaToken, mfaTokenService.issueMfaToken);
  const publicFastPaths: UnaryFastPath[] = fastPath
    ? [
        createUnaryFastPath(
          rpcOptions,
          TokenService.method.verifyMfaOtp,
          tokenService.verifyMfaOtp,
        ),
        ...(internalListener ? [] : [issueFastPath(rpcOptions)]),
      ]
    : [];
  const internalFastPaths: UnaryFastPath[] =
    fastPath && internalRpcOptions ? [issueFastPath(internalRpcOptions)] : [];
  const fastPaths = [...publicFastPaths, ...internalFastPaths];
  const connect = createConnectAdapter(rpcOptions, publicFastPaths, sendNotFound);
  const limits = {
    maxConnections: config.http.maxConnections,
    maxConnectionsPerAddress: config.http.maxConnectionsPerAddress,
    idleTimeoutMs: config.http.idleTimeoutSeconds * 1000,
    headersTimeoutMs: config.http.headersTimeoutSeconds * 1000,
    sniffTimeoutMs: config.http.headersTimeoutSeconds * 1000,
    requestTimeoutMs: config.http.requestTimeoutSeconds * 1000,
    http2MaxConcurrentStreams: config.http.http2MaxConcurrentStreams,
    http2MaxStreamsAwaitingBody: config.http.http2MaxStreamsAwaitingBody,
    http2MaxStreamsAwaitingBodyTotal: config.http.http2MaxStreamsAwaitingBodyTotal,
  };
  const metricsText = options.clusterWorker
    ? shareMetricsWithPrimary(metrics.registry)
    : createCachedMetrics(metrics.registry);
  const rest = createRestRoutes({
    services,
    cors,
    issuerUrl: config.issuerUrl,
    signingKeys: live.signingKeys,
    metrics,
    logger,
    clientAddressOf,
    // The public port keeps /healthz and /readyz; /metrics only when asked for.
    opsRoutes: createOpsRoutes({
      readiness: storeHealth,
      metrics: config.publicMetrics ? metricsText : undefined,
    }),
  });
  const routes = withDemoRoutes(rest, ctx); // GET /demo and /demo/* while DEMO is on
  const accessLog = config.accessLog ? createAccessLog(logger) : undefined;
  const server = createOnePortServer(
    observeRequests(createRequestHandler(routes, connect, cors), {
      metrics,
      accessLog,
      restRouteOf: rest.routeOf,
      rpcPaths: connect.rpcPaths,
    }),
    limits,
  );
  const management = createManagementServer(
    createOpsRoutes({ readiness: storeHealth, metrics: metricsText }),
    limits,
  );
  let managementPort: number | undefined;
  const internal = internalRpcOptions && createInternalServer(internalRpcOptions);
  let internalPort: number | undefined;

  return {
    ctx,
    server,
    management,
    get managementPort() {
      return managementPort;
    },
    internal,
    get internalPort() {
      return internalPort;
    },
    storeHealth,
    redisSafety: built.redisSafety,
    rpcFastPaths: fastPaths,
    serverStreams,
    async listen(port = config.port) {
      // E.g. PostgreSQL refuses an older schema here, before anything is served.
      await built.startupCheck?.();
      await storeHealth.start();
      const listening = await server.listen(port, config.host);
      if (internal !== undefined && config.internal !== undefined) {
        try {
          internalPort = (await internal.listen(config.internal.port, config.internal.host)).port;
        } catch (error) {
          await server.close(0);
          throw error;
        }
      }
      if (options.clusterWorker) {
        reportReadinessToPrimary(storeHealth);
        return listening;
      }
      const { host, port: wanted, explicit } = config.management;
      try {
        managementPort = (await management.listen(wanted, host)).port;
      } catch (error) {
        if (explicit || (error as NodeJS.ErrnoException).code !== "EADDRINUSE") {
          await server.close(0);
          throw error;
        }
        // The default port is taken (another instance on this machine): serve
        // without the management listener rather than not at all; the public
        // port still answers /healthz and /readyz. Set MANAGEMENT_PORT to choose one.
        logger.error(
          { event: "management_listener_unavailable", host, port: wanted },
          "management port in use: /metrics is not served; set MANAGEMENT_PORT",
        );
      }
      return listening;
    },
    stop,
    close: (graceMs) => stop({ delayMs: 0, timeoutMs: graceMs ?? 10_000 }),
  };

  /** The internal listener: MfaTokenService, health and reflection, /healthz and /readyz. */
  function createInternalServer(rpc: ConnectNodeAdapterOptions): OnePortServer {
    const internalConnect = createConnectAdapter(rpc, internalFastPaths, sendNotFound);
    const ops = createOpsRoutes({ readiness: storeHealth, metrics: undefined });
    return createOnePortServer(
      observeRequests(createInternalRequestHandler(ops, internalConnect), {
        metrics,
        accessLog,
        restRouteOf: (path) => (Object.hasOwn(ops, path) ? path : undefined),
        rpcPaths: internalConnect.rpcPaths,
      }),
      limits,
    );
  }

  async function stop({ delayMs, timeoutMs }: { delayMs: number; timeoutMs: number }) {
    // Readiness first: /readyz answers 503 and grpc.health.v1 NOT_SERVING
    // (Watch streams get it and end), so load balancers stop sending.
    shutdown.abort();
    storeHealth.stop();
    if (delayMs > 0) {
      server.closeAfterEachAnswer();
      management.closeAfterEachAnswer();
      internal?.closeAfterEachAnswer();
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
    await Promise.all([
      server.close(timeoutMs),
      management.close(timeoutMs),
      internal?.close(timeoutMs),
    ]);
    accessLog?.flush();
    await sessions.close();
    await store.close();
  }
}
