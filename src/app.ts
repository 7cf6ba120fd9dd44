import { connectNodeAdapter } from "@connectrpc/connect-node";
import { MfaService, MfaTokenService, TokenService } from "@token-service/client";
import { type Clock, systemClock } from "./clock.js";
import type { Config } from "./config.js";
import { createLogger, type Logger } from "./observability/logger.js";
import { createMfaServiceImpl } from "./rpc/mfa-service-impl.js";
import { createMfaTokenServiceImpl } from "./rpc/mfa-token-service-impl.js";
import { createOAuthErrorInterceptor } from "./rpc/oauth-error-interceptor.js";
import { createTokenServiceImpl } from "./rpc/token-service-impl.js";
import { createOnePortServer, type OnePortServer } from "./server/one-port-server.js";
import { MAX_BODY_BYTES } from "./server/read-body.js";
import { createRequestHandler } from "./server/request-handler.js";
import { createRestRoutes } from "./server/rest-routes.js";
import { createServiceContext, type ServiceContext } from "./service-context.js";
import { createStore } from "./store/create-store.js";
import type { Store } from "./store/store.js";

export interface App {
  ctx: ServiceContext;
  server: OnePortServer;
  /** Listens on the configured (or given) port; resolves with the actual one. */
  listen(port?: number): Promise<{ port: number }>;
  /** Drains the server, then closes the store. */
  close(graceMs?: number): Promise<void>;
}

export interface AppOptions {
  store?: Store;
  clock?: Clock;
  logger?: Logger;
}

/** Wires config → store → service context → RPC + REST → one-port server. */
export function createApp(config: Config, options: AppOptions = {}): App {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config.logLevel);
  const store = options.store ?? createStore(config.store, clock, logger);
  const ctx = createServiceContext(config, store, clock, logger);

  const connect = connectNodeAdapter({
    routes(router) {
      router.service(TokenService, createTokenServiceImpl(ctx));
      router.service(MfaTokenService, createMfaTokenServiceImpl(ctx));
      router.service(MfaService, createMfaServiceImpl(ctx));
    },
    interceptors: [createOAuthErrorInterceptor(logger, ctx.metrics)],
    readMaxBytes: MAX_BODY_BYTES,
  });
  const server = createOnePortServer(createRequestHandler(createRestRoutes(ctx), connect));

  return {
    ctx,
    server,
    listen: (port = config.port) => server.listen(port, config.host),
    async close(graceMs) {
      await server.close(graceMs);
      await store.close();
    },
  };
}
