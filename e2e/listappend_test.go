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
// internal/elle checks the history for G0, G1a, G1b, G1c and G2
// (torture_test.go runs it under the nemesis).

const laSchema = "CREATE TABLE la.lists (k INT PRIMARY KEY, v LONGTEXT NOT NULL)"

// listAppend is the list-append torture workload.
type listAppend struct {
	keys int
	mu   sync.Mutex
	txns []elle.Txn
	next atomic.Int64 // transaction ids
	vals atomic.Int64 // appended values, unique
}

func (w *listAppend) name() string { return "list-append" }
func (w *listAppend) dsn() string  { return "la?timeout=2s&readTimeout=10s&writeTimeout=10s" }

func (w *listAppend) setup(t *testing.T, c *e2e.Cluster) {
	setup(t, c, "CREATE DATABASE la", laSchema)
}

// step runs one random transaction of 1-4 appends and reads and records it.
func (w *listAppend) step(ctx context.Context, rng *rand.Rand, db *sql.DB, process int, node string) {
	t := elle.Txn{ID: int(w.next.Add(1)), Process: process, Node: node, Invoked: time.Now()}
	n := 1 + rng.IntN(4)
	for range n {
		k := rng.IntN(w.keys)
		if rng.IntN(2) == 0 {
			t.Ops = append(t.Ops, elle.Op{Kind: elle.Append, Key: k, Value: int(w.vals.Add(1))})
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
	w.mu.Lock()
	w.txns = append(w.txns, t)
	w.mu.Unlock()
	if t.Outcome != elle.OK && !strings.HasPrefix(t.Error, "Error 1213") { // conflicts retry at once
		clientPause(ctx, rng)
	}
}

func (w *listAppend) outcomes() []outcomeAt {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]outcomeAt, len(w.txns))
	for i, t := range w.txns {
		out[i] = outcomeAt{t.Invoked, t.Outcome}
	}
	return out
}

// check runs the elle checker, then reads every node's final lists: each
// must hold every acknowledged append and no append of a transaction that
// failed (the lists of all nodes are identical: AssertIdentical).
func (w *listAppend) check(t *testing.T, c *e2e.Cluster) (anomalies, lost int) {
	r := laCheck(t, "list-append", w)
	for _, n := range r.Counts() {
		anomalies += n
	}
	status := map[int]elle.Outcome{}
	w.mu.Lock()
	for _, tx := range w.txns {
		for _, op := range tx.Ops {
			if op.Kind == elle.Append {
				status[op.Value] = tx.Outcome
			}
		}
	}
	w.mu.Unlock()
	for _, n := range c.Nodes {
		rows, err := n.BackendDB().Query("SELECT v FROM la.lists")
		if err != nil {
			t.Fatalf("%s: read the final lists: %v", n.ID, err)
		}
		seen := map[int]bool{}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			for _, x := range parseList(v) {
				seen[x] = true
				if status[x] == elle.Fail {
					t.Errorf("%s: value %d of a failed transaction is in the final lists", n.ID, x)
					anomalies++
				}
			}
		}
		rows.Close()
		missing := 0
		for v, o := range status {
			if o == elle.OK && !seen[v] {
				missing++
				if missing <= 10 {
					t.Errorf("%s: acknowledged append of %d is not in the final lists", n.ID, v)
				}
			}
		}
		lost = max(lost, missing)
	}
	return anomalies, lost
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
func laCheck(t *testing.T, name string, rec *listAppend) *elle.Result {
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
