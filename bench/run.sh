#!/usr/bin/env bash
# Lockstep benchmark (make bench): point-select QPS through a Lockstep node vs
# directly on its MariaDB, autocommit-insert throughput/latency of a 3-node
# Lockstep cluster next to a 3-node MariaDB Galera cluster, both on loopback,
# and read/write transactions (throughput, p95, conflict rate) on a single
# MariaDB and on both clusters (Lockstep with and without read validation,
# --validate-reads), load on one node and spread over three.
# Results: stdout and bench/results/<date>.txt. Options: see `bench/run.sh -h`
# (e.g. `bench/run.sh -only tx`, or `make bench BENCH_ARGS="-only tx"`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin"
mkdir -p bin
[ -x bin/lockstepd ] || go build -o bin/ ./cmd/lockstepd
go build -o bin/lockstep-bench ./bench
# exec: Ctrl-C reaches the benchmark, which stops every process it started.
exec bin/lockstep-bench -lockstepd bin/lockstepd -out bench/results "$@"
