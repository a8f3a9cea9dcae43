# Lockstep. The two commands the README shows: `make demo` and `make test`.
export PATH := $(PATH):/usr/local/go/bin:/usr/sbin
GO ?= go
# Packages with concurrency run under the race detector.
RACE_PKGS := ./ordering/... ./sqlproxy/... ./quorum/... ./admin/... ./internal/localdb/... ./balance/... ./vip/... ./console/view/...

.PHONY: all build build-server deps demo console console-shot test lint unit e2e bench clean deploy-check torture

all: build

deps:
	@bash scripts/deps.sh

build:
	$(GO) build -o bin/ ./cmd/...

# The node and the CLI only (the demo and the benchmark need no console).
build-server:
	$(GO) build -o bin/ ./cmd/lockstepd ./cmd/clusterctl

# Starts a local 3-node cluster (MariaDB installed via apt when missing and run as root).
demo: deps build-server
	./bin/lockstepd demo --nodes 3 --dir .demo

# The desktop console against a fresh 3-node demo cluster (needs a display).
console: deps build
	bash scripts/console.sh

# The console in a real window under Xvfb: n2 to standby through its action
# path, screenshot to docs/console.png.
console-shot: deps
	bash scripts/console-shot.sh docs/console.png

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -count=1 -race -timeout 20m $(RACE_PKGS)
	$(GO) test -count=1 -timeout 20m ./cmd/... ./internal/mysqld/... ./internal/archtest/... ./internal/snapstream/... ./console/ui/...

e2e:
	$(GO) test -count=1 -timeout 40m ./e2e/...

# The Dockerfile's static build, docker-compose.yml and the systemd unit.
deploy-check:
	bash scripts/deploy-check.sh

# build: every binary, the console (cgo, fyne) included.
test: deps lint deploy-check build unit e2e

# The long torture runs: each workload TORTURE_TIME (default 15m) under random
# faults (scripts/torture.sh; docs/GUARANTEES.md). make test runs the short one.
torture: deps
	bash scripts/torture.sh

# Options for the benchmark, e.g. make bench BENCH_ARGS="-only tx" (see bench/README.md).
BENCH_ARGS ?=
bench: build-server
	@bash scripts/deps.sh bench
	bash bench/run.sh $(BENCH_ARGS)

clean:
	rm -rf bin
