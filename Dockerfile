# Lockstep image: static lockstepd and clusterctl on a distroless base,
# running as a non-root user. Configuration comes from LOCKSTEP_* variables
# (every lockstepd flag, e.g. LOCKSTEP_NODE_ID, LOCKSTEP_PEERS) or a JSON
# file given with --config (keys are the flag names; use it for secrets).
# See docs/DEPLOY.md and docker-compose.yml.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The same command `make deploy-check` runs in `make test`.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/lockstepd ./cmd/clusterctl \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/lockstepd /out/clusterctl /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /var/lib/lockstep
USER 65532:65532
ENV LOCKSTEP_DATA_DIR=/var/lib/lockstep \
    LOCKSTEP_SQL_ADDR=0.0.0.0:3307 \
    LOCKSTEP_ADMIN_ADDR=0.0.0.0:7402
VOLUME ["/var/lib/lockstep"]
# SQL, Raft/cluster, admin API.
EXPOSE 3307 7401 7402
HEALTHCHECK --interval=5s --timeout=6s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/lockstepd", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/lockstepd"]
