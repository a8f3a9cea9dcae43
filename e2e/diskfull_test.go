package e2e_test

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/e2e"
	"github.com/lockstepdb/lockstep/internal/testutil"
)

// TestBackendDiskFull: one node's MariaDB runs out of disk (its tmpfs
// datadir filled to the last byte) while writes go on through another
// node and transactions through every node. The writes keep succeeding;
// the full node's applier waits (for space, or retrying a 1114 "table is
// full", which is this node's environment and not an outcome), the node
// does not diverge, and its /readyz says it is behind; once space is freed
// it catches up, every backend holds the same rows, every acknowledged
// transaction is there and none that got 1213.
func TestBackendDiskFull(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithBackendTmpfs(256))
	setup(t, c, "CREATE DATABASE df", "CREATE TABLE df.t (id INT AUTO_INCREMENT PRIMARY KEY, b LONGBLOB)",
		"CREATE TABLE df.l (k INT PRIMARY KEY, v LONGTEXT NOT NULL)")
	victim := c.Nodes[1]
	if err := victim.FillDisk(); err != nil {
		t.Fatal(err)
	}
	db := c.Nodes[0].Open(t, "df")
	// Transactions through every node, the full one included, meanwhile:
	// one the full node's re-execution fails with 1114 must not be
	// decided differently there (it would diverge, and tell its client
	// 1213 for a transaction the others committed).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcome := map[int]error{}
	var next atomic.Int64
	for _, n := range c.Nodes {
		tdb := n.Open(t, "df?timeout=2s&readTimeout=15s")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := int(next.Add(1))
				err := diskTx(tdb, v%4, v)
				mu.Lock()
				outcome[v] = err
				mu.Unlock()
			}
		}()
	}
	blob := strings.Repeat("x", 256<<10)
	stuck := func() error {
		st, err := victim.Status()
		switch {
		case err != nil:
			return err
		case st.Diverged:
			return testutil.Permanent(fmt.Errorf("%s diverged with a full disk: %s", victim.ID, st.DivergedDetail))
		}
		if ok, why := admin.Ready(st); ok {
			return fmt.Errorf("%s still ready (applied %d of %d)", victim.ID, st.AppliedIndex, st.CommitIndex)
		} else {
			t.Logf("%s with a full disk: %s", victim.ID, why)
		}
		return nil
	}
	// Enough data that the victim's InnoDB must grow its files: it stalls.
	n := 0
	err := testutil.Until(2*time.Minute, 0, func() error {
		if _, err := db.Exec("INSERT INTO t (b) VALUES (?)", blob); err != nil {
			return testutil.Permanent(fmt.Errorf("insert %d through %s while %s's disk is full: %w", n, c.Nodes[0].ID, victim.ID, err))
		}
		n++
		if n < 100 || n%10 != 0 {
			return fmt.Errorf("%d inserts", n)
		}
		return stuck()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d inserts of 256 KiB acknowledged while %s's disk was full", n, victim.ID)
	if err := victim.FreeDisk(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if err := victim.WaitReady(e2e.ReadyTimeout); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged()
	c.AssertIdentical(t)
	// Every acknowledged transaction's value is there, none that got 1213.
	var list string
	if err := c.Nodes[0].BackendDB().QueryRow("SELECT COALESCE(GROUP_CONCAT(v), '') FROM df.l").Scan(&list); err != nil {
		t.Fatal(err)
	}
	present := map[int]bool{}
	for _, x := range parseList(list) {
		present[x] = true
	}
	acked, conflicts := 0, 0
	for v, err := range outcome {
		switch {
		case err == nil:
			acked++
			if !present[v] {
				t.Errorf("transaction %d was acknowledged but its value is missing", v)
			}
		case e2e.ErrNumber(err) == 1213:
			conflicts++
			if present[v] {
				t.Errorf("transaction %d got 1213 (%v) but its value is there", v, err)
			}
		}
	}
	t.Logf("transactions: %d acknowledged, %d conflicts, %d other outcomes", acked, conflicts, len(outcome)-acked-conflicts)
}

// diskTx appends v to key k's list in a transaction.
func diskTx(db *sql.DB, k, v int) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	if _, err := tx.Exec("INSERT INTO l (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = CONCAT(v, ',', VALUES(v))", k, strconv.Itoa(v)); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
