package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/internal/localdb"
	"github.com/lockstepdb/lockstep/ordering"
)

// restoreFromDonor is a joiner's state transfer: on the first start (no
// Raft state yet) it streams a snapshot from one of the --join-from donors
// straight into the local database (never held whole in memory), trying the
// next donor when a transfer fails (a donor that dies mid-transfer). The
// node then opens its database at the snapshot's index and applies only the
// log after it.
func restoreFromDonor(ctx context.Context, cfg Config, log *slog.Logger) error {
	if ordering.HasLocalState(cfg.DataDir) {
		return nil // not the first start: the database already holds our state
	}
	var donors []string
	for _, d := range strings.Split(cfg.JoinFrom, ",") {
		if d = strings.TrimSpace(d); d != "" {
			if !strings.Contains(d, "://") {
				d = "http://" + d
			}
			donors = append(donors, d)
		}
	}
	db, err := sql.Open("mysql", cfg.BackendDSN)
	if err != nil {
		return fmt.Errorf("--backend-dsn: %w", err)
	}
	defer db.Close()
	var errs []error
	for round := 0; round < 3; round++ {
		for _, donor := range donors {
			idx, n, took, err := transferFrom(ctx, db, donor, cfg.AdminToken)
			if err == nil {
				log.Info("state transfer: restored a snapshot", "donor", donor, "index", idx,
					"bytes", n, "took", took.Round(time.Millisecond), "mb_per_s", fmt.Sprintf("%.1f", float64(n)/1e6/took.Seconds()))
				return nil
			}
			log.Warn("state transfer from a donor failed; trying the next", "donor", donor, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", donor, err))
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second): // the donors may still be starting
		}
	}
	return fmt.Errorf("state transfer failed from every donor (--join-from): %w", errors.Join(errs...))
}

// transferFrom streams one donor's snapshot into the local database.
func transferFrom(ctx context.Context, db *sql.DB, donor, token string) (uint64, int64, time.Duration, error) {
	start := time.Now()
	pr, pw := io.Pipe()
	c := &admin.Client{Endpoint: donor, Token: token}
	var got atomic.Int64
	type result struct {
		idx uint64
		err error
	}
	fetched := make(chan result, 1)
	go func() {
		idx, n, err := c.Snapshot(ctx, pw)
		got.Store(n)
		pw.CloseWithError(err)
		fetched <- result{idx, err}
	}()
	idx, err := localdb.Restore(ctx, db, pr)
	pr.CloseWithError(err)
	f := <-fetched
	switch {
	case f.err != nil:
		return 0, got.Load(), 0, f.err
	case err != nil:
		return 0, got.Load(), 0, err
	case idx != f.idx:
		return 0, got.Load(), 0, fmt.Errorf("snapshot header says index %d, the donor %d", idx, f.idx)
	}
	return idx, got.Load(), time.Since(start), nil
}
