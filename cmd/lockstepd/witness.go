package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/ordering"
	"github.com/lockstepdb/lockstep/quorum"
)

// witnessApplier is the applier of a witness: there is no database, so it
// only counts. Raft replays the log through it on every start, cheaply.
type witnessApplier struct{ applied atomic.Uint64 }

func (w *witnessApplier) AppliedIndex(context.Context) (uint64, error) { return 0, nil }

func (w *witnessApplier) Apply(_ context.Context, index uint64, entries []*command.Entry) ([][]command.Result, error) {
	w.applied.Store(index)
	return make([][]command.Result, len(entries)), nil
}

func (w *witnessApplier) OutcomeHash() (uint64, string) { return w.applied.Load(), "" }

// runWitness runs a witness: Raft (a full voter that stores the log) and the
// admin API; no database, no SQL listener.
func runWitness(ctx context.Context, cfg Config, log *slog.Logger, ocfg ordering.Config) error {
	node, err := ordering.New(ocfg, &witnessApplier{}, log)
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
