#!/usr/bin/env bash
# make torture: the long version of the torture runs (e2e/torture_test.go).
# Each workload (list-append, register) runs TORTURE_TIME (default 15m) on
# its own 3-node cluster in network namespaces while the nemesis applies
# faults at random, sometimes two at once. Prints the nemesis's actions and,
# for each workload and fault, operations attempted, acknowledged, failed
# and unknown, the anomalies found and the acknowledged writes lost (both
# must be 0). Needs root (namespaces, tmpfs). The full output, failing
# histories and the logs of failed runs go to TORTURE_DIR (default .torture).
#   TORTURE_SEED=<n>     replay a schedule
#   TORTURE_FAULTS=a,b   only these faults (names in e2e/nemesis.go)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin"
dir=${TORTURE_DIR:-.torture}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
export LOCKSTEP_TORTURE_TIME=${TORTURE_TIME:-15m}
export LOCKSTEP_HISTORY_DIR=$dir LOCKSTEP_E2E_KEEP_LOGS=$dir
[ -n "${TORTURE_SEED:-}" ] && export LOCKSTEP_SEED=$TORTURE_SEED
[ -n "${TORTURE_FAULTS:-}" ] && export LOCKSTEP_FAULTS=$TORTURE_FAULTS
echo "torture: each workload runs $LOCKSTEP_TORTURE_TIME; full output in $dir/torture.log" >&2
set +e
go test -count=1 -v -timeout 0 -run '^TestTorture' ./e2e/ 2>&1 | tee "$dir/torture.log" |
  grep --line-buffered -E 'seed [0-9]+|nemesis: |workload +fault|^ +(list-append|register) |linearizable:|transactions:|--- (PASS|FAIL)|^(ok|FAIL)'
rc=${PIPESTATUS[0]}
exit "$rc"
