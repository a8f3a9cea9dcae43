#!/usr/bin/env bash
# Runs go-sql-driver/mysql's own integration tests (the version in go.mod)
# directly on a MariaDB and through a follower of a 3-node Lockstep cluster,
# and fails when a test that passes direct fails through the node, except
# those e2e/driver_test.go lists with their reasons (docs/STATUS.md, Driver
# compatibility). `make test` runs it as part of the e2e tests.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go test -count=1 -timeout 20m -run '^TestDriverSuite$' -v ./e2e/ "$@"
