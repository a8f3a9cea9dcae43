#!/usr/bin/env bash
# make console: starts the 3-node demo cluster (./bin/lockstepd demo, data in
# .demo) and the desktop console against it; closing the console's window
# stops the cluster. Needs a display (DISPLAY); for a headless machine see
# scripts/console-shot.sh, which runs it under Xvfb.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || { echo "console: no display (DISPLAY is not set); try bash scripts/console-shot.sh for a headless run" >&2; exit 1; }
mkdir -p .demo
info=.demo/console-info.json
rm -f "$info"
./bin/lockstepd demo --nodes 3 --dir .demo --json >"$info" 2>.demo/console-demo.log &
demo=$!
trap 'kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true' EXIT
echo "console: starting the demo cluster (log in .demo/console-demo.log)..." >&2
for _ in $(seq 1 180); do
	[ -s "$info" ] && break
	kill -0 "$demo" 2>/dev/null || { tail -20 .demo/console-demo.log >&2; exit 1; }
	sleep 1
done
[ -s "$info" ] || { echo "console: the demo cluster was not ready in 180s" >&2; exit 1; }
./bin/lockstep-console --from-demo "$info" "$@"
