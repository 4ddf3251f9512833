# syntax=docker/dockerfile:1
# Keygate: the same entrypoint as `keygate serve` (bin/keygate.js), Node 24, non-root.
# Node 24 runs the TypeScript sources directly (type stripping), so there is no build output;
# the first stage type-checks and installs, the second keeps only production dependencies.

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim AS check
WORKDIR /app
COPY package.json package-lock.json ./
# The `node` devDependency is skipped: the image already is Node 24.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json vitest.config.ts ./
COPY bin ./bin
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN ./node_modules/.bin/tsc -p tsconfig.json

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    KEYGATE_LISTEN=0.0.0.0:8080 \
    KEYGATE_OPS_LISTEN=0.0.0.0:9090 \
    KEYGATE_POLICIES=/etc/keygate/policies \
    KEYGATE_STORE=sqlite:/var/lib/keygate/keygate.db
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=check /app/package.json ./package.json
COPY bin ./bin
COPY src ./src
COPY policies /etc/keygate/policies
RUN mkdir -p /var/lib/keygate && chown -R node:node /var/lib/keygate /etc/keygate
USER node
# Policies (hot-reloaded on change) and the SQLite key store live outside the image.
VOLUME ["/etc/keygate/policies", "/var/lib/keygate"]
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:9090/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# The same Node flags as bin/keygate.js's shebang (see there).
ENTRYPOINT ["node", "--max-semi-space-size=16", "bin/keygate.js"]
CMD ["serve"]
