# Keygate: the same entrypoint as `keygate serve` (bin/keygate.js), Node 24, non-root.
# Node 24 runs the TypeScript sources directly (type stripping), so there is no build output;
# the first stage installs the production dependencies, the second type-checks, the last
# keeps only what runs. deploy/image/build-and-run.sh builds it where no registry is
# reachable (a local base image passed as NODE_IMAGE) and runs it as the README does.
#
# NODE_IMAGE: any Debian-based image with Node 24 and npm on PATH and a `node` user.
# A build behind a TLS-intercepting proxy passes the proxy's CA bundle as a secret,
# `--secret id=npm-ca,src=/etc/ssl/certs/ca-certificates.crt`; it is read by `npm ci`
# only and never lands in a layer. Without it the file is absent and Node warns once.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm-ca,target=/run/secrets/npm-ca \
    NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca npm ci --omit=dev --ignore-scripts --no-audit --no-fund --no-update-notifier

FROM ${NODE_IMAGE} AS check
WORKDIR /app
COPY package.json package-lock.json ./
# The `node` devDependency is skipped (--ignore-scripts): the image already is Node 24.
RUN --mount=type=secret,id=npm-ca,target=/run/secrets/npm-ca \
    NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca npm ci --ignore-scripts --no-audit --no-fund --no-update-notifier
COPY tsconfig.json vitest.config.ts ./
COPY bin ./bin
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN ./node_modules/.bin/tsc -p tsconfig.json

FROM ${NODE_IMAGE}
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
# node_modules/.cache/keygate: Node's compile cache (bin/keygate.js), written by the first
# start of a container and read by its restarts.
RUN mkdir -p /var/lib/keygate /app/node_modules/.cache/keygate && chown -R node:node /var/lib/keygate /etc/keygate /app/node_modules/.cache/keygate
USER node
# Policies (hot-reloaded on change) and the SQLite key store live outside the image.
VOLUME ["/etc/keygate/policies", "/var/lib/keygate"]
EXPOSE 8080 9090
# Probes the ops port KEYGATE_OPS_LISTEN names, so moving the ops listener keeps the check true.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.KEYGATE_OPS_LISTEN.split(':').pop() + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The same Node flags as bin/keygate.js's shebang (see there).
ENTRYPOINT ["node", "--max-semi-space-size=16", "--expose-gc", "bin/keygate.js"]
CMD ["serve"]
