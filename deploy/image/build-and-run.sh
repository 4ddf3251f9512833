#!/usr/bin/env bash
# Builds Keygate's image and runs it as the README's Docker section does: `serve`, then
# `keys create` in a second container on the same volume, a request through the proxy
# with that key, /readyz, the image's HEALTHCHECK, and SIGTERM → exit 0.
#
# For a machine with Debian's podman and mmdebstrap and no reachable image registry
# (apt-get install -y podman buildah runc mmdebstrap): the base image, FROM node:24-bookworm-slim
# elsewhere, is built here with mmdebstrap (Debian bookworm, minbase) plus the Node 24
# binary of the project's `node` devDependency and npm 11 from the npm registry, and passed
# to the build as NODE_IMAGE. Everything (storage, volumes, containers) lives under WORK
# and is removed at the end. Not part of `npm test`: it takes minutes and about 3 GB.
#
#   deploy/image/build-and-run.sh            # build, run, check, clean up
#   KEEP=1 deploy/image/build-and-run.sh     # keep WORK (images, storage) afterwards
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-/tmp/keygate-image}
BASE=localhost/keygate-node:24-bookworm-slim
IMAGE=localhost/keygate:dev
# The machine's CA bundle: behind a TLS-intercepting proxy it holds the proxy's CA, which
# npm inside the build needs to reach the registry.
CA=${CA:-/etc/ssl/certs/ca-certificates.crt}
# Host networking (no bridge, no NAT rules in a sandbox); ports unlikely to be taken.
PROXY_PORT=${PROXY_PORT:-18080}
OPS_PORT=${OPS_PORT:-19090}
BACKEND_PORT=${BACKEND_PORT:-18081}
NODE="$ROOT/node_modules/node/bin/node"

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

for tool in podman runc mmdebstrap curl; do command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install -y podman buildah runc mmdebstrap curl)"; done
[ -x "$NODE" ] || fail "$NODE missing: run npm ci first (the node devDependency brings Node 24)"

mkdir -p "$WORK"
# The runtime's default limits (1,048,576 open files, 4,194,304 processes) are more than
# this machine allows a container: give containers the machine's own open-file limit, and
# no more processes than there are pids (a sandbox refuses an RLIMIT_NPROC above pid_max).
# runc rather than crun: crun refuses a cgroup v1 + v2 hybrid with controllers on v2.
nproc=$(ulimit -Hu); pid_max=$(cat /proc/sys/kernel/pid_max)
[ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ] && nproc=$pid_max
cat > "$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF="$WORK/containers.conf"
# Without systemd, podman says on every run that it cannot set a timer for the HEALTHCHECK
# (`podman healthcheck run` below runs it by hand); keep that out of the output.
pod() { podman --root "$WORK/storage" --runroot "$WORK/run" --storage-driver vfs "$@" 2> >(grep -v 'systemd connection' >&2); }

BACKEND_PID=
cleanup() {
  set +e
  pod rm -f -t 0 kg-serve >/dev/null 2>&1
  pod volume rm -f keygate-data >/dev/null 2>&1
  [ -n "$BACKEND_PID" ] && kill "$BACKEND_PID" 2>/dev/null
  # No container is left, so nothing is mounted under WORK: removing it is the whole reset.
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

say "base image $BASE (mmdebstrap bookworm minbase + Node $("$NODE" --version) + npm 11)"
if ! pod image exists "$BASE"; then
  (cd "$WORK" && npm pack --silent npm@11 >/dev/null && mkdir -p npm && tar -xzf npm-*.tgz -C npm --strip-components=1)
  strip -o "$WORK/node" "$NODE"
  mmdebstrap --variant=minbase --include=ca-certificates --quiet \
    --customize-hook="copy-in $WORK/node /usr/local/bin" \
    --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules\"" \
    --customize-hook="copy-in $WORK/npm /usr/local/lib/node_modules" \
    --customize-hook="chroot \"\$1\" sh -c 'ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx'" \
    --customize-hook="chroot \"\$1\" sh -c 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/sh --create-home node'" \
    --customize-hook="chroot \"\$1\" sh -c 'rm -rf /usr/share/doc/* /usr/share/man/* /var/cache/apt/* /var/lib/apt/lists/*'" \
    bookworm "$WORK/base.tar"
  pod import --change 'CMD ["node"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$WORK/base.tar" "$BASE" >/dev/null
  rm -f "$WORK/base.tar" "$WORK/node"
fi
pod run --rm --network host "$BASE" sh -c 'node --version && npm --version && id node'

say "image $IMAGE (Dockerfile, NODE_IMAGE=$BASE)"
pod build --format docker --isolation chroot --network host \
  --build-arg NODE_IMAGE="$BASE" --secret id=npm-ca,src="$CA" \
  -t "$IMAGE" "$ROOT"
pod image inspect --format '{{.Config.Healthcheck.Test}}' "$IMAGE" | grep -q healthz || fail 'the image has no HEALTHCHECK (build with --format docker)'
if pod run --rm --network host --entrypoint sh "$IMAGE" -c 'test -e node_modules/http-proxy-3'; then fail 'the image ships http-proxy-3 (a bench-only dependency)'; fi

say "demo backend on 127.0.0.1:$BACKEND_PORT (the host)"
(cd "$ROOT" && exec "$NODE" -e "import('./src/demo/backend.ts').then((m) => m.startDemoBackend({ port: $BACKEND_PORT, record: false })).then((b) => console.log('backend', b.url))") &
BACKEND_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$BACKEND_PORT/v1/devices" >/dev/null && break; sleep 0.1; done

say "serve (README: docker run -e KEYGATE_UPSTREAM=… -v keygate-data:/var/lib/keygate keygate)"
pod volume create keygate-data >/dev/null
pod run -d --name kg-serve --network host \
  -e KEYGATE_UPSTREAM="http://127.0.0.1:$BACKEND_PORT" \
  -e KEYGATE_LISTEN="127.0.0.1:$PROXY_PORT" -e KEYGATE_OPS_LISTEN="127.0.0.1:$OPS_PORT" \
  -v keygate-data:/var/lib/keygate "$IMAGE" >/dev/null
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$OPS_PORT/readyz" >/dev/null && break; sleep 0.1; done
pod logs kg-serve | grep 'keygate listening' || fail 'serve did not start'

say "keys create in a second container on the same volume"
created=$(pod run --rm --network host -v keygate-data:/var/lib/keygate "$IMAGE" keys create --type server --name image-check --json)
echo "$created" | sed -E 's/"key":"([a-z]+_)[^"]*"/"key":"\1…"/'
key=$(echo "$created" | sed -E 's/.*"key":"([^"]+)".*/\1/')

say "/readyz, a request with the new key, one without"
curl -s "http://127.0.0.1:$OPS_PORT/readyz"; echo
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$OPS_PORT/readyz")" = 200 ] || fail '/readyz is not 200'
with=$(curl -s -o /dev/null -w '%{http_code}' -H "Texture-Api-Key: $key" "http://127.0.0.1:$PROXY_PORT/v1/devices")
without=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PROXY_PORT/v1/devices")
echo "GET /v1/devices with the key: $with, without a key: $without"
[ "$with" = 200 ] && [ "$without" = 401 ] || fail 'the proxy did not answer 200 with the key and 401 without'
pod healthcheck run kg-serve && echo 'HEALTHCHECK: healthy' || fail 'HEALTHCHECK failed'

say "SIGTERM"
pod kill --signal TERM kg-serve >/dev/null
code=$(pod wait kg-serve)
pod logs kg-serve | tail -3
echo "exit code after SIGTERM: $code"
[ "$code" = 0 ] || fail "serve exited $code after SIGTERM"

say "PASSED: image built, serve + keys create on one volume, /readyz 200, HEALTHCHECK healthy, SIGTERM exit 0"
