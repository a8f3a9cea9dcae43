package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/e2e"
	"github.com/lockstepdb/lockstep/internal/testutil"
)

// TestBackendDiskFull: one node's MariaDB runs out of disk (its tmpfs
// datadir filled to the last byte) while writes go on through another
// node. The writes keep succeeding; the full node's applier waits (MariaDB
// waits for space), the node does not diverge, and its /readyz says it is
// behind; once space is freed it catches up and every backend holds the
// same rows.
func TestBackendDiskFull(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithBackendTmpfs(256))
	setup(t, c, "CREATE DATABASE df", "CREATE TABLE df.t (id INT AUTO_INCREMENT PRIMARY KEY, b LONGBLOB)")
	victim := c.Nodes[1]
	if err := victim.FillDisk(); err != nil {
		t.Fatal(err)
	}
	db := c.Nodes[0].Open(t, "df")
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
	if err := victim.WaitReady(e2e.ReadyTimeout); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged()
	c.AssertIdentical(t)
}
