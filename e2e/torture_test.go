package e2e_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/e2e"
	"github.com/lockstepdb/lockstep/internal/elle"
)

// The torture runs: a workload (list-append, checked by internal/elle for
// serializability; register, checked for linearizability by porcupine)
// through every node while the nemesis (e2e/nemesis.go) applies every
// fault. make test runs the short version: each fault once, in a seeded
// order. make torture runs the long one, LOCKSTEP_TORTURE_TIME long, with
// faults drawn at random and sometimes two at once. LOCKSTEP_SEED replays
// a schedule; LOCKSTEP_FAULTS=a,b limits the nemesis to those faults;
// LOCKSTEP_HISTORY_DIR is where failing histories go.

// workload is one of the torture workloads.
type workload interface {
	name() string
	setup(t *testing.T, c *e2e.Cluster)
	dsn() string // what follows the slash in each client's DSN
	// step runs one transaction or operation and records it.
	step(ctx context.Context, rng *rand.Rand, db *sql.DB, process int, node string)
	outcomes() []outcomeAt
	// check judges the whole history once the cluster converged: the
	// anomalies found and the acknowledged writes missing on some node.
	check(t *testing.T, c *e2e.Cluster) (anomalies, lost int)
}

// outcomeAt is when an operation was invoked and how it ended.
type outcomeAt struct {
	at time.Time
	o  elle.Outcome
}

func tortureSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("LOCKSTEP_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (LOCKSTEP_SEED=%d replays the nemesis's schedule and the clients' choices)", seed, seed)
	return seed
}

func torture(t *testing.T, w workload) {
	seed := tortureSeed(t)
	dur, err := time.ParseDuration(os.Getenv("LOCKSTEP_TORTURE_TIME"))
	long := err == nil && dur > 0
	c := e2e.NewCluster(t, e2e.WithNetns(), e2e.WithClockOffset(), e2e.WithBackendTmpfs(512))
	w.setup(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	const perNode = 2
	for i, n := range c.Nodes {
		for j := range perNode {
			process := i*perNode + j
			db := n.Open(t, w.dsn())
			db.SetMaxOpenConns(1)
			rng := rand.New(rand.NewPCG(seed, uint64(process)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					w.step(ctx, rng, db, process, n.ID)
				}
			}()
		}
	}
	opts := e2e.NemesisOptions{Seed: seed, Once: !long}
	if f := os.Getenv("LOCKSTEP_FAULTS"); f != "" {
		opts.Faults = strings.Split(f, ",") // only these (replaying one fault)
	}
	nctx := ctx
	if long {
		opts.Combine = 0.25
		var ncancel context.CancelFunc
		nctx, ncancel = context.WithTimeout(ctx, dur)
		defer ncancel()
	}
	nm := e2e.NewNemesis(c, opts)
	time.Sleep(2 * time.Second) // a fault-free start: the schedule, not synchronisation
	start := time.Now()
	nerr := nm.Run(nctx)
	time.Sleep(2 * time.Second) // a fault-free end
	cancel()
	wg.Wait()
	t.Logf("%s: nemesis ran %s", w.name(), time.Since(start).Round(time.Second))
	if nerr != nil {
		t.Errorf("nemesis: %v", nerr)
	}
	c.WaitConverged()
	c.AssertIdentical(t)
	anomalies, lost := w.check(t, c)
	t.Log(tortureTable(w.name(), nm, w.outcomes(), anomalies, lost))
	if anomalies > 0 || lost > 0 {
		t.Errorf("%s (seed %d): %d anomalies, %d acknowledged writes lost", w.name(), seed, anomalies, lost)
	}
}

// tortureTable counts, for each fault (and combination), the operations
// invoked while it was in force: attempted, acknowledged, failed and of
// unknown outcome.
func tortureTable(name string, nm *e2e.Nemesis, outs []outcomeAt, anomalies, lost int) string {
	type tally struct{ attempted, ok, fail, info int }
	byFault := map[string]*tally{}
	var total tally
	for _, o := range outs {
		f := nm.FaultAt(o.at)
		tl := byFault[f]
		if tl == nil {
			tl = &tally{}
			byFault[f] = tl
		}
		for _, x := range []*tally{tl, &total} {
			x.attempted++
			switch o.o {
			case elle.OK:
				x.ok++
			case elle.Fail:
				x.fail++
			default:
				x.info++
			}
		}
	}
	faults := make([]string, 0, len(byFault))
	for f := range byFault {
		faults = append(faults, f)
	}
	sort.Strings(faults)
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-12s %-34s %9s %12s %8s %8s\n", "workload", "fault", "attempted", "acknowledged", "failed", "unknown")
	for _, f := range faults {
		tl := byFault[f]
		fmt.Fprintf(&b, "%-12s %-34s %9d %12d %8d %8d\n", name, f, tl.attempted, tl.ok, tl.fail, tl.info)
	}
	fmt.Fprintf(&b, "%-12s %-34s %9d %12d %8d %8d\n", name, "all", total.attempted, total.ok, total.fail, total.info)
	fmt.Fprintf(&b, "%-12s anomalies found: %d (must be 0); acknowledged writes lost: %d (must be 0)\n", name, anomalies, lost)
	var recov []string
	for _, w := range nm.Windows() {
		recov = append(recov, fmt.Sprintf("%s %s", w.Fault, w.Recovery.Round(100*time.Millisecond)))
	}
	fmt.Fprintf(&b, "%-12s recovery after each heal: %s\n", name, strings.Join(recov, ", "))
	return b.String()
}

// clientPause is a failed client's pause before its next try (clients
// back off; without it a client spins on a node that refuses).
func clientPause(ctx context.Context, rng *rand.Rand) {
	t := time.NewTimer(time.Duration(20+rng.IntN(80)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func TestTortureListAppend(t *testing.T) { torture(t, &listAppend{keys: 8}) }

func TestTortureRegister(t *testing.T) { torture(t, &register{keys: 6}) }
