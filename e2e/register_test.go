package e2e_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/lockstepdb/lockstep/e2e"
	"github.com/lockstepdb/lockstep/internal/elle"
)

// The register workload: single-statement reads, writes and
// compare-and-sets of a few integer registers, through every node, with
// lockstep_linearizable_reads on; the history is checked for
// linearizability with porcupine (Knossos's algorithm), one register at a
// time. A write or CAS of unknown outcome (a timeout, a broken connection)
// may take effect at any time after its invocation, or never.

type regOp struct {
	Kind  string // "r", "w", "cas"
	Key   int
	Value int // w: the value; cas: the new value
	Old   int // cas: the expected value
}

type regOut struct {
	OK      bool // cas: it swapped; r, w: always true
	Value   int  // r: what it read
	Unknown bool // w, cas: the outcome is not known
}

type register struct {
	keys int
	mu   sync.Mutex
	ops  []porcupine.Operation
	outs []outcomeAt
	vals atomic.Int64
	t0   time.Time
}

func (w *register) name() string { return "register" }
func (w *register) dsn() string {
	return "reg?timeout=2s&readTimeout=10s&writeTimeout=10s&lockstep_linearizable_reads=ON"
}

func (w *register) setup(t *testing.T, c *e2e.Cluster) {
	stmts := []string{"CREATE DATABASE reg", "CREATE TABLE reg.r (k INT PRIMARY KEY, v INT NOT NULL)"}
	for k := range w.keys {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO reg.r VALUES (%d, 0)", k))
	}
	setup(t, c, stmts...)
	w.t0 = time.Now()
	// Every client's session must really have linearizable reads on.
	db := c.Nodes[0].Open(t, w.dsn())
	var on int
	if err := db.QueryRow("SELECT @@lockstep_linearizable_reads").Scan(&on); err != nil || on != 1 {
		t.Fatalf("lockstep_linearizable_reads through the DSN: %d, %v", on, err)
	}
}

func (w *register) stamp(at time.Time) int64 { return int64(at.Sub(w.t0)) }

func (w *register) step(ctx context.Context, rng *rand.Rand, db *sql.DB, process int, node string) {
	op := regOp{Key: rng.IntN(w.keys)}
	switch rng.IntN(3) {
	case 0:
		op.Kind = "r"
	case 1:
		op.Kind, op.Value = "w", int(w.vals.Add(1))
	default:
		op.Kind, op.Value, op.Old = "cas", int(w.vals.Add(1)), w.guess(rng, op.Key)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	call := time.Now()
	var out regOut
	var err error
	switch op.Kind {
	case "r":
		err = db.QueryRowContext(ctx, "SELECT v FROM r WHERE k = ?", op.Key).Scan(&out.Value)
		out.OK = err == nil
	case "w":
		_, err = db.ExecContext(ctx, "UPDATE r SET v = ? WHERE k = ?", op.Value, op.Key)
		out.OK = err == nil
	default:
		var res sql.Result
		res, err = db.ExecContext(ctx, "UPDATE r SET v = ? WHERE k = ? AND v = ?", op.Value, op.Key, op.Old)
		if err == nil {
			n, _ := res.RowsAffected()
			out.OK = n == 1
		}
	}
	ret := time.Now()
	outcome := elle.OK
	if err != nil {
		outcome = elle.Info
		if definiteFailure(err) {
			outcome = elle.Fail
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.outs = append(w.outs, outcomeAt{call, outcome})
	switch {
	case outcome == elle.Fail, outcome == elle.Info && op.Kind == "r":
		// Did not happen, or said nothing: not in the history.
	case outcome == elle.Info:
		out.Unknown = true
		w.ops = append(w.ops, porcupine.Operation{ClientId: process, Input: op, Call: w.stamp(call), Output: out, Return: 1 << 62, Metadata: node})
	default:
		w.ops = append(w.ops, porcupine.Operation{ClientId: process, Input: op, Call: w.stamp(call), Output: out, Return: w.stamp(ret), Metadata: node})
	}
	if err != nil {
		clientPause(ctx, rng)
	}
}

// guess is a recent value of the key (or 0), so that CASes often succeed.
func (w *register) guess(rng *rand.Rand, key int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.ops) - 1; i >= 0 && i > len(w.ops)-50; i-- {
		in, out := w.ops[i].Input.(regOp), w.ops[i].Output.(regOut)
		if in.Key != key || rng.IntN(3) == 0 {
			continue
		}
		if in.Kind == "r" {
			return out.Value
		}
		return in.Value
	}
	return 0
}

// definiteFailure: the statement certainly did not take effect (an error
// the node answers before ordering: refused, conflict, no quorum), as
// opposed to an outcome Lockstep itself calls unknown (1180, 1317), a
// shutdown or a broken connection.
func definiteFailure(err error) bool {
	switch e2e.ErrNumber(err) {
	case 0, 1180, 1317, 1053, 2006, 2013, 1158, 1159, 1160, 1161:
		return false
	}
	return true
}

func (w *register) outcomes() []outcomeAt {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]outcomeAt(nil), w.outs...)
}

var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[int][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(regOp).Key
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(by))
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(int), input.(regOp), output.(regOut)
		switch in.Kind {
		case "r":
			return out.Value == st, st
		case "w":
			return true, in.Value
		}
		if out.Unknown {
			if st == in.Old {
				return true, in.Value
			}
			return true, st
		}
		if out.OK {
			return st == in.Old, in.Value
		}
		return st != in.Old, st
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regOp), output.(regOut)
		switch {
		case in.Kind == "r":
			return fmt.Sprintf("read %d -> %d", in.Key, out.Value)
		case out.Unknown:
			return fmt.Sprintf("%s %d %d (old %d) -> unknown", in.Kind, in.Key, in.Value, in.Old)
		case in.Kind == "w":
			return fmt.Sprintf("write %d %d", in.Key, in.Value)
		}
		return fmt.Sprintf("cas %d %d->%d -> %v", in.Key, in.Old, in.Value, out.OK)
	},
	DescribeState: func(state any) string { return fmt.Sprint(state) },
}

// check adds a final read of every register on every node, then checks
// the history; a history that is not linearizable is written as
// porcupine's HTML visualisation and as text.
func (w *register) check(t *testing.T, c *e2e.Cluster) (anomalies, lost int) {
	for i, n := range c.Nodes {
		db := n.Open(t, w.dsn())
		for k := range w.keys {
			call := time.Now()
			var v int
			if err := db.QueryRow("SELECT v FROM r WHERE k = ?", k).Scan(&v); err != nil {
				t.Fatalf("%s: final read of %d: %v", n.ID, k, err)
			}
			w.ops = append(w.ops, porcupine.Operation{ClientId: 100 + i, Input: regOp{Kind: "r", Key: k}, Call: w.stamp(call), Output: regOut{OK: true, Value: v}, Return: w.stamp(time.Now()), Metadata: n.ID})
		}
	}
	res, info := porcupine.CheckOperationsVerbose(registerModel, w.ops, 5*time.Minute)
	t.Logf("register: %d operations in the history, linearizable: %s", len(w.ops), res)
	switch res {
	case porcupine.Ok:
		return 0, 0
	case porcupine.Unknown:
		t.Logf("register: the linearizability check timed out; nothing concluded")
		return 0, 0
	}
	dir := os.Getenv("LOCKSTEP_HISTORY_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	base := filepath.Join(dir, fmt.Sprintf("lockstep-history-register-%d", time.Now().Unix()))
	err := porcupine.VisualizePath(registerModel, info, base+".html")
	var b strings.Builder
	for _, op := range w.ops {
		fmt.Fprintf(&b, "process %d on %v [%d, %d] %s\n", op.ClientId, op.Metadata, op.Call, op.Return, registerModel.DescribeOperation(op.Input, op.Output))
	}
	err = errors.Join(err, os.WriteFile(base+".txt", []byte(b.String()), 0o644))
	t.Errorf("register: history not linearizable; see %s.html and %s.txt (%v)", base, base, err)
	return 1, 0
}
