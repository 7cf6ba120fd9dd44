# syntax=docker/dockerfile:1
# The production image of token-service: `docker build -t token-service .`
# Multi-stage: the build stage compiles TypeScript (dist/, gen/dist/); the
# runtime stage holds only the compiled code and the production dependencies,
# and runs `node dist/main.js` as the unprivileged `node` user (uid 1000).
# NODE_ENV=production refuses every development default at start-up, so the
# container needs REDIS_URL (or REDIS_CLUSTER_NODES, or DATABASE_URL), SIGNING_KEYS_FILE,
# CLIENTS_FILE, SECRETS_KEY and INTERNAL_API_KEY: make them with the
# `token-service` command (docs/operations.md) and see compose.yaml.

# The Node 20 line the project is tested on (package.json "engines").
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies first, so the layer is reused until the lock file changes.
# --ignore-scripts: no dependency's install script is needed to compile.
COPY package.json package-lock.json ./
COPY gen/package.json gen/
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY gen/tsconfig.json gen/
COPY gen/src gen/src
COPY src src
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY gen/package.json gen/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
# Owned by root and read-only to the service user: the process cannot change its own code.
COPY --from=deps /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/gen/dist gen/dist
COPY package.json ./
COPY gen/package.json gen/
COPY bin bin
# The PostgreSQL schema's versions: `token-service db migrate` applies them, and
# the service checks the schema against the newest at start-up.
COPY migrations migrations
# The demo client, for a try-out with NODE_ENV=development (production refuses it).
COPY config/clients.example.json config/
# The starter kit inside the container: `docker compose run --rm token-service token-service --help`.
RUN ln -s /app/bin/token-service.js /usr/local/bin/token-service
USER node
EXPOSE 8080
# The slim image has no curl: Node's fetch asks the public port's liveness route.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/main.js"]
