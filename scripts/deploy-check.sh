#!/usr/bin/env bash
# make deploy-check (part of make test): what the deployment files need to
# hold, checked without a Docker engine.
#  1. The Docker build context's binaries: the Dockerfile's own static
#     build of lockstepd and clusterctl, and that they are static.
#  2. docker-compose.yml validates (docker compose config, or the
#     docker-compose 1.x client Debian ships, which scripts/deps.sh installs).
#  3. The systemd unit passes systemd-analyze verify with no complaint,
#     where systemd-analyze exists.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$out/" ./cmd/lockstepd ./cmd/clusterctl
for b in lockstepd clusterctl; do
  if ldd "$out/$b" >/dev/null 2>&1; then
    echo "deploy-check: $b is dynamically linked; the image's distroless base needs a static binary" >&2
    exit 1
  fi
done
"$out/lockstepd" healthcheck --help >/dev/null
echo "deploy-check: static lockstepd and clusterctl build (the Dockerfile's command)"

if docker compose version >/dev/null 2>&1; then
  docker compose -f docker-compose.yml config -q
  echo "deploy-check: docker-compose.yml valid (docker compose config)"
elif command -v docker-compose >/dev/null 2>&1; then
  docker-compose -f docker-compose.yml config -q
  echo "deploy-check: docker-compose.yml valid (docker-compose $(docker-compose version --short) config)"
else
  echo "deploy-check: neither docker compose nor docker-compose is installed (scripts/deps.sh installs docker-compose)" >&2
  exit 1
fi

if command -v systemd-analyze >/dev/null 2>&1; then
  sed -e "s|/usr/local/bin/lockstepd|$out/lockstepd|" \
      -e "s|EnvironmentFile=/etc/lockstep/lockstepd.env|EnvironmentFile=$PWD/deploy/systemd/lockstepd.env.example|" \
      deploy/systemd/lockstepd.service > "$out/lockstepd.service"
  msg=$(systemd-analyze verify "$out/lockstepd.service" 2>&1 || true)
  if [ -n "$msg" ]; then
    echo "deploy-check: systemd-analyze verify deploy/systemd/lockstepd.service:" >&2
    echo "$msg" >&2
    exit 1
  fi
  echo "deploy-check: deploy/systemd/lockstepd.service passes systemd-analyze verify"
else
  echo "deploy-check: systemd-analyze not installed; the unit was not verified"
fi
