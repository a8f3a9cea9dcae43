package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/e2e"
)

// compactionArgs make Raft snapshot and drop its log every few dozen
// records.
var compactionArgs = e2e.WithArgs("--snapshot-threshold=40", "--snapshot-interval=50ms", "--trailing-logs=10")

// waitCompacted waits until every running node in nodes has dropped its log
// up to beyond idx.
func waitCompacted(t *testing.T, nodes []*e2e.Node, idx uint64, what string) {
	t.Helper()
	e2e.Eventually(t, 90*time.Second, what, func() error {
		for _, n := range nodes {
			st, err := n.Status()
			if err != nil {
				return err
			}
			if st.FirstLogIndex <= idx+1 || st.SnapshotIndex <= idx {
				return fmt.Errorf("%s: first log index %d, snapshot %d, want past %d", n.ID, st.FirstLogIndex, st.SnapshotIndex, idx)
			}
		}
		return nil
	})
}

// TestLogCompaction: Raft snapshots compact the log on every node. A
// follower that was down while the others dropped the log it needs gets
// the leader's snapshot, copies a peer's database (the consistent dump a
// joiner gets) over the cluster port, applies the log after it and serves
// again; a node joining after compaction does the same without
// --join-from; a whole-cluster restart after compaction comes back from
// each node's own snapshot with every node state; and every table is
// identical (clusterctl checksum) with every acknowledged write present.
func TestLogCompaction(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3), compactionArgs)
	setup(t, c, "CREATE DATABASE ld", loadSchema,
		"CREATE DATABASE cp", "CREATE TABLE cp.t (id INT PRIMARY KEY, v VARCHAR(20))",
		"CREATE VIEW cp.vv AS SELECT id FROM cp.t",
		"CREATE USER 'reporter'@'%' IDENTIFIED BY 'rpw'", "GRANT SELECT ON cp.* TO 'reporter'@'%'")
	leader := c.WaitForLeader()
	victim := c.Other(leader)[0]
	// A standby node stays standby through the snapshots.
	standby := c.Other(leader)[1]
	if out, errOut, err := leader.Clusterctl(t, "node", "set-state", standby.ID, "standby"); err != nil {
		t.Fatalf("set-state standby: %v\n%s%s", err, out, errOut)
	}
	l := startLoad(t, c, []*e2e.Node{leader}, 3)
	l.waitMore(30, 30*time.Second, "writes before the kill")
	// Something the victim has only locally, to be replaced by the copy:
	// a table written behind the cluster's back.
	mustExec(t, victim.BackendDB(), "CREATE TABLE cp.stray (id INT PRIMARY KEY)")
	// The victim replays what its own log holds after a restart (its
	// database may be behind its log: records are applied after commit):
	// the live nodes must drop the log beyond the victim's log's end
	// (with a margin for what arrived before the kill).
	before := victim.MustStatus(t).LastLogIndex
	victim.Kill()
	l.waitMore(150, 60*time.Second, "writes while the follower is down")
	waitCompacted(t, []*e2e.Node{leader, standby}, before+20, "the live nodes to drop the log the killed node needs")
	victim.Restart()
	e2e.Eventually(t, 90*time.Second, victim.ID+" to copy a peer's database", func() error {
		if strings.Contains(victim.Tail(400), "state transfer: database restored from a peer") {
			return nil
		}
		return fmt.Errorf("log tail:\n%s", victim.Tail(5))
	})
	if err := victim.WaitReady(e2e.ReadyTimeout); err != nil {
		t.Fatal(err)
	}
	l.waitMore(30, 60*time.Second, "writes after the follower came back")

	// A node joins after compaction: no --join-from, the log from index 1
	// is gone, Raft sends it a snapshot and it copies a peer's database.
	n4 := c.StartJoiner(t)
	if out, errOut, err := leader.Clusterctl(t, "node", "add", n4.ID, n4.RaftAddr); err != nil {
		t.Fatalf("node add: %v\n%s%s", err, out, errOut)
	}
	if err := n4.WaitReady(e2e.ReadyTimeout); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(n4.Tail(400), "state transfer: database restored from a peer") {
		t.Errorf("%s became ready without a state transfer:\n%s", n4.ID, n4.Tail(40))
	}
	l.waitMore(30, 60*time.Second, "writes after the join")
	l.halt()
	c.WaitConverged()
	l.verify(c)
	c.AssertIdentical(t)
	if _, err := victim.BackendDB().Exec("SELECT 1 FROM cp.stray"); err == nil {
		t.Errorf("%s: the table written behind the cluster's back survived the copy", victim.ID)
	}
	if out, errOut, err := n4.Clusterctl(t, "checksum"); err != nil || !strings.Contains(out, "identical on 4 nodes") {
		t.Errorf("clusterctl checksum after compaction: %v\n%s%s", err, out, errOut)
	}
	var st e2e.Status
	e2e.Eventually(t, 30*time.Second, "a snapshot on every node", func() error {
		for _, n := range c.Nodes {
			st = n.MustStatus(t)
			if st.SnapshotIndex == 0 {
				return fmt.Errorf("%s: no snapshot yet", n.ID)
			}
		}
		return nil
	})

	// Whole-cluster restart: every node comes back from its own snapshot
	// and the log after it, with the node states it had.
	for _, n := range c.Nodes {
		n.Stopped()
	}
	for _, n := range c.Nodes {
		n.Start()
	}
	c.WaitForLeader()
	for _, n := range c.Nodes {
		want := "active"
		if n == standby {
			want = "standby"
		}
		e2e.Eventually(t, 60*time.Second, n.ID+"'s state after the restart", func() error {
			if got := n.MustStatus(t).NodeState; got != want {
				return fmt.Errorf("%s is %q, want %q", n.ID, got, want)
			}
			return nil
		})
	}
	for i, n := range []*e2e.Node{leader, n4} {
		if err := n.WaitReady(e2e.ReadyTimeout); err != nil {
			t.Fatal(err)
		}
		db := n.Open(t, "cp")
		e2e.Eventually(t, 60*time.Second, "a write through "+n.ID+" after the whole-cluster restart", func() error {
			_, err := db.Exec("INSERT INTO t VALUES (?, 'after restart')", i)
			return err
		})
	}

	// A database that lost what its node's snapshot covers (as after a
	// power loss with a volatile disk cache): the node copies a peer's.
	n4.Stopped()
	mustExec(t, n4.BackendDB(), "DROP DATABASE cp")
	mustExec(t, n4.BackendDB(), "UPDATE lockstep.applied SET idx = 3 WHERE id = 1")
	copies := strings.Count(n4.Tail(2000), "state transfer: database restored from a peer")
	n4.Start()
	if err := n4.WaitReady(e2e.ReadyTimeout); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(n4.Tail(2000), "state transfer: database restored from a peer"); got != copies+1 {
		t.Errorf("%s: %d state transfers after its database fell behind its snapshot, want %d", n4.ID, got, copies+1)
	}
	c.WaitConverged()
	c.AssertIdentical(t)
}
