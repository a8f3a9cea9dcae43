// Package e2e holds Lockstep's end-to-end tests and the harness they use.
//
// The harness (cluster.go) starts real processes: one mariadbd per node
// (through internal/mysqld, each with its own temporary data directory) and
// one lockstepd per node, built once per test binary from ./cmd/lockstepd.
// Tests talk to the cluster exactly as users do: go-sql-driver or the mariadb
// client through a node's SQL port, the admin HTTP API with the bearer token,
// and root connections directly on each node's MariaDB to check what every
// replica really holds.
//
//	c := e2e.NewCluster(t, e2e.WithNodes(3))
//	db := c.Nodes[0].Open(t, "")          // app user through node 1
//	c.AssertIdentical(t)                  // CHECKSUM TABLE on every backend
//
// Set LOCKSTEPD_BIN to use a prebuilt binary instead of building one. The
// tests skip (with a message) when mariadbd is not installed.
package e2e
