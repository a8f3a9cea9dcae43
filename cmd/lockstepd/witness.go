package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/ordering"
	"github.com/lockstepdb/lockstep/quorum"
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
	adm, err := admin.New(admin.Config{Listen: cfg.AdminAddr, Token: cfg.AdminToken, TLSCert: cfg.AdminTLSCert, TLSKey: cfg.AdminTLSKey}, statusSource{cfg: cfg, node: node, guard: guard}, log)
	if err != nil {
		return err
	}
	if err := adm.Start(); err != nil {
		return err
	}
	defer adm.Close()
	log.Info("lockstepd started as a witness (a Raft voter without a database)", "admin", cfg.AdminAddr, "raft", cfg.RaftAddr)
	<-ctx.Done()
	log.Info("shutting down")
	return nil
}
