package e2e_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/e2e"
	"github.com/lockstepdb/lockstep/internal/testutil"
)

// fenceBound is what this test accepts between cutting a node off and it
// refusing clients: the lease (--fence-grace, default 1s) plus a leader's
// step-down and polling slack on a loaded 2-core machine. The measured
// times are logged.
const fenceBound = 3 * time.Second

// TestPartitionIsolatedNode: real partitions with network namespaces. Under
// write load through all three nodes, one node is cut off from the other
// two — first a follower, then the leader. The isolated node stops serving
// reads and writes within the bound (error 1047 saying it has no quorum),
// the other two keep committing, and after the heal the node serves again
// by itself once it has caught up. Every acknowledged write ends on every
// node and the nodes are identical.
func TestPartitionIsolatedNode(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNetns())
	setup(t, c, "CREATE DATABASE ld", loadSchema)
	l := startLoad(t, c, c.Nodes, 2)
	l.waitMore(30, 30*time.Second, "load before the partitions")

	leaderPos := func() int {
		leader := c.WaitForLeader()
		for i, n := range c.Nodes {
			if n == leader {
				return i
			}
		}
		t.Fatalf("leader %s is not a node of the cluster", leader.ID)
		return -1
	}
	for round, pick := range []string{"follower", "leader"} {
		lp := leaderPos()
		victim := c.Nodes[(lp+1)%3]
		if pick == "leader" {
			victim = c.Nodes[lp]
		}
		probe := victim.Open(t, "ld?timeout=2s&readTimeout=5s&writeTimeout=5s")
		probe.SetMaxOpenConns(1)
		if err := probe.QueryRow("SELECT 1").Scan(new(int)); err != nil {
			t.Fatalf("round %d: %s before the partition: %v", round, victim.ID, err)
		}

		cut := time.Now()
		victim.Partition(t)
		// It stops serving within the bound, with a clear error.
		var fenced time.Duration
		var lastErr error
		err := testutil.Until(30*time.Second-time.Since(cut), 20*time.Millisecond, func() error {
			err := probe.QueryRow("SELECT COUNT(*) FROM w").Scan(new(int))
			if me := mysqlErr(err); me != nil && me.Number == 1047 {
				fenced, lastErr = time.Since(cut), err
				return nil
			}
			if err == nil {
				return errors.New("the read succeeded")
			}
			return err
		})
		if err != nil {
			t.Fatalf("round %d: isolated %s (%s) still answers reads 30s after the cut (last: %v)", round, victim.ID, pick, err)
		}
		t.Logf("round %d: isolated %s (%s) refused clients %s after the cut: %v", round, victim.ID, pick, fenced.Round(time.Millisecond), lastErr)
		if fenced > fenceBound {
			t.Errorf("round %d: %s took %s to stop serving, want at most %s", round, victim.ID, fenced.Round(time.Millisecond), fenceBound)
		}
		if me := mysqlErr(lastErr); !strings.Contains(me.Message, "no quorum") {
			t.Errorf("round %d: refusal %q does not say the node has no quorum", round, me.Message)
		}
		if _, err := probe.Exec("INSERT INTO w (writer, n) VALUES (999, ?)", round); mysqlErr(err) == nil || mysqlErr(err).Number != 1047 {
			t.Errorf("round %d: a write through isolated %s: %v, want 1047", round, victim.ID, err)
		}
		// The majority keeps committing.
		l.waitMore(40, 60*time.Second, fmt.Sprintf("round %d: writes through the majority while %s is isolated", round, victim.ID))
		if st := victim.MustStatus(t); st.State != "no-quorum" {
			t.Errorf("round %d: isolated %s reports state %q, want no-quorum", round, victim.ID, st.State)
		}

		// Heal: it serves again by itself, caught up.
		healed := time.Now()
		victim.Heal(t)
		e2e.Eventually(t, 60*time.Second, fmt.Sprintf("round %d: %s serves again after the heal", round, victim.ID), func() error {
			return probe.QueryRow("SELECT COUNT(*) FROM w").Scan(new(int))
		})
		t.Logf("round %d: %s served again %s after the heal", round, victim.ID, time.Since(healed).Round(time.Millisecond))
		l.waitMore(20, 60*time.Second, fmt.Sprintf("round %d: writes after the heal", round))
	}
	l.halt()
	c.WaitConverged()
	l.verify(c)
	for _, n := range c.Nodes {
		if got := queryInt(t, n.BackendDB(), "SELECT COUNT(*) FROM ld.w WHERE writer = 999"); got != 0 {
			t.Errorf("%s: %d rows written through an isolated node", n.ID, got)
		}
	}
	c.AssertIdentical(t)
	if out, errOut, err := c.Nodes[0].Clusterctl(t, "checksum"); err != nil {
		t.Errorf("clusterctl checksum after the partitions: %v\n%s%s", err, out, errOut)
	} else {
		t.Logf("clusterctl checksum:\n%s", out)
	}
}
