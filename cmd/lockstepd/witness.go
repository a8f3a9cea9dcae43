package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/ordering"
	"github.com/lockstepdb/lockstep/quorum"
	"github.com/lockstepdb/lockstep/sqlproxy"
)

// runWitness runs a witness: Raft (a full voter that stores the log) and the
// admin API; no database, no SQL listener.
func runWitness(ctx context.Context, cfg Config, log *slog.Logger, ocfg ordering.Config) error {
	// No database: ordering applies the log in its witness mode.
	node, err := ordering.New(ocfg, nil, log)
	if err != nil {
		return fmt.Errorf("ordering: %w", err)
	}
	defer node.Close()
	guard := quorum.NewGuard(quorumView{node}, cfg.FenceGrace)
	src := statusSource{cfg: cfg, node: node, guard: guard, ca: &atomic.Pointer[clusterAddr]{}, proxy: &atomic.Pointer[sqlproxy.Server]{}}
	adm, err := admin.New(admin.Config{Listen: cfg.AdminAddr, Token: cfg.AdminToken, TLSCert: cfg.AdminTLSCert, TLSKey: cfg.AdminTLSKey}, src, log)
	if err != nil {
		return err
	}
	if err := adm.Start(); err != nil {
		return err
	}
	defer adm.Close()
	// A witness that leads holds the cluster address and balances over
	// the database nodes; it is never a candidate itself.
	ca, err := startClusterAddr(ctx, cfg, node, guard, nil, log)
	if err != nil {
		return err
	}
	src.ca.Store(ca)
	log.Info("lockstepd started as a witness (a Raft voter without a database)", "admin", cfg.AdminAddr, "raft", cfg.RaftAddr)
	<-ctx.Done()
	log.Info("shutting down")
	return nil
}
