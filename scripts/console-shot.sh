#!/usr/bin/env bash
# The console in a real window: starts a 3-node demo cluster with a little
# client load, an Xvfb display and lockstep-console, which moves n2 to
# standby through its context menu's action path (confirmation included),
# waits for n2's glyph to show standby and writes a PNG of its window.
#
#   bash scripts/console-shot.sh [OUT.png]     (default docs/console.png)
#
# Needs the console's build dependencies and Xvfb (bash scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin
OUT=${1:-docs/console.png}
DIR=$(mktemp -d /tmp/lockstep-shot.XXXXXX)
pids=()
cleanup() {
	# Only what this script started, newest first, by PID.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
	[ -n "${SHOT_KEEP:-}" ] && echo "console-shot: kept $DIR" >&2 || rm -rf "$DIR"
}
trap cleanup EXIT

go build -o bin/ ./cmd/lockstepd ./cmd/lockstep-console

./bin/lockstepd demo --nodes 3 --dir "$DIR/demo" --json >"$DIR/info.json" 2>"$DIR/demo.log" &
pids+=($!)
for _ in $(seq 1 180); do
	[ -s "$DIR/info.json" ] && break
	kill -0 "${pids[0]}" 2>/dev/null || { cat "$DIR/demo.log" >&2; echo "console-shot: the demo cluster did not start" >&2; exit 1; }
	sleep 1
done
[ -s "$DIR/info.json" ] || { tail -20 "$DIR/demo.log" >&2; echo "console-shot: the demo cluster was not ready in 180s" >&2; exit 1; }

# A little load through the cluster address, so the charts move.
read -r HOST PORT USER PASS < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); h,p=d["cluster"].rsplit(":",1); print(h,p,d["user"],d["password"])' "$DIR/info.json")
sql() { mariadb --skip-ssl -h "$HOST" -P "$PORT" -u "$USER" -p"$PASS" -N -e "$1" >/dev/null 2>>"$DIR/load.log"; }
for _ in $(seq 1 30); do
	sql "CREATE DATABASE IF NOT EXISTS shop; CREATE TABLE IF NOT EXISTS shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, qty INT)" && break
	sleep 1
done
echo "console-shot: schema: $(head -3 "$DIR/load.log" 2>/dev/null)"
(
	while :; do
		sql "INSERT INTO shop.orders (qty) VALUES (1); INSERT INTO shop.orders (qty) VALUES (2); SELECT COUNT(*) FROM shop.orders; SELECT MAX(id) FROM shop.orders; SELECT SUM(qty) FROM shop.orders; SELECT 1" || true
		sleep 0.1
	done
) &
pids+=($!)

d=99
while [ -e "/tmp/.X$d-lock" ]; do d=$((d + 1)); done
Xvfb ":$d" -screen 0 1280x960x24 -nolisten tcp >"$DIR/xvfb.log" 2>&1 &
pids+=($!)
sleep 2

mkdir -p "$(dirname "$OUT")"
# The console drives the action itself; the display is captured from X
# once it reports the glyph changed (and the charts drew a few seconds more).
DISPLAY=":$d" LANG=en_US.UTF-8 ./bin/lockstep-console --from-demo "$DIR/info.json" \
	--demo-action standby:n2 --demo-wait "${SHOT_WAIT:-45s}" >"$DIR/console.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 240); do
	grep -q "n2 shows standby" "$DIR/console.log" && break
	kill -0 "${pids[-1]}" 2>/dev/null || break
	sleep 1
done
cat "$DIR/console.log"
grep -q "n2 shows standby" "$DIR/console.log" || { echo "console-shot: n2's glyph did not change to standby" >&2; exit 1; }
sleep 8
DISPLAY=":$d" import -window root -crop 1180x860+0+0 +repage "$OUT"
echo "console-shot: client load errors: $(wc -l <"$DIR/load.log")"; tail -3 "$DIR/load.log"
[ -s "$OUT" ] || { echo "console-shot: no screenshot" >&2; exit 1; }
echo "console-shot: wrote $OUT"
