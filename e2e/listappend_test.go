package e2e_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/e2e"
	"github.com/lockstepdb/lockstep/internal/elle"
)

// The list-append workload (Elle's): transactions of 1–4 random appends
// and reads over a few keys, through every node, each append a value
// unique in the history; every invocation and completion is recorded and
// internal/elle checks the history for G0, G1a, G1b, G1c and G2.

const laSchema = "CREATE TABLE la.lists (k INT PRIMARY KEY, v LONGTEXT NOT NULL)"

type laRecorder struct {
	mu   sync.Mutex
	txns []elle.Txn
	next atomic.Int64 // transaction ids
	vals atomic.Int64 // appended values, unique
}

// laRun runs one random transaction on db and records it.
func (rec *laRecorder) laRun(ctx context.Context, rng *rand.Rand, db *sql.DB, process int, node string, keys int) {
	t := elle.Txn{ID: int(rec.next.Add(1)), Process: process, Node: node, Invoked: time.Now()}
	n := 1 + rng.IntN(4)
	for range n {
		k := rng.IntN(keys)
		if rng.IntN(2) == 0 {
			t.Ops = append(t.Ops, elle.Op{Kind: elle.Append, Key: k, Value: int(rec.vals.Add(1))})
		} else {
			t.Ops = append(t.Ops, elle.Op{Kind: elle.Read, Key: k})
		}
	}
	t.Outcome, t.Error = laExec(ctx, db, t.Ops)
	t.Complete = time.Now()
	if t.Outcome != elle.OK { // reads of a transaction that did not commit say nothing
		for i := range t.Ops {
			t.Ops[i].List = nil
		}
	}
	rec.mu.Lock()
	rec.txns = append(rec.txns, t)
	rec.mu.Unlock()
}

// laExec runs the ops in one transaction: OK when COMMIT succeeded, Fail
// when the transaction certainly did not commit (an error before COMMIT,
// or 1213 at it), Info when the COMMIT's outcome is unknown.
func laExec(ctx context.Context, db *sql.DB, ops []elle.Op) (elle.Outcome, string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return elle.Fail, err.Error()
	}
	for i := range ops {
		op := &ops[i]
		switch op.Kind {
		case elle.Append:
			_, err = tx.ExecContext(ctx, "INSERT INTO lists (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = CONCAT(v, ',', VALUES(v))", op.Key, strconv.Itoa(op.Value))
		default:
			var v string
			err = tx.QueryRowContext(ctx, "SELECT v FROM lists WHERE k = ?", op.Key).Scan(&v)
			if errors.Is(err, sql.ErrNoRows) {
				err, v = nil, ""
			}
			op.List = parseList(v)
		}
		if err != nil {
			_ = tx.Rollback()
			return elle.Fail, err.Error()
		}
	}
	if err := tx.Commit(); err != nil {
		if e2e.ErrNumber(err) == 1213 {
			return elle.Fail, err.Error()
		}
		return elle.Info, err.Error()
	}
	return elle.OK, ""
}

func parseList(v string) []int {
	out := []int{}
	if v == "" {
		return out
	}
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			n = -1 // not a value anyone appended: the checker reports it
		}
		out = append(out, n)
	}
	return out
}

// laCheck checks the history, writes it (and the report) to a file when
// it fails, and returns the result.
func laCheck(t *testing.T, name string, rec *laRecorder) *elle.Result {
	t.Helper()
	rec.mu.Lock()
	h := append([]elle.Txn(nil), rec.txns...)
	rec.mu.Unlock()
	r := elle.Check(h)
	t.Logf("%s: %s", name, strings.SplitN(r.Report(), "\n", 2)[0])
	if !r.Valid() {
		dir := os.Getenv("LOCKSTEP_HISTORY_DIR")
		if dir == "" {
			dir = os.TempDir()
		}
		path := filepath.Join(dir, fmt.Sprintf("lockstep-history-%s-%d.txt", name, time.Now().Unix()))
		var b strings.Builder
		b.WriteString(r.Report())
		b.WriteString("\nhistory, in completion order:\n")
		for i := range h {
			fmt.Fprintf(&b, "%s %s -> %s\n", h[i].Invoked.Format("15:04:05.000000"), h[i].Complete.Format("15:04:05.000000"), h[i].String())
		}
		_ = os.WriteFile(path, []byte(b.String()), 0o644)
		t.Errorf("%s: anomalies %v; history and report in %s\n%s", name, r.Counts(), path, r.Report())
	}
	return r
}

// TestListAppend runs the workload through all three nodes, and kills the
// leader's lockstepd once in the middle (the seed, printed, chooses when).
func TestListAppend(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("LOCKSTEP_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (LOCKSTEP_SEED=%d replays the schedule)", seed, seed)
	dur := 12 * time.Second
	if d, err := time.ParseDuration(os.Getenv("LOCKSTEP_TORTURE_TIME")); err == nil {
		dur = d
	}
	c := e2e.NewCluster(t)
	setup(t, c, "CREATE DATABASE la", laSchema)
	rec := &laRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	const perNode, keys = 2, 8
	for i, n := range c.Nodes {
		for j := range perNode {
			process := i*perNode + j
			db := n.Open(t, "la?timeout=2s&readTimeout=10s&writeTimeout=10s")
			db.SetMaxOpenConns(1)
			rng := rand.New(rand.NewPCG(seed, uint64(process)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					rec.laRun(ctx, rng, db, process, n.ID, keys)
				}
			}()
		}
	}
	nem := rand.New(rand.NewPCG(seed, 1<<32))
	killAt := dur/4 + time.Duration(nem.Int64N(int64(dur/2)))
	time.Sleep(killAt) // the nemesis's schedule, not synchronisation
	leader := c.WaitForLeader()
	t.Logf("nemesis: kill -9 of leader %s at %s", leader.ID, killAt.Round(time.Millisecond))
	leader.Kill()
	c.WaitForLeader()
	leader.Restart()
	time.Sleep(dur - killAt) // the rest of the run
	cancel()
	wg.Wait()
	r := laCheck(t, "list-append-kill-leader", rec)
	if r.Committed < 50 {
		t.Fatalf("only %d transactions committed: the workload did not run", r.Committed)
	}
}
