package e2e_test

// Acceptance tests for explicit transactions (issue 3), each against a real
// 3-node cluster, with go-sql-driver clients through the nodes' SQL ports:
// the bank, lost-update and write-skew workloads, the statement-level
// semantics a MySQL user expects of InnoDB transactions, and an interactive
// mariadb client session.

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/e2e"
)

// The bank workload: small enough for 2 shared cores, big enough that
// transfers through different nodes touch the same accounts.
const (
	bankAccounts       = 20
	bankStartBalance   = 1000
	bankRun            = 12 * time.Second
	bankWritersPerNode = 3
	bankDSNParams      = "timeout=5s&readTimeout=30s&writeTimeout=30s"
)

var errInsufficient = errors.New("insufficient funds")

// transfer is one bank transfer; run is its transaction body, re-run
// unchanged on every retry.
type transfer struct {
	tid              string
	via              string
	src, dst, amount int
	variant          int // how it reads and writes, see run
}

// bankReads are the read variants 0-2; variant 3 reads both accounts in
// one statement.
var bankReads = [...]string{
	"SELECT balance FROM accounts WHERE id = ?",
	"SELECT balance FROM accounts WHERE id = ? FOR UPDATE",
	"SELECT balance FROM accounts WHERE id = ? LOCK IN SHARE MODE",
}

func (tr *transfer) run(ctx context.Context, tx *sql.Tx) error {
	var bs, bd int64
	if tr.variant < len(bankReads) {
		if err := tx.QueryRowContext(ctx, bankReads[tr.variant], tr.src).Scan(&bs); err != nil {
			return fmt.Errorf("read account %d: %w", tr.src, err)
		}
		if err := tx.QueryRowContext(ctx, bankReads[tr.variant], tr.dst).Scan(&bd); err != nil {
			return fmt.Errorf("read account %d: %w", tr.dst, err)
		}
	} else {
		rows, err := tx.QueryContext(ctx, "SELECT id, balance FROM accounts WHERE id IN (?, ?) ORDER BY id", tr.src, tr.dst)
		if err != nil {
			return fmt.Errorf("read accounts %d, %d: %w", tr.src, tr.dst, err)
		}
		seen := 0
		for rows.Next() {
			var id int
			var b int64
			if err := rows.Scan(&id, &b); err != nil {
				rows.Close()
				return err
			}
			seen++
			if id == tr.src {
				bs = b
			} else {
				bd = b
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read accounts %d, %d: %w", tr.src, tr.dst, err)
		}
		if seen != 2 {
			return fmt.Errorf("read accounts %d, %d: %d rows, want 2", tr.src, tr.dst, seen)
		}
	}
	if bs < int64(tr.amount) {
		return errInsufficient
	}
	if tr.variant == 2 {
		// Relative updates.
		if err := exec1(ctx, tx, "UPDATE accounts SET balance = balance - ? WHERE id = ?", tr.amount, tr.src); err != nil {
			return err
		}
		if err := exec1(ctx, tx, "UPDATE accounts SET balance = balance + ? WHERE id = ?", tr.amount, tr.dst); err != nil {
			return err
		}
	} else {
		// Read-modify-write: the new balances are computed by the client.
		if err := execAtMost1(ctx, tx, "UPDATE accounts SET balance = ? WHERE id = ?", bs-int64(tr.amount), tr.src); err != nil {
			return err
		}
		if err := execAtMost1(ctx, tx, "UPDATE accounts SET balance = ? WHERE id = ?", bd+int64(tr.amount), tr.dst); err != nil {
			return err
		}
	}
	return exec1(ctx, tx, "INSERT INTO transfers (tid, src, dst, amount, via) VALUES (?, ?, ?, ?, ?)", tr.tid, tr.src, tr.dst, tr.amount, tr.via)
}

// exec1 runs a statement in tx that must affect exactly one row.
func exec1(ctx context.Context, tx *sql.Tx, q string, args ...any) error {
	return execRows(ctx, tx, 1, 1, q, args...)
}

// execAtMost1 runs an UPDATE that sets a row to a value the client computed
// from an earlier read. As on InnoDB, it affects 0 rows when a concurrent
// commit already gave the row that value (an UPDATE reads the latest
// committed row, not the transaction's snapshot); COMMIT decides.
func execAtMost1(ctx context.Context, tx *sql.Tx, q string, args ...any) error {
	return execRows(ctx, tx, 0, 1, q, args...)
}

func execRows(ctx context.Context, tx *sql.Tx, lo, hi int64, q string, args ...any) error {
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	if n, err := res.RowsAffected(); err != nil || n < lo || n > hi {
		return fmt.Errorf("%s %v: %d rows affected (%v), want %d to %d", q, args, n, err, lo, hi)
	}
	return nil
}

var bankReadModes = [...]string{"autocommit SUM", "read-only transaction", "read-write transaction"}

// bankTotal reads the total balance in one snapshot, in one of three ways.
func bankTotal(db *sql.DB, mode int) (int64, error) {
	switch mode {
	case 0:
		ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
		defer cancel()
		var sum, n int64
		if err := db.QueryRowContext(ctx, "SELECT SUM(balance), COUNT(*) FROM accounts").Scan(&sum, &n); err != nil {
			return 0, err
		}
		if n != bankAccounts {
			return 0, fmt.Errorf("%d accounts, want %d", n, bankAccounts)
		}
		return sum, nil
	case 1:
		// Two halves in two statements: only a consistent snapshot adds up.
		var a, b int64
		err := tryTx(context.Background(), db, &sql.TxOptions{ReadOnly: true}, func(ctx context.Context, tx *sql.Tx) error {
			if err := tx.QueryRowContext(ctx, "SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE id <= ?", bankAccounts/2).Scan(&a); err != nil {
				return fmt.Errorf("first SELECT: %w", err)
			}
			if err := tx.QueryRowContext(ctx, "SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE id > ?", bankAccounts/2).Scan(&b); err != nil {
				return fmt.Errorf("second SELECT: %w", err)
			}
			return nil
		})
		return a + b, err
	default:
		// Row by row, then the server's SUM in the same transaction.
		var sum int64
		err := tryTx(context.Background(), db, nil, func(ctx context.Context, tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, "SELECT balance FROM accounts ORDER BY id")
			if err != nil {
				return fmt.Errorf("SELECT balance: %w", err)
			}
			n := 0
			for rows.Next() {
				var b int64
				if err := rows.Scan(&b); err != nil {
					rows.Close()
					return err
				}
				sum += b
				n++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("SELECT balance rows: %w", err)
			}
			if n != bankAccounts {
				return fmt.Errorf("%d accounts, want %d", n, bankAccounts)
			}
			var server int64
			if err := tx.QueryRowContext(ctx, "SELECT SUM(balance) FROM accounts").Scan(&server); err != nil {
				return fmt.Errorf("SELECT SUM: %w", err)
			}
			if server != sum {
				return fmt.Errorf("rows add up to %d but SUM(balance) in the same transaction is %d", sum, server)
			}
			return nil
		})
		return sum, err
	}
}

// TestTxBank: concurrent transfers through all three nodes, each a
// transaction that reads both balances, writes both and logs itself; 1213
// is retried. Readers on every node check the total in every snapshot they
// take. In the end every node is identical, the total is unchanged, every
// balance agrees with the transfer log, and every acknowledged transfer is
// in the log (and nothing that was never attempted).
func TestTxBank(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	var vals []string
	for i := 1; i <= bankAccounts; i++ {
		vals = append(vals, fmt.Sprintf("(%d, %d)", i, bankStartBalance))
	}
	setup(t, c,
		"CREATE DATABASE bank",
		"CREATE TABLE bank.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)",
		"CREATE TABLE bank.transfers (tid VARCHAR(40) PRIMARY KEY, src INT NOT NULL, dst INT NOT NULL, amount INT NOT NULL, via VARCHAR(8) NOT NULL)",
		"INSERT INTO bank.accounts (id, balance) VALUES "+strings.Join(vals, ", "))
	const total = bankAccounts * bankStartBalance

	var (
		mu          sync.Mutex
		attempted   = map[string]bool{}
		acked       = map[string]bool{}
		unknown     = map[string]error{}
		ackedByNode = map[string]int{}
		abandoned   int
		maxRetries  int
		retries     atomic.Int64
		short       atomic.Int64 // rolled back by the client: insufficient funds
		werrs       errorLog
		rerrs       errorLog
	)
	ctx, cancel := context.WithTimeout(context.Background(), bankRun)
	defer cancel()
	start := time.Now()
	var writers sync.WaitGroup
	for ni, n := range c.Nodes {
		for w := range bankWritersPerNode {
			path := "bank?" + bankDSNParams
			if w%2 == 1 {
				path += "&interpolateParams=true" // text protocol; the others use prepared statements
			}
			db := n.Open(t, path)
			writers.Add(1)
			go func() {
				defer writers.Done()
				rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(ni*100+w)))
				for seq := 1; ctx.Err() == nil; seq++ {
					tr := &transfer{tid: fmt.Sprintf("%s-w%d-%d", n.ID, w, seq), via: n.ID,
						src: 1 + rng.IntN(bankAccounts), amount: 1 + rng.IntN(50), variant: rng.IntN(4)}
					tr.dst = 1 + rng.IntN(bankAccounts-1)
					if tr.dst >= tr.src {
						tr.dst++
					}
					mu.Lock()
					attempted[tr.tid] = true
					mu.Unlock()
					r, err := runTx(ctx, db, nil, 1000, tr.run)
					retries.Add(int64(r))
					mu.Lock()
					maxRetries = max(maxRetries, r)
					switch {
					case err == nil:
						acked[tr.tid] = true
						ackedByNode[n.ID]++
					case errors.Is(err, errInsufficient):
						short.Add(1)
					case errors.Is(err, errGaveUp):
						abandoned++ // the run ended while it was being retried
					case atCommit(err) && outcomeUnknown(err):
						unknown[tr.tid] = err
					default:
						werrs.add("transfer %s (%d -> %d, variant %d) via %s: %v", tr.tid, tr.src, tr.dst, tr.variant, n.ID, err)
					}
					mu.Unlock()
				}
			}()
		}
	}

	stopReaders := make(chan struct{})
	var readers sync.WaitGroup
	reads := map[string]*[len(bankReadModes)]atomic.Int64{}
	for _, n := range c.Nodes {
		db := n.Open(t, "bank?"+bankDSNParams)
		cnt := new([len(bankReadModes)]atomic.Int64)
		reads[n.ID] = cnt
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; ; i++ {
				select {
				case <-stopReaders:
					return
				default:
				}
				mode := i % len(bankReadModes)
				sum, err := bankTotal(db, mode)
				if err != nil {
					rerrs.add("%s: %s: %v", n.ID, bankReadModes[mode], err)
					time.Sleep(10 * time.Millisecond) // back off; the error is already counted
					continue
				}
				if sum != total {
					rerrs.add("%s: %s: total %d, want %d", n.ID, bankReadModes[mode], sum, total)
				}
				cnt[mode].Add(1)
			}
		}()
	}
	writers.Wait()
	close(stopReaders)
	readers.Wait()
	elapsed := time.Since(start)

	attempts := len(acked) + int(retries.Load()) + len(unknown) + int(short.Load()) + abandoned
	t.Logf("bank: %d transfers acknowledged in %s (%.0f/s; by node %v), %d retries after 1213 (%.1f%% of %d attempts, at most %d for one transfer), %d outcome unknown, %d insufficient funds, %d abandoned at the deadline",
		len(acked), elapsed.Round(time.Millisecond), float64(len(acked))/elapsed.Seconds(), ackedByNode,
		retries.Load(), 100*float64(retries.Load())/float64(max(attempts, 1)), attempts, maxRetries, len(unknown), short.Load(), abandoned)
	for id, err := range unknown {
		t.Logf("transfer %s: outcome unknown: %v", id, err)
	}
	for _, n := range c.Nodes {
		var parts []string
		for m, name := range bankReadModes {
			k := reads[n.ID][m].Load()
			parts = append(parts, fmt.Sprintf("%s %d", name, k))
			if k == 0 {
				t.Errorf("%s: no successful %s read of the total during the run", n.ID, name)
			}
		}
		t.Logf("%s: total-balance reads: %s", n.ID, strings.Join(parts, ", "))
		if ackedByNode[n.ID] == 0 {
			t.Errorf("%s: no transfer through this node was acknowledged", n.ID)
		}
	}
	werrs.report(t, "transfers")
	rerrs.report(t, "total-balance readers")
	for _, n := range c.Nodes {
		if b, err := os.ReadFile(n.LogPath); err == nil && strings.Contains(string(b), "local apply failed") {
			t.Errorf("%s: the applier failed during the run (see its log)", n.ID)
		}
	}

	c.AssertIdentical(t)
	for _, n := range c.Nodes {
		got, err := backendStrings(n, "SELECT CONCAT(SUM(balance), ' ', COUNT(*), ' ', MIN(balance)) FROM bank.accounts")
		if err != nil {
			t.Fatal(err)
		}
		var sum, cnt, minBal int64
		if _, err := fmt.Sscan(got[0], &sum, &cnt, &minBal); err != nil || sum != total || cnt != bankAccounts || minBal < 0 {
			t.Errorf("%s: SUM(balance) COUNT(*) MIN(balance) = %s, want %d %d and a minimum >= 0", n.ID, got[0], total, bankAccounts)
		}
		// Every balance is its start plus what the log says came in, minus
		// what went out: no transfer is half applied.
		bad, err := backendStrings(n, fmt.Sprintf(`SELECT CONCAT('account ', a.id, ': balance ', a.balance, ', log says ', %d
			+ COALESCE((SELECT SUM(amount) FROM bank.transfers WHERE dst = a.id), 0)
			- COALESCE((SELECT SUM(amount) FROM bank.transfers WHERE src = a.id), 0))
			FROM bank.accounts a
			WHERE a.balance <> %d + COALESCE((SELECT SUM(amount) FROM bank.transfers WHERE dst = a.id), 0)
			- COALESCE((SELECT SUM(amount) FROM bank.transfers WHERE src = a.id), 0)`, bankStartBalance, bankStartBalance))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bad {
			t.Errorf("%s: balance and transfer log disagree: %s", n.ID, b)
		}
		tids, err := backendStrings(n, "SELECT tid FROM bank.transfers")
		if err != nil {
			t.Fatal(err)
		}
		present := map[string]bool{}
		for _, id := range tids {
			present[id] = true
			if !attempted[id] {
				t.Errorf("%s: transfer %s is in the log but was never attempted", n.ID, id)
			}
		}
		var missing []string
		for id := range acked {
			if !present[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			t.Errorf("%s: %d of %d acknowledged transfers are missing from the log, e.g. %v", n.ID, len(missing), len(acked), missing[:min(len(missing), 10)])
		}
		maybe := 0
		for id := range unknown {
			if present[id] {
				maybe++
			}
		}
		if extra := len(present) - len(acked) - maybe; extra != 0 {
			t.Errorf("%s: the log holds %d transfers: %d acknowledged, %d of %d with an unknown outcome, and %d others", n.ID, len(present), len(acked), maybe, len(unknown), extra)
		}
	}
}

// TestTxLostUpdate: read-modify-write increments of one counter through all
// three nodes (SELECT c, then UPDATE SET c = <what was read> + 1); 1213 is
// retried. No acknowledged increment is lost: the final value is the number
// of acknowledged commits on every node, and no two acknowledged commits
// wrote the same value.
func TestTxLostUpdate(t *testing.T) {
	const (
		workersPerNode   = 3
		commitsPerWorker = 15
		run              = 30 * time.Second
	)
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c,
		"CREATE DATABASE lu",
		"CREATE TABLE lu.counter (id INT PRIMARY KEY, c BIGINT NOT NULL)",
		"INSERT INTO lu.counter VALUES (1, 0)")

	var (
		mu          sync.Mutex
		written     []int64 // the value each acknowledged commit wrote
		ackedByNode = map[string]int{}
		unknown     int
		retries     atomic.Int64
		errs        errorLog
	)
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		for w := range workersPerNode {
			path := "lu?" + bankDSNParams
			read := "SELECT c FROM counter WHERE id = 1"
			if w%2 == 1 {
				path += "&interpolateParams=true"
				read += " FOR UPDATE"
			}
			db := n.Open(t, path)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for done := 0; done < commitsPerWorker && ctx.Err() == nil; {
					var wrote int64
					r, err := runTx(ctx, db, nil, 10000, func(ctx context.Context, tx *sql.Tx) error {
						var v int64
						if err := tx.QueryRowContext(ctx, read).Scan(&v); err != nil {
							return fmt.Errorf("%s: %w", read, err)
						}
						wrote = v + 1
						return execAtMost1(ctx, tx, "UPDATE counter SET c = ? WHERE id = 1", wrote)
					})
					retries.Add(int64(r))
					mu.Lock()
					switch {
					case err == nil:
						written = append(written, wrote)
						ackedByNode[n.ID]++
						done++
					case errors.Is(err, errGaveUp):
					case atCommit(err) && outcomeUnknown(err):
						unknown++
						t.Logf("increment via %s: outcome unknown: %v", n.ID, err)
					default:
						errs.add("increment via %s: %v", n.ID, err)
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("lost update: %d increments acknowledged in %s (by node %v), %d retries after 1213, %d outcome unknown",
		len(written), time.Since(start).Round(time.Millisecond), ackedByNode, retries.Load(), unknown)
	errs.report(t, "increments")
	for _, n := range c.Nodes {
		if ackedByNode[n.ID] == 0 {
			t.Errorf("%s: no increment through this node was acknowledged", n.ID)
		}
	}
	slices.Sort(written)
	for i := 1; i < len(written); i++ {
		if written[i] == written[i-1] {
			t.Errorf("two acknowledged commits both wrote c = %d: one increment was lost", written[i])
		}
	}
	c.AssertIdentical(t)
	for _, n := range c.Nodes {
		got, err := backendStrings(n, "SELECT c FROM lu.counter WHERE id = 1")
		if err != nil {
			t.Fatal(err)
		}
		var v int
		fmt.Sscan(got[0], &v)
		if v < len(written) || v > len(written)+unknown {
			t.Errorf("%s: counter is %d after %d acknowledged increments (and %d with an unknown outcome)", n.ID, v, len(written), unknown)
		}
	}
	if unknown == 0 && len(written) > 0 && (written[0] != 1 || written[len(written)-1] != int64(len(written))) {
		t.Errorf("acknowledged commits wrote %d..%d, want 1..%d", written[0], written[len(written)-1], len(written))
	}
}

// TestTxWriteSkew: "two doctors on call". Each round both doctors are on
// call; two transactions through different nodes each read how many are on
// call (both read 2: a barrier holds both until both have read) and then
// take their own doctor off call. Serializable execution lets exactly one of
// them commit; the other gets 1213, and its retry reads 1 and leaves its
// doctor on call. Never are both off call.
func TestTxWriteSkew(t *testing.T) {
	const rounds = 15
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c,
		"CREATE DATABASE ws",
		"CREATE TABLE ws.doctors (name VARCHAR(10) PRIMARY KEY, on_call BOOL NOT NULL)",
		"INSERT INTO ws.doctors VALUES ('alice', 1), ('bob', 1)")
	dbs := map[*e2e.Node]*sql.DB{}
	for _, n := range c.Nodes {
		dbs[n] = n.Open(t, "ws?"+bankDSNParams)
	}
	onCall := func(n *e2e.Node) (int64, error) {
		var k int64
		err := dbs[n].QueryRow("SELECT COUNT(*) FROM doctors WHERE on_call").Scan(&k)
		return k, err
	}
	type result struct {
		wentOff   bool
		conflicts int
		err       error
	}
	// offCall is one doctor's transaction, retried on 1213; only the first
	// attempt waits at the barrier.
	offCall := func(db *sql.DB, me string, b *barrier) (res result) {
		first := true
		for attempt := 1; attempt <= 20; attempt++ {
			res.wentOff = false
			err := tryTx(context.Background(), db, nil, func(ctx context.Context, tx *sql.Tx) error {
				var k int64
				if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM doctors WHERE on_call").Scan(&k); err != nil {
					return err
				}
				if first {
					first = false
					if k != 2 {
						b.breakBarrier()
						return fmt.Errorf("first read: %d on call, want 2 (the round's reset was applied here)", k)
					}
					if !b.wait(stmtTimeout) {
						return errors.New("the other doctor's transaction failed before its read")
					}
				}
				if k >= 2 {
					res.wentOff = true
					return exec1(ctx, tx, "UPDATE doctors SET on_call = 0 WHERE name = ?", me)
				}
				return nil
			})
			if first {
				b.breakBarrier() // failed before reaching the barrier
				first = false
			}
			if err == nil {
				return res
			}
			if err := checkConflict(err); err != nil {
				res.err = err
				return res
			}
			res.conflicts++
		}
		res.err = fmt.Errorf("still 1213 after %d attempts", res.conflicts)
		return res
	}

	conflicts := 0
	for r := range rounds {
		na, nb := c.Nodes[r%3], c.Nodes[(r+1)%3]
		if r > 0 {
			mustExec(t, dbs[na], "UPDATE doctors SET on_call = 1")
			// Acknowledged through na means applied on na; wait for nb too.
			e2e.Eventually(t, 30*time.Second, nb.ID+" applied the reset", func() error {
				k, err := onCall(nb)
				if err == nil && k != 2 {
					err = fmt.Errorf("%d on call", k)
				}
				return err
			})
		}
		b := newBarrier(2)
		var alice, bob result
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); alice = offCall(dbs[na], "alice", b) }()
		go func() { defer wg.Done(); bob = offCall(dbs[nb], "bob", b) }()
		wg.Wait()
		if alice.err != nil || bob.err != nil {
			t.Fatalf("round %d: alice via %s: %v; bob via %s: %v", r, na.ID, alice.err, nb.ID, bob.err)
		}
		if alice.wentOff && bob.wentOff {
			t.Fatalf("round %d: write skew: both doctors went off call (alice via %s, bob via %s)", r, na.ID, nb.ID)
		}
		if !alice.wentOff && !bob.wentOff {
			t.Errorf("round %d: neither doctor went off call, though both read 2 on call; the first transaction in log order should have committed (%d+%d conflicts)", r, alice.conflicts, bob.conflicts)
		}
		c.WaitConverged()
		for _, n := range c.Nodes {
			got, err := backendStrings(n, "SELECT COUNT(*) FROM ws.doctors WHERE on_call")
			if err != nil {
				t.Fatal(err)
			}
			if got[0] == "0" {
				t.Fatalf("round %d: write skew: nobody is on call on %s (alice via %s, bob via %s)", r, n.ID, na.ID, nb.ID)
			}
			if got[0] != "1" {
				t.Errorf("round %d: %s: %s doctors on call after one went off call, want 1", r, n.ID, got[0])
			}
		}
		conflicts += alice.conflicts + bob.conflicts
	}
	t.Logf("write skew: %d rounds, %d conflicts (1213) retried", rounds, conflicts)
	c.AssertIdentical(t)
	assertEverywhere(t, c, "SELECT COUNT(*) FROM ws.doctors WHERE on_call", "1")
}

// TestTxConflictRetry: a transaction whose reads were changed by a write
// committed through another node before its COMMIT gets 1213 (SQLSTATE
// 40001) at COMMIT and leaves no trace on any node; retrying it succeeds.
func TestTxConflictRetry(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c,
		"CREATE DATABASE cr",
		"CREATE TABLE cr.t (id INT PRIMARY KEY, v INT NOT NULL)",
		"CREATE TABLE cr.markers (tag VARCHAR(40) PRIMARY KEY)",
		"INSERT INTO cr.t VALUES (1, 0), (2, 0), (3, 5)")
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	db1 := n1.Open(t, "cr")
	x := openSession(t, db1, "x via "+n1.ID)

	// 1. A stale read: x reads row 1 (no lock), row 1 changes through n2,
	// x writes elsewhere based on what it read.
	x.exec("BEGIN")
	v := x.int("SELECT v FROM t WHERE id = 1")
	x.execAffected(1, "INSERT INTO markers VALUES ('stale-read')")
	x.execAffected(1, "UPDATE t SET v = ? WHERE id = 2", v+1)
	if got := x.int("SELECT COUNT(*) FROM markers WHERE tag = 'stale-read'"); got != 1 {
		t.Fatalf("x does not see its own insert: %d rows", got)
	}
	// Acknowledged before x's COMMIT is sent, so ordered before it.
	mustExec(t, n2.Open(t, "cr"), "UPDATE t SET v = 10 WHERE id = 1")
	_, err := x.try("COMMIT")
	if err := checkConflict(err); err != nil {
		t.Fatalf("COMMIT after a stale read: %v", err)
	}
	t.Logf("COMMIT after a stale read: %v", err)
	if got := x.int("SELECT COUNT(*) FROM markers"); got != 0 {
		t.Errorf("after 1213 at COMMIT the session still sees %d marker rows", got)
	}
	assertEverywhere(t, c, "SELECT CONCAT(id, '=', v) FROM cr.t", "1=10", "2=0", "3=5")
	assertEverywhere(t, c, "SELECT tag FROM cr.markers")

	// The client retries the whole transaction and succeeds.
	r, err := runTx(context.Background(), db1, nil, 10, func(ctx context.Context, tx *sql.Tx) error {
		var v int64
		if err := tx.QueryRowContext(ctx, "SELECT v FROM t WHERE id = 1").Scan(&v); err != nil {
			return err
		}
		if err := exec1(ctx, tx, "INSERT INTO markers VALUES ('retried')"); err != nil {
			return err
		}
		return exec1(ctx, tx, "UPDATE t SET v = ? WHERE id = 2", v+1)
	})
	if err != nil {
		t.Fatalf("retried transaction: %v (after %d retries)", err, r)
	}
	assertEverywhere(t, c, "SELECT CONCAT(id, '=', v) FROM cr.t", "1=10", "2=11", "3=5")
	assertEverywhere(t, c, "SELECT tag FROM cr.markers", "retried")

	// 2. A different affected-row count: x's UPDATE matched one row; a
	// write through n3 makes it match two before x commits.
	x.exec("BEGIN")
	x.execAffected(1, "INSERT INTO markers VALUES ('row-count')")
	x.execAffected(1, "UPDATE t SET v = v + 100 WHERE v BETWEEN 10 AND 10")
	mustExec(t, n3.Open(t, "cr"), "UPDATE t SET v = 10 WHERE id = 3")
	_, err = x.try("SELECT 1")
	if err == nil {
		_, err = x.try("COMMIT")
	} else {
		x.exec("ROLLBACK")
	}
	if err := checkConflict(err); err != nil {
		t.Fatalf("transaction whose UPDATE now matches more rows: %v", err)
	}
	assertEverywhere(t, c, "SELECT CONCAT(id, '=', v) FROM cr.t", "1=10", "2=11", "3=10")
	assertEverywhere(t, c, "SELECT tag FROM cr.markers", "retried")

	// 3. A statement error inside a transaction does not end it, as in
	// MariaDB: COMMIT keeps the other statements.
	x.exec("BEGIN")
	x.mustFail(1062, "INSERT INTO markers VALUES ('retried')")
	x.execAffected(1, "INSERT INTO markers VALUES ('after 1062')")
	if _, err := x.try("COMMIT"); err != nil {
		t.Fatalf("COMMIT of a transaction in which one statement failed with 1062: %v", err)
	}
	assertEverywhere(t, c, "SELECT tag FROM cr.markers", "retried", "after 1062")

	// 4. The error is part of what the client saw: the row that made the
	// INSERT fail is deleted through n2 before COMMIT, so the transaction
	// would now run differently.
	x.exec("BEGIN")
	x.mustFail(1062, "INSERT INTO markers VALUES ('retried')")
	x.execAffected(1, "INSERT INTO markers VALUES ('error changed')")
	mustExec(t, n2.Open(t, "cr"), "DELETE FROM markers WHERE tag = 'retried'")
	_, err = x.try("SELECT 1")
	if err == nil {
		_, err = x.try("COMMIT")
	} else {
		x.exec("ROLLBACK")
	}
	if err := checkConflict(err); err != nil {
		t.Fatalf("transaction whose failed INSERT would now succeed: %v", err)
	}
	assertEverywhere(t, c, "SELECT tag FROM cr.markers", "after 1062")
	c.AssertIdentical(t)
}

// TestTxNoTrace: ROLLBACK, a client that disconnects with a transaction
// open, and a client whose connection is reset leave nothing on any node,
// and no lock behind on the origin's database.
func TestTxNoTrace(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c,
		"CREATE DATABASE nt",
		"CREATE TABLE nt.t (id INT PRIMARY KEY, v INT NOT NULL)",
		"CREATE TABLE nt.markers (tag VARCHAR(40) PRIMARY KEY)",
		"INSERT INTO nt.t VALUES (1, 0), (2, 0), (3, 0)")
	n1 := c.Nodes[0]
	db := n1.Open(t, "nt")

	s := openSession(t, db, "rollback")
	s.exec("BEGIN")
	s.execAffected(1, "INSERT INTO markers VALUES ('rolled-back')")
	s.execAffected(1, "UPDATE t SET v = 99 WHERE id = 1")
	if got := s.strings("SELECT CONCAT(id, '=', v) FROM t WHERE id = 1"); !slices.Equal(got, []string{"1=99"}) {
		t.Errorf("own write inside the transaction: %q, want [1=99]", got)
	}
	s.exec("ROLLBACK")
	if got := s.strings("SELECT CONCAT(id, '=', v) FROM t WHERE id = 1"); !slices.Equal(got, []string{"1=0"}) {
		t.Errorf("after ROLLBACK: %q, want [1=0]", got)
	}
	if got := s.int("SELECT COUNT(*) FROM markers"); got != 0 {
		t.Errorf("after ROLLBACK: %d markers, want 0", got)
	}

	// A client that closes its connection (COM_QUIT) in a transaction.
	q := openSession(t, db, "quit")
	q.exec("BEGIN")
	q.execAffected(1, "INSERT INTO markers VALUES ('quit')")
	q.execAffected(1, "UPDATE t SET v = 98 WHERE id = 2")
	q.close()

	// A client whose connection is reset (no COM_QUIT).
	registerAbruptDialer()
	rdb := e2e.OpenDB(t, fmt.Sprintf("%s:%s@txabrupt(%s)/nt", e2e.AppUser, c.Password, n1.SQLAddr))
	r := openSession(t, rdb, "reset")
	r.exec("BEGIN")
	r.execAffected(1, "INSERT INTO markers VALUES ('reset')")
	r.execAffected(1, "UPDATE t SET v = 97 WHERE id = 3")
	if k := resetAbruptConns(n1.SQLAddr); k != 1 {
		t.Fatalf("reset %d connections, want 1", k)
	}

	// The proxy notices the disconnects by itself: wait until n1's database
	// holds no lock on the rows those transactions wrote.
	e2e.Eventually(t, 20*time.Second, n1.ID+"'s database releases the disconnected transactions' locks", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
		defer cancel()
		tx, err := n1.BackendDB().BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, stmt := range []string{
			"SELECT id FROM nt.t WHERE id IN (2, 3) FOR UPDATE NOWAIT",
			"SELECT tag FROM nt.markers WHERE tag IN ('quit', 'reset') FOR UPDATE NOWAIT",
		} {
			rows, err := tx.QueryContext(ctx, stmt)
			if err != nil {
				return fmt.Errorf("%s: %w", stmt, err)
			}
			rows.Close()
		}
		return nil
	})
	// A write through the same node to the same rows goes through.
	mustExec(t, db, "UPDATE t SET v = v + 1")
	assertEverywhere(t, c, "SELECT CONCAT(id, '=', v) FROM nt.t", "1=1", "2=1", "3=1")
	assertEverywhere(t, c, "SELECT tag FROM nt.markers")
	c.AssertIdentical(t)
}

// TestTxSavepoints: SAVEPOINT, ROLLBACK TO SAVEPOINT and RELEASE SAVEPOINT
// behave as on MariaDB, and what the transaction commits is what every node
// holds.
func TestTxSavepoints(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c, "CREATE DATABASE sp", "CREATE TABLE sp.t (id INT PRIMARY KEY, v INT NOT NULL)")
	s := openSession(t, c.Nodes[1].Open(t, "sp"), "savepoints via "+c.Nodes[1].ID)
	rowsNow := func(want ...string) {
		t.Helper()
		if got := s.strings("SELECT CONCAT(id, '=', v) FROM t ORDER BY id"); !slices.Equal(got, want) {
			t.Fatalf("inside the transaction: rows %q, want %q", got, want)
		}
	}
	s.exec("BEGIN")
	s.execAffected(1, "INSERT INTO t VALUES (1, 10)")
	s.exec("SAVEPOINT a")
	s.execAffected(1, "INSERT INTO t VALUES (2, 20)")
	s.execAffected(1, "UPDATE t SET v = 11 WHERE id = 1")
	s.exec("SAVEPOINT b")
	s.execAffected(1, "INSERT INTO t VALUES (3, 30)")
	rowsNow("1=11", "2=20", "3=30")
	s.exec("ROLLBACK TO SAVEPOINT a")
	rowsNow("1=10")
	s.mustFail(1305, "ROLLBACK TO SAVEPOINT b") // b was set after a: gone, as in MariaDB
	s.execAffected(1, "INSERT INTO t VALUES (4, 40)")
	s.exec("SAVEPOINT c")
	s.execAffected(1, "UPDATE t SET v = 41 WHERE id = 4")
	s.exec("RELEASE SAVEPOINT c")
	s.mustFail(1305, "ROLLBACK TO SAVEPOINT c")
	s.exec("SAVEPOINT a") // a name set again moves the savepoint
	s.execAffected(1, "INSERT INTO t VALUES (5, 50)")
	s.exec("ROLLBACK TO a")
	rowsNow("1=10", "4=41")
	s.exec("COMMIT")
	assertEverywhere(t, c, "SELECT CONCAT(id, '=', v) FROM sp.t", "1=10", "4=41")

	// Savepoints in a transaction that is rolled back as a whole.
	s.exec("BEGIN")
	s.execAffected(1, "INSERT INTO t VALUES (6, 60)")
	s.exec("SAVEPOINT x")
	s.execAffected(1, "DELETE FROM t WHERE id = 1")
	s.exec("RELEASE SAVEPOINT x")
	s.exec("ROLLBACK")
	rowsNow("1=10", "4=41")
	// ... and one through another node whose savepoint undid its only
	// write before COMMIT.
	s2 := openSession(t, c.Nodes[2].Open(t, "sp"), "savepoints via "+c.Nodes[2].ID)
	s2.exec("START TRANSACTION")
	s2.exec("SAVEPOINT only")
	s2.execAffected(1, "UPDATE t SET v = 0 WHERE id = 4")
	s2.exec("ROLLBACK TO SAVEPOINT only")
	s2.execAffected(1, "UPDATE t SET v = 12 WHERE id = 1")
	s2.exec("COMMIT")
	assertEverywhere(t, c, "SELECT CONCAT(id, '=', v) FROM sp.t", "1=12", "4=41")
	c.AssertIdentical(t)
}

// TestTxAutocommitOff: a session with SET autocommit=0 runs its statements
// in transactions that COMMIT and ROLLBACK end; SET autocommit=1 commits
// the open one (as in MariaDB); a conflict gets 1213 at COMMIT and the next
// transaction starts clean.
func TestTxAutocommitOff(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c,
		"CREATE DATABASE ac",
		"CREATE TABLE ac.t (id INT PRIMARY KEY, note VARCHAR(40) NOT NULL)",
		"INSERT INTO ac.t VALUES (100, 'seed')")
	n3 := c.Nodes[2]
	s := openSession(t, n3.Open(t, "ac"), "autocommit=0 via "+n3.ID)
	s.exec("SET autocommit = 0")
	if got := s.int("SELECT @@autocommit"); got != 0 {
		t.Fatalf("@@autocommit = %d after SET autocommit = 0", got)
	}
	s.execAffected(1, "INSERT INTO t VALUES (1, 'committed')")
	s.execAffected(1, "UPDATE t SET note = 'committed too' WHERE id = 100")
	if got := s.strings("SELECT note FROM t ORDER BY id"); !slices.Equal(got, []string{"committed", "committed too"}) {
		t.Errorf("own writes: %q", got)
	}
	s.exec("COMMIT")
	s.execAffected(1, "INSERT INTO t VALUES (2, 'rolled back')")
	s.execAffected(1, "DELETE FROM t WHERE id = 1")
	s.exec("ROLLBACK")
	if got := s.int("SELECT COUNT(*) FROM t"); got != 2 {
		t.Errorf("after ROLLBACK the session sees %d rows, want 2", got)
	}
	s.execAffected(1, "INSERT INTO t VALUES (3, 'committed by SET autocommit=1')")
	s.exec("SET autocommit = 1")
	s.execAffected(1, "INSERT INTO t VALUES (4, 'autocommit')")
	s.exec("ROLLBACK") // nothing to roll back
	assertEverywhere(t, c, "SELECT CONCAT(id, ':', note) FROM ac.t",
		"1:committed", "100:committed too", "3:committed by SET autocommit=1", "4:autocommit")

	// A conflict in autocommit=0 mode: the stale read's transaction gets
	// 1213 at COMMIT; the next one (implicitly begun) commits.
	s.exec("SET autocommit = 0")
	note := s.strings("SELECT note FROM t WHERE id = 4")
	mustExec(t, c.Nodes[0].Open(t, "ac"), "UPDATE t SET note = 'changed elsewhere' WHERE id = 4")
	s.execAffected(1, "INSERT INTO t VALUES (5, ?)", "copy of "+note[0])
	_, err := s.try("COMMIT")
	if err := checkConflict(err); err != nil {
		t.Fatalf("autocommit=0, COMMIT after a stale read: %v", err)
	}
	note = s.strings("SELECT note FROM t WHERE id = 4")
	s.execAffected(1, "INSERT INTO t VALUES (5, ?)", "copy of "+note[0])
	s.exec("COMMIT")
	s.exec("SET autocommit = 1")
	assertEverywhere(t, c, "SELECT note FROM ac.t WHERE id IN (4, 5)", "changed elsewhere", "copy of changed elsewhere")
	c.AssertIdentical(t)
}

// TestTxImplicitCommit: DDL inside a transaction commits it first, as in
// MariaDB, and the statements after it run in autocommit mode (or, with
// autocommit=0, in a new transaction); BEGIN inside a transaction commits it.
func TestTxImplicitCommit(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c, "CREATE DATABASE ic", "CREATE TABLE ic.markers (tag VARCHAR(40) PRIMARY KEY)")
	s := openSession(t, c.Nodes[1].Open(t, "ic"), "implicit commits via "+c.Nodes[1].ID)

	s.exec("BEGIN")
	s.execAffected(1, "INSERT INTO markers VALUES ('before DDL')")
	s.exec("CREATE TABLE made_in_tx (i INT PRIMARY KEY)")
	s.execAffected(1, "INSERT INTO markers VALUES ('after DDL, autocommit')")
	s.exec("ROLLBACK") // nothing open any more

	s.exec("SET autocommit = 0")
	s.execAffected(1, "INSERT INTO markers VALUES ('before DDL, autocommit=0')")
	s.exec("ALTER TABLE made_in_tx ADD COLUMN j INT")
	s.execAffected(1, "INSERT INTO markers VALUES ('after DDL, rolled back')")
	s.exec("ROLLBACK")
	s.exec("SET autocommit = 1")

	s.exec("BEGIN")
	s.execAffected(1, "INSERT INTO markers VALUES ('before second BEGIN')")
	s.exec("BEGIN")
	s.execAffected(1, "INSERT INTO markers VALUES ('after second BEGIN')")
	s.exec("ROLLBACK")

	assertEverywhere(t, c, "SELECT tag FROM ic.markers",
		"before DDL", "after DDL, autocommit", "before DDL, autocommit=0", "before second BEGIN")
	assertEverywhere(t, c, "SELECT GROUP_CONCAT(column_name ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'ic' AND table_name = 'made_in_tx'", "i,j")
	c.AssertIdentical(t)
}

// TestTxPreparedStatements: server-side prepared statements (binary
// protocol, prepared before and inside the transaction) and SQL PREPARE /
// EXECUTE inside transactions: committed, rolled back and conflicting.
func TestTxPreparedStatements(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c,
		"CREATE DATABASE ps",
		"CREATE TABLE ps.items (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL, qty INT NOT NULL)")
	n2 := c.Nodes[1]
	db := n2.Open(t, "ps") // no interpolateParams: arguments go through COM_STMT_PREPARE/EXECUTE
	s := openSession(t, db, "prepared via "+n2.ID)
	ctx := context.Background()
	prepare := func(q string) *sql.Stmt {
		t.Helper()
		st, err := s.conn.PrepareContext(ctx, q)
		if err != nil {
			t.Fatalf("prepare %s: %v", q, err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	run := func(st *sql.Stmt, want int64, args ...any) {
		t.Helper()
		res, err := st.ExecContext(ctx, args...)
		if err != nil {
			t.Fatalf("execute %v: %v", args, err)
		}
		if n, _ := res.RowsAffected(); n != want {
			t.Fatalf("execute %v: %d rows affected, want %d", args, n, want)
		}
	}
	qty := func(st *sql.Stmt, id int) (int64, error) {
		var q int64
		err := st.QueryRowContext(ctx, id).Scan(&q)
		return q, err
	}

	ins := prepare("INSERT INTO items (id, name, qty) VALUES (?, ?, ?)") // before BEGIN
	s.exec("BEGIN")
	run(ins, 1, 1, "apple", 3)
	run(ins, 1, 2, "pear", 5)
	upd := prepare("UPDATE items SET qty = qty + ? WHERE id = ?") // inside the transaction
	run(upd, 1, 10, 1)
	sel := prepare("SELECT qty FROM items WHERE id = ?")
	if q, err := qty(sel, 1); err != nil || q != 13 {
		t.Fatalf("prepared read of an own write: %d, %v; want 13", q, err)
	}
	// SQL-level PREPARE gets the same answer inside a transaction as
	// outside (Lockstep refuses it today), and the transaction carries on.
	_, outside := openSession(t, db, "outside").try("PREPARE del FROM 'DELETE FROM items WHERE id = ?'")
	_, inside := s.try("PREPARE del FROM 'DELETE FROM items WHERE id = ?'")
	if e2e.ErrNumber(inside) != e2e.ErrNumber(outside) || (inside == nil) != (outside == nil) {
		t.Errorf("SQL PREPARE in a transaction: %v; outside one: %v", inside, outside)
	}
	if outside == nil {
		s.exec("SET @victim = 2")
		s.execAffected(1, "EXECUTE del USING @victim")
		s.exec("DEALLOCATE PREPARE del")
	} else {
		run(prepare("DELETE FROM items WHERE id = ?"), 1, 2)
	}
	s.exec("COMMIT")
	assertEverywhere(t, c, "SELECT CONCAT(id, '|', name, '|', qty) FROM ps.items", "1|apple|13")

	s.exec("BEGIN")
	run(ins, 1, 3, "plum", 7)
	run(upd, 1, 100, 1)
	s.exec("ROLLBACK")
	run(ins, 1, 4, "fig", 1) // autocommit, after the transaction
	assertEverywhere(t, c, "SELECT CONCAT(id, '|', name, '|', qty) FROM ps.items", "1|apple|13", "4|fig|1")

	// A conflict with prepared statements: the read is stale by COMMIT.
	s.exec("BEGIN")
	q, err := qty(sel, 1)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, c.Nodes[0].Open(t, "ps"), "UPDATE items SET qty = 0 WHERE id = 1")
	_, err = ins.ExecContext(ctx, 5, "copy", q)
	if err == nil {
		_, err = s.try("COMMIT")
	} else {
		s.exec("ROLLBACK")
	}
	if err := checkConflict(err); err != nil {
		t.Fatalf("prepared statements after a stale read: %v", err)
	}
	// The retry, as database/sql transactions with prepared statements.
	if _, err := runTx(ctx, db, nil, 10, func(ctx context.Context, tx *sql.Tx) error {
		var q int64
		if err := tx.QueryRowContext(ctx, "SELECT qty FROM items WHERE id = ?", 1).Scan(&q); err != nil {
			return err
		}
		return exec1(ctx, tx, "INSERT INTO items (id, name, qty) VALUES (?, ?, ?)", 5, "copy", q)
	}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	assertEverywhere(t, c, "SELECT CONCAT(id, '|', name, '|', qty) FROM ps.items", "1|apple|0", "4|fig|1", "5|copy|0")
	c.AssertIdentical(t)
}

// TestTxLockingReads: SELECT ... FOR UPDATE and LOCK IN SHARE MODE inside
// transactions return the rows and lock them as on MariaDB; FOR SHARE gets
// what MariaDB itself answers; a transaction whose locked read is
// overwritten through another node gets 1213.
func TestTxLockingReads(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c,
		"CREATE DATABASE lr",
		"CREATE TABLE lr.t (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO lr.t VALUES (1, 10), (2, 20), (3, 30)")
	n1 := c.Nodes[0]
	db := n1.Open(t, "lr")
	s := openSession(t, db, "locking reads via "+n1.ID)
	s.exec("BEGIN")
	if got := s.strings("SELECT v FROM t WHERE id = 1 FOR UPDATE"); !slices.Equal(got, []string{"10"}) {
		t.Errorf("FOR UPDATE: %q", got)
	}
	if got := s.strings("SELECT v FROM t WHERE id = 2 LOCK IN SHARE MODE"); !slices.Equal(got, []string{"20"}) {
		t.Errorf("LOCK IN SHARE MODE: %q", got)
	}
	_, direct := n1.BackendDB().Exec("SELECT v FROM lr.t WHERE id = 3 FOR SHARE")
	_, proxied := s.try("SELECT v FROM t WHERE id = 3 FOR SHARE")
	if e2e.ErrNumber(proxied) != e2e.ErrNumber(direct) || (proxied == nil) != (direct == nil) {
		t.Errorf("FOR SHARE inside a transaction: %v; MariaDB itself answers %v", proxied, direct)
	}
	// Another session on the same node cannot take the lock (NOWAIT
	// outside a transaction: inside one, Lockstep refuses it).
	o := openSession(t, db, "other via "+n1.ID)
	o.mustFail(1205, "SELECT v FROM t WHERE id = 1 FOR UPDATE NOWAIT")
	s.execAffected(1, "UPDATE t SET v = v + 1 WHERE id = 1")
	s.exec("COMMIT")
	assertEverywhere(t, c, "SELECT CONCAT(id, '=', v) FROM lr.t", "1=11", "2=20", "3=30")

	// The shared-locked row is overwritten through n2 before COMMIT.
	s.exec("BEGIN")
	if got := s.strings("SELECT v FROM t WHERE id = 2 LOCK IN SHARE MODE"); !slices.Equal(got, []string{"20"}) {
		t.Errorf("LOCK IN SHARE MODE: %q", got)
	}
	s.execAffected(1, "UPDATE t SET v = 21 WHERE id = 3")
	ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
	defer cancel()
	if _, err := c.Nodes[1].Open(t, "lr").ExecContext(ctx, "UPDATE t SET v = 200 WHERE id = 2"); err != nil {
		t.Fatalf("write through %s to a row locked on %s: %v", c.Nodes[1].ID, n1.ID, err)
	}
	e2e.Eventually(t, 20*time.Second, n1.ID+" applies the write despite the shared lock", func() error {
		got, err := backendStrings(n1, "SELECT v FROM lr.t WHERE id = 2")
		if err == nil && got[0] != "200" {
			err = fmt.Errorf("v = %s", got[0])
		}
		return err
	})
	_, err := s.try("COMMIT")
	if err := checkConflict(err); err != nil {
		t.Fatalf("COMMIT after the shared-locked row was overwritten: %v", err)
	}
	assertEverywhere(t, c, "SELECT CONCAT(id, '=', v) FROM lr.t", "1=11", "2=200", "3=30")
	c.AssertIdentical(t)
}

// TestTxReadOnly: START TRANSACTION READ ONLY (and the driver's read-only
// transactions), WITH CONSISTENT SNAPSHOT and transactions that only read
// work, see one snapshot, refuse writes as MariaDB does, and are never
// ordered (no node is handed a client entry).
func TestTxReadOnly(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c,
		"CREATE DATABASE ro",
		"CREATE TABLE ro.t (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO ro.t VALUES (1, 1), (2, 2)")
	n2 := c.Nodes[1]
	db := n2.Open(t, "ro")
	s := openSession(t, db, "read-only via "+n2.ID)

	before := c.ClientEntries()
	for range 3 {
		s.exec("START TRANSACTION READ ONLY")
		if got := s.int("SELECT SUM(v) FROM t"); got != 3 {
			t.Errorf("read-only transaction: SUM(v) = %d, want 3", got)
		}
		err := s.mustFail(1792, "INSERT INTO t VALUES (9, 9)")
		if sqlState(err) != "25006" {
			t.Errorf("write in a read-only transaction: SQLSTATE %q, want 25006", sqlState(err))
		}
		s.exec("COMMIT")
		for _, begin := range []string{"START TRANSACTION WITH CONSISTENT SNAPSHOT", "START TRANSACTION READ WRITE", "BEGIN"} {
			s.exec(begin)
			if got := s.int("SELECT COUNT(*) FROM t"); got != 2 {
				t.Errorf("%s: COUNT(*) = %d, want 2", begin, got)
			}
			s.exec("COMMIT")
		}
		s.exec("BEGIN")
		s.int("SELECT v FROM t WHERE id = 1 FOR UPDATE")
		s.exec("ROLLBACK")
		err = tryTx(context.Background(), db, &sql.TxOptions{ReadOnly: true}, func(ctx context.Context, tx *sql.Tx) error {
			var k int
			return tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM t WHERE id = ?", 1).Scan(&k)
		})
		if err != nil {
			t.Errorf("database/sql read-only transaction: %v", err)
		}
	}
	for _, n := range c.Nodes {
		st := n.MustStatus(t)
		if st.ClientEntries != before[n.ID] {
			t.Errorf("%s: client entries went from %d to %d during read-only transactions: something was ordered", n.ID, before[n.ID], st.ClientEntries)
		}
	}

	// A read-only transaction keeps its snapshot while a write commits
	// through another node, and still commits.
	s.exec("START TRANSACTION READ ONLY")
	if got := s.int("SELECT v FROM t WHERE id = 1"); got != 1 {
		t.Fatalf("v = %d, want 1", got)
	}
	mustExec(t, c.Nodes[0].Open(t, "ro"), "UPDATE t SET v = 100 WHERE id = 1")
	e2e.Eventually(t, 30*time.Second, n2.ID+" applied the write", func() error {
		var v int
		err := db.QueryRow("SELECT v FROM t WHERE id = 1").Scan(&v)
		if err == nil && v != 100 {
			err = fmt.Errorf("v = %d", v)
		}
		return err
	})
	if got := s.int("SELECT v FROM t WHERE id = 1"); got != 1 {
		t.Errorf("read-only transaction's second read: v = %d, want the snapshot's 1", got)
	}
	s.exec("COMMIT")
	if got := s.int("SELECT v FROM t WHERE id = 1"); got != 100 {
		t.Errorf("after COMMIT: v = %d, want 100", got)
	}
}

// TestTxRefused: XA and LOCK TABLES are refused with 1235 (42000) and a
// message that says what to use instead; the session and an open
// transaction carry on.
func TestTxRefused(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c, "CREATE DATABASE rf", "CREATE TABLE rf.t (id INT PRIMARY KEY)")
	s := openSession(t, c.Nodes[0].Open(t, "rf"), "refused via "+c.Nodes[0].ID)
	refused := []string{"XA START 'x1'", "XA BEGIN 'x2'", "LOCK TABLES t WRITE", "LOCK TABLES t READ", "LOCK TABLE t AS a WRITE"}
	check := func(inTx bool) {
		for _, q := range refused {
			err := s.mustFail(1235, q)
			msg := err.Error()
			if sqlState(err) != "42000" || !strings.Contains(msg, "Lockstep") || !strings.Contains(msg, "Use") {
				t.Errorf("%s (in a transaction: %v): %v (SQLSTATE %q); want 42000 and a message saying Lockstep refuses it and what to use instead", q, inTx, err, sqlState(err))
			}
			if got := s.int("SELECT 1"); got != 1 {
				t.Errorf("after %s: SELECT 1 = %d", q, got)
			}
		}
	}
	check(false)
	s.exec("BEGIN")
	s.execAffected(1, "INSERT INTO t VALUES (1)")
	check(true)
	s.execAffected(1, "INSERT INTO t VALUES (2)")
	if got := s.int("SELECT COUNT(*) FROM t"); got != 2 {
		t.Errorf("the transaction sees %d rows after the refusals, want 2", got)
	}
	s.exec("COMMIT")
	assertEverywhere(t, c, "SELECT id FROM rf.t", "1", "2")
}

// TestTxApplierWins: a client transaction holding a row lock on its node
// never stalls replication: an autocommit write to that row through another
// node, and through the same node, completes and is applied on the lock
// holder's node (well before InnoDB's 50 s lock wait timeout), and the
// holder gets 1213 on its next statement or at COMMIT.
func TestTxApplierWins(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c,
		"CREATE DATABASE aw",
		"CREATE TABLE aw.t (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO aw.t VALUES (1, 0), (2, 0), (3, 0)")
	nA, nB := c.Nodes[0], c.Nodes[1]
	dbA, dbB := nA.Open(t, "aw"), nB.Open(t, "aw")
	holder := openSession(t, dbA, "lock holder via "+nA.ID)

	// expectAborted checks that the holder's transaction was aborted: 1213
	// on its next statement, or at COMMIT.
	expectAborted := func(what string) {
		t.Helper()
		_, err := holder.try("SELECT v FROM t WHERE id = 2")
		where := "next statement"
		if err == nil {
			_, err = holder.try("COMMIT")
			where = "COMMIT"
		} else {
			holder.try("ROLLBACK")
		}
		if err := checkConflict(err); err != nil {
			t.Errorf("%s: the lock holder's %s: %v", what, where, err)
		} else {
			t.Logf("%s: the lock holder got 1213 at its %s", what, where)
		}
	}
	writeApplied := func(what string, db *sql.DB, id, v int) {
		t.Helper()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "UPDATE t SET v = ? WHERE id = ?", v, id); err != nil {
			t.Fatalf("%s: autocommit write to the locked row: %v", what, err)
		}
		e2e.Eventually(t, 20*time.Second, what+": "+nA.ID+" applies the write to the locked row", func() error {
			got, err := backendStrings(nA, "SELECT v FROM aw.t WHERE id = ?", id)
			if err == nil && got[0] != fmt.Sprint(v) {
				err = fmt.Errorf("v = %s", got[0])
			}
			return err
		})
		t.Logf("%s: write acknowledged and applied on %s after %s", what, nA.ID, time.Since(start).Round(time.Millisecond))
	}

	// 1. The write comes through another node.
	holder.exec("BEGIN")
	holder.execAffected(1, "UPDATE t SET v = 100 WHERE id = 1")
	writeApplied("write via "+nB.ID, dbB, 1, 7)
	expectAborted("write via " + nB.ID)

	// 2. The write comes through the lock holder's own node (its Submit
	// waits for that node's apply).
	holder.exec("BEGIN")
	holder.execAffected(1, "UPDATE t SET v = 100 WHERE id = 2")
	writeApplied("write via "+nA.ID, dbA, 2, 8)
	expectAborted("write via " + nA.ID)

	// 3. A lock taken by a locking read only.
	holder.exec("BEGIN")
	holder.int("SELECT v FROM t WHERE id = 1 FOR UPDATE")
	writeApplied("write via "+c.Nodes[2].ID+" to a row locked by FOR UPDATE", c.Nodes[2].Open(t, "aw"), 1, 9)
	expectAborted("locking read")

	// 4. The replicated transaction runs for a while before it needs the
	// lock (the applier is busy, and watched, before it starts waiting).
	holder.exec("BEGIN")
	holder.execAffected(1, "UPDATE t SET v = 100 WHERE id = 3")
	start := time.Now()
	if _, err := runTx(context.Background(), dbB, nil, 10, func(ctx context.Context, tx *sql.Tx) error {
		var slept int
		if err := tx.QueryRowContext(ctx, "SELECT SLEEP(0.5)").Scan(&slept); err != nil {
			return err
		}
		return exec1(ctx, tx, "UPDATE t SET v = 5 WHERE id = 3")
	}); err != nil {
		t.Fatalf("transaction via %s that writes the row locked on %s: %v", nB.ID, nA.ID, err)
	}
	e2e.Eventually(t, 20*time.Second, "slow transaction via "+nB.ID+": "+nA.ID+" applies its write to the locked row", func() error {
		got, err := backendStrings(nA, "SELECT v FROM aw.t WHERE id = 3")
		if err == nil && got[0] != "5" {
			err = fmt.Errorf("v = %s", got[0])
		}
		return err
	})
	t.Logf("slow transaction via %s: committed and applied on %s after %s", nB.ID, nA.ID, time.Since(start).Round(time.Millisecond))
	expectAborted("slow transaction via " + nB.ID)

	// The session works normally afterwards.
	holder.exec("BEGIN")
	holder.execAffected(1, "UPDATE t SET v = v + 1 WHERE id = 1")
	holder.exec("COMMIT")
	assertEverywhere(t, c, "SELECT CONCAT(id, '=', v) FROM aw.t", "1=10", "2=8", "3=5")
	c.AssertIdentical(t)
}

// TestTxAutoIncrement: a transaction that inserts into an AUTO_INCREMENT
// table commits even when an earlier (or concurrent) inserting transaction
// on the same node was rolled back, and every node stores the id its
// client was given.
func TestTxAutoIncrement(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c,
		"CREATE DATABASE ai",
		"CREATE TABLE ai.items (id BIGINT AUTO_INCREMENT PRIMARY KEY, who VARCHAR(40) NOT NULL)",
		"INSERT INTO ai.items (who) VALUES ('seed')")
	n1 := c.Nodes[0]
	db := n1.Open(t, "ai")
	s1, s2 := openSession(t, db, "first via "+n1.ID), openSession(t, db, "second via "+n1.ID)
	want := []string{"1|seed"}
	insertID := func(res sql.Result) int64 {
		t.Helper()
		id, err := res.LastInsertId()
		if err != nil || id <= 0 {
			t.Fatalf("LastInsertId %d, %v", id, err)
		}
		return id
	}

	// One after the other.
	s1.exec("BEGIN")
	s1.exec("INSERT INTO items (who) VALUES ('rolled back 1')")
	s1.exec("ROLLBACK")
	s2.exec("BEGIN")
	id := insertID(s2.exec("INSERT INTO items (who) VALUES ('second 1')"))
	if got := s2.int("SELECT LAST_INSERT_ID()"); got != id {
		t.Errorf("LAST_INSERT_ID() = %d inside the transaction, the insert returned %d", got, id)
	}
	if _, err := s2.try("COMMIT"); err != nil {
		t.Fatalf("COMMIT of an insert after a rolled-back insert on the same node: %v", err)
	}
	if got := s2.int("SELECT LAST_INSERT_ID()"); got != id {
		t.Errorf("LAST_INSERT_ID() = %d after COMMIT, the transaction's insert returned %d", got, id)
	}
	want = append(want, fmt.Sprintf("%d|second 1", id))

	// Interleaved: the second inserts while the first is still open.
	s1.exec("BEGIN")
	s1.exec("INSERT INTO items (who) VALUES ('rolled back 2')")
	s2.exec("BEGIN")
	type insResult struct {
		res sql.Result
		err error
	}
	ch := make(chan insResult, 1)
	go func() { // it may wait for the first transaction's lock
		res, err := s2.try("INSERT INTO items (who) VALUES ('second 2')")
		ch <- insResult{res, err}
	}()
	s1.exec("ROLLBACK")
	r := <-ch
	if r.err != nil {
		t.Fatalf("insert in a transaction concurrent with a rolled-back one: %v", r.err)
	}
	id = insertID(r.res)
	if _, err := s2.try("COMMIT"); err != nil {
		t.Fatalf("COMMIT of an insert concurrent with a rolled-back insert on the same node: %v", err)
	}
	want = append(want, fmt.Sprintf("%d|second 2", id))

	// Several rows in one transaction, then an autocommit insert through
	// another node.
	s2.exec("BEGIN")
	first := insertID(s2.exec("INSERT INTO items (who) VALUES ('batch a'), ('batch b')"))
	id = insertID(s2.exec("INSERT INTO items (who) VALUES ('batch c')"))
	if _, err := s2.try("COMMIT"); err != nil {
		t.Fatalf("COMMIT of a multi-insert transaction: %v", err)
	}
	want = append(want, fmt.Sprintf("%d|batch a", first), fmt.Sprintf("%d|batch b", first+1), fmt.Sprintf("%d|batch c", id))
	c.WaitConverged()
	res := mustExec(t, c.Nodes[2].Open(t, "ai"), "INSERT INTO items (who) VALUES ('autocommit elsewhere')")
	want = append(want, fmt.Sprintf("%d|autocommit elsewhere", insertID(res)))

	// auto_increment_increment/offset: the origin pins the id the
	// applier will give (aligned), so the transaction commits.
	s2.exec("SET SESSION auto_increment_increment = 5, auto_increment_offset = 3")
	s2.exec("BEGIN")
	id = insertID(s2.exec("INSERT INTO items (who) VALUES ('stepped')"))
	if _, err := s2.try("COMMIT"); err != nil {
		t.Fatalf("COMMIT of an insert with auto_increment_increment=5: %v", err)
	}
	if id%5 != 3 {
		t.Errorf("insert id %d with auto_increment_increment=5, offset=3: want 3 mod 5", id)
	}
	want = append(want, fmt.Sprintf("%d|stepped", id))
	assertEverywhere(t, c, "SELECT CONCAT(id, '|', who) FROM ai.items", want...)
	c.AssertIdentical(t)
}

// TestTxMariaDBCLI: an interactive mariadb client session (on a
// pseudo-terminal) through a node: BEGIN, read its own write, ROLLBACK, and
// nothing remains; then BEGIN ... COMMIT, and the row is on every node.
func TestTxMariaDBCLI(t *testing.T) {
	e2e.SkipIfNoMariaDB(t)
	cli, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatal("the mariadb client is not installed (Debian: apt-get install mariadb-client; scripts/deps.sh does it)")
	}
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatal("script(1) is not installed (Debian: bsdutils): it gives the interactive client a pseudo-terminal")
	}
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c, "CREATE DATABASE clitx", "CREATE TABLE clitx.notes (id INT PRIMARY KEY, body VARCHAR(20) NOT NULL)")
	n := c.Nodes[2]
	host, port, _ := strings.Cut(n.SQLAddr, ":")
	line := strings.Join([]string{cli, "-h" + host, "-P" + port, "-u" + e2e.AppUser, "-p" + c.Password, "clitx"}, " ")
	cmd := exec.Command(script, "-qec", line, "/dev/null")
	cmd.Env = append(os.Environ(), "TERM=dumb", "HOME="+t.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"BEGIN;",
		"INSERT INTO notes VALUES (1, 'draft');",
		"SELECT CONCAT('own-write=', body) AS seen FROM notes WHERE id = 1;",
		"ROLLBACK;",
		"SELECT CONCAT('after-rollback=', COUNT(*)) AS seen FROM notes;",
		"BEGIN;",
		"INSERT INTO notes VALUES (2, 'kept');",
		"COMMIT;",
		"SELECT CONCAT('after-commit=', GROUP_CONCAT(body)) AS seen FROM notes;",
		"quit",
	} {
		fmt.Fprintln(stdin, q)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("interactive client: %v", err)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("interactive client did not finish; output:\n%s", out.String())
	}
	stdin.Close()
	s := out.String()
	t.Logf("interactive session:\n%s", s)
	for _, want := range []string{"MariaDB [clitx]>", "Query OK, 1 row affected", "| own-write=draft |", "| after-rollback=0 |", "| after-commit=kept |", "Bye"} {
		if !strings.Contains(s, want) {
			t.Errorf("interactive output lacks %q", want)
		}
	}
	if strings.Contains(s, "ERROR") {
		t.Errorf("interactive session reported an error")
	}
	assertEverywhere(t, c, "SELECT CONCAT(id, '|', body) FROM clitx.notes", "2|kept")
}

// TestTxNondeterministic: RAND(), UUID(), NOW(6) and CURRENT_USER() inside a
// transaction, written and read back by the client: the transaction
// commits (its re-execution on every node sees the same values) and every
// node stores exactly what the client read.
func TestTxNondeterministic(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c,
		"CREATE DATABASE nd",
		"CREATE TABLE nd.t (id INT PRIMARY KEY, r DOUBLE, u CHAR(36), ts DATETIME(6), who VARCHAR(80))")
	s := openSession(t, c.Nodes[1].Open(t, "nd"), "nondeterministic via "+c.Nodes[1].ID)
	const row = "SELECT CONCAT_WS('|', id, r, u, ts, who) FROM t WHERE id = ?"

	s.exec("BEGIN")
	s.execAffected(1, "INSERT INTO t VALUES (1, RAND(), UUID(), NOW(6), CURRENT_USER())")
	seen1 := s.strings(row, 1)
	if _, err := s.try("COMMIT"); err != nil {
		t.Fatalf("COMMIT of a transaction that wrote RAND(), UUID(), NOW(6), CURRENT_USER() and read them back: %v", err)
	}

	// The functions also appear in what the transaction reads.
	s.exec("BEGIN")
	s.strings("SELECT RAND(), NOW(6), CURRENT_USER()")
	s.execAffected(1, "INSERT INTO t VALUES (2, RAND(), UUID(), NOW(6), 'second')")
	seen2 := s.strings(row, 2)
	if _, err := s.try("COMMIT"); err != nil {
		t.Errorf("COMMIT of a transaction that read RAND(), NOW(6), CURRENT_USER() and then wrote: %v", err)
		seen2 = nil
	}
	s.exec("BEGIN")
	s.strings("SELECT UUID()")
	s.execAffected(1, "INSERT INTO t VALUES (3, NULL, NULL, NULL, 'third')")
	seen3 := []string{"3|third"}
	if _, err := s.try("COMMIT"); err != nil {
		t.Errorf("COMMIT of a transaction that read UUID() and then wrote: %v", err)
		seen3 = nil
	}
	c.WaitConverged()
	assertEverywhere(t, c, "SELECT CONCAT_WS('|', id, r, u, ts, who) FROM nd.t", slices.Concat(seen1, seen2, seen3)...)
	c.AssertIdentical(t)
}
