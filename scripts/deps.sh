#!/usr/bin/env bash
# Installs what Lockstep's demo and tests need, if missing (idempotent).
#   scripts/deps.sh          MariaDB server and client, iproute2 (partition tests),
#                            sysbench (the TLS test runs it with --mysql-ssl=on),
#                            docker-compose (make deploy-check validates the compose file)
#                            the console's build (a C toolchain, OpenGL and X11
#                            headers: fyne uses cgo) and Xvfb + ImageMagick (its
#                            real-window screenshot, scripts/console-shot.sh)
#   scripts/deps.sh bench    also galera-4 and rsync (for make bench)
set -euo pipefail

need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v mariadb-install-db >/dev/null 2>&1 || need+=(mariadb-server)
# The partition tests put nodes in network namespaces (ip netns).
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)
command -v sysbench >/dev/null 2>&1 || need+=(sysbench)
# make deploy-check validates docker-compose.yml without a Docker engine.
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
# lockstep-console (fyne: cgo, GLFW on X11) builds in make test.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
for p in libgl1-mesa-dev xorg-dev xvfb imagemagick; do
  installed "$p" || need+=("$p")
done
if [ "${1:-}" = bench ]; then
  [ -e /usr/lib/galera/libgalera_smm.so ] || need+=(galera-4)
  command -v rsync >/dev/null 2>&1 || need+=(rsync)
fi
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "Go 1.26 or newer is required and was not found on PATH: install it from your distribution or go.dev." >&2
  exit 1
fi
[ ${#need[@]} -eq 0 ] && exit 0

# Deduplicate.
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" != 0 ]; then
  echo "Lockstep needs these Debian packages, which are not installed: ${need[*]}" >&2
  echo "Install them as root:  sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "Installing ${need[*]} (apt-get)..." >&2
export DEBIAN_FRONTEND=noninteractive
# Do not let the packaged MariaDB service start on port 3306: Lockstep runs its
# own mariadbd instances.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
