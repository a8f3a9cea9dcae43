package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/e2e"
)

// TestNodeJoinUnderLoad: a fourth node joins while clients write through
// the other three the whole time: lockstepd --join, then clusterctl node
// add; it copies a member's database over the cluster port (a consistent
// snapshot at a log index), is joining (serving no clients) until it has
// applied the log after it, then makes itself active, serves reads and
// writes, and every table is identical on all four nodes (clusterctl
// checksum).
func TestNodeJoinUnderLoad(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c, "CREATE DATABASE ld", loadSchema,
		"CREATE DATABASE jn", "CREATE TABLE jn.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO jn.t (v) VALUES ('before'), ('the'), ('join')")
	l := startLoad(t, c, c.Nodes, 2)
	l.waitMore(50, 30*time.Second, "load before the join")

	n4 := c.StartJoiner(t)
	start := time.Now()
	out, errOut, err := c.Nodes[0].Clusterctl(t, "node", "add", n4.ID, n4.RaftAddr)
	if err != nil || !strings.Contains(out, "joining") {
		t.Fatalf("node add: %v\n%s%s", err, out, errOut)
	}
	if _, errOut, err := c.Nodes[1].Clusterctl(t, "node", "add", n4.ID, n4.RaftAddr); err == nil || !strings.Contains(errOut, "already a member") {
		t.Errorf("adding the same node twice: %v %s", err, errOut)
	}
	if err := n4.WaitReady(e2e.ReadyTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s active and ready %s after node add, under load", n4.ID, time.Since(start).Round(time.Millisecond))
	if line := grepLine(n4.Tail(400), "state transfer: database restored from a peer"); line == "" {
		t.Errorf("%s joined without copying a member's database:\n%s", n4.ID, n4.Tail(30))
	} else {
		t.Logf("%s: %s", n4.ID, line)
	}
	for _, n := range c.Nodes {
		out, _, err := n.Clusterctl(t, "node", "list")
		if err != nil || !strings.Contains(out, "n4    active") {
			t.Errorf("node list via %s: %v\n%s", n.ID, err, out)
		}
	}
	l.waitMore(30, 60*time.Second, "writes after the join")
	db4 := n4.Open(t, "jn")
	if got := queryInt(t, db4, "SELECT COUNT(*) FROM t"); got != 3 {
		t.Errorf("a read through the new node: %d rows, want 3", got)
	}
	mustExec(t, db4, "INSERT INTO t (v) VALUES ('via n4')")
	l.halt()
	c.WaitConverged()
	l.verify(c)
	c.AssertIdentical(t)
	if out, errOut, err := n4.Clusterctl(t, "checksum"); err != nil || !strings.Contains(out, "identical on 4 nodes") {
		t.Errorf("clusterctl checksum after the join: %v\n%s%s", err, out, errOut)
	}
}

// TestNodeJoinBySnapshot: state transfer. A fourth node joins under write
// load with --join-from: its first donor is unreachable, so it takes a
// consistent snapshot (a logical dump at an exact log index, streamed and
// compressed) from the second, applies only the log after that index,
// becomes active, and every table matches (clusterctl checksum).
func TestNodeJoinBySnapshot(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c, "CREATE DATABASE ld", loadSchema,
		"CREATE DATABASE jn", "CREATE TABLE jn.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20), b BLOB)",
		"INSERT INTO jn.t (v, b) VALUES ('before', 0x00ff), ('the', NULL), ('join', '')",
		"CREATE VIEW jn.vv AS SELECT id, v FROM jn.t",
		"CREATE USER 'reporter'@'%' IDENTIFIED BY 'rpw'", "GRANT SELECT ON jn.* TO 'reporter'@'%'")
	l := startLoad(t, c, c.Nodes, 2)
	l.waitMore(100, 30*time.Second, "load before the join")

	n4 := c.StartJoiner(t, "--join-from", "http://127.0.0.1:1,http://"+c.Nodes[1].AdminAddr)
	e2e.Eventually(t, 60*time.Second, "n4 restored a snapshot", func() error {
		if strings.Contains(n4.Tail(200), "state transfer: restored a snapshot") {
			return nil
		}
		return fmt.Errorf("log tail:\n%s", n4.Tail(5))
	})
	t.Logf("n4: %s", grepLine(n4.Tail(200), "state transfer: restored a snapshot"))
	if !strings.Contains(n4.Tail(200), "state transfer from a donor failed; trying the next") {
		t.Errorf("n4 did not report the unreachable first donor")
	}
	start := time.Now()
	if out, errOut, err := c.Nodes[0].Clusterctl(t, "node", "add", n4.ID, n4.RaftAddr); err != nil {
		t.Fatalf("node add: %v\n%s%s", err, out, errOut)
	}
	if err := n4.WaitReady(e2e.ReadyTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s active and ready %s after node add", n4.ID, time.Since(start).Round(time.Millisecond))
	l.waitMore(30, 60*time.Second, "writes after the join")
	l.halt()
	c.WaitConverged()
	l.verify(c)
	c.AssertIdentical(t)
	if out, errOut, err := n4.Clusterctl(t, "checksum"); err != nil || !strings.Contains(out, "identical on 4 nodes") {
		t.Errorf("clusterctl checksum after the join: %v\n%s%s", err, out, errOut)
	}
	snap := t.TempDir() + "/n4.snap.gz"
	if out, errOut, err := n4.Clusterctl(t, "snapshot", "-o", snap); err != nil || !strings.Contains(out, "snapshot at log index") {
		t.Errorf("clusterctl snapshot: %v\n%s%s", err, out, errOut)
	} else {
		t.Logf("clusterctl snapshot: %s", strings.TrimSpace(out))
	}
	rdb := e2e.OpenDB(t, n4.DSN("reporter", "rpw", "jn"))
	if got := queryInt(t, rdb, "SELECT COUNT(*) FROM vv"); got != 3 {
		t.Errorf("the restored user through n4 reads %d rows of the restored view, want 3", got)
	}
}

func grepLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// slowTransferCluster is a 3-node cluster whose snapshots are paced
// (--snapshot-rate) and whose table big.b takes seconds to transfer, so a
// test can kill a node mid-transfer; ld is ready for startLoad.
func slowTransferCluster(t *testing.T) *e2e.Cluster {
	c := e2e.NewCluster(t, e2e.WithNodes(3), e2e.WithArgs("--snapshot-rate=0.4"))
	setup(t, c, "CREATE DATABASE big", "CREATE TABLE big.b (id INT PRIMARY KEY, h TEXT)",
		"INSERT INTO big.b SELECT seq, CONCAT(SHA2(seq * 7919 + 1, 512), SHA2(seq, 512)) FROM big.seq_1_to_8000",
		"CREATE DATABASE ld", loadSchema)
	return c
}

// waitReceiving waits until a joiner's database has big.b: a transfer to
// it is under way.
func waitReceiving(t *testing.T, n *e2e.Node) {
	t.Helper()
	e2e.Eventually(t, 60*time.Second, n.ID+" to start receiving big.b", func() error {
		var k int
		if err := n.BackendDB().QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'big'").Scan(&k); err != nil || k == 0 {
			return fmt.Errorf("big.b not created on %s yet (%v)", n.ID, err)
		}
		return nil
	})
}

// TestJoinDonorDiesMidTransfer: the joiner's first donor is killed while
// it streams its snapshot (paced with --snapshot-rate so the transfer
// takes seconds); the joiner drops the partial copy, takes the whole
// snapshot from the next donor, joins, and every table matches.
func TestJoinDonorDiesMidTransfer(t *testing.T) {
	c := slowTransferCluster(t)
	donor, next := c.Nodes[0], c.Nodes[1]
	l := startLoad(t, c, []*e2e.Node{next, c.Nodes[2]}, 1)
	l.waitMore(20, 30*time.Second, "load before the join")

	n4 := c.StartJoiner(t, "--join-from", "http://"+donor.AdminAddr+",http://"+next.AdminAddr)
	waitReceiving(t, n4)
	donor.Kill()
	e2e.Eventually(t, 120*time.Second, "n4 restored a snapshot from "+next.ID, func() error {
		if strings.Contains(n4.Tail(200), "state transfer: restored a snapshot") {
			return nil
		}
		return fmt.Errorf("log tail:\n%s", n4.Tail(5))
	})
	if line := grepLine(n4.Tail(200), "state transfer from a donor failed; trying the next"); !strings.Contains(line, donor.AdminAddr) {
		t.Errorf("n4 did not report the transfer from %s failing:\n%s", donor.ID, n4.Tail(20))
	} else {
		t.Logf("n4: %s", line)
	}
	if line := grepLine(n4.Tail(200), "state transfer: restored a snapshot"); !strings.Contains(line, next.AdminAddr) {
		t.Errorf("n4 restored from the wrong donor: %s", line)
	}
	if out, errOut, err := next.Clusterctl(t, "node", "add", n4.ID, n4.RaftAddr); err != nil {
		t.Fatalf("node add: %v\n%s%s", err, out, errOut)
	}
	if err := n4.WaitReady(e2e.ReadyTimeout); err != nil {
		t.Fatal(err)
	}
	donor.Restart()
	l.waitMore(20, 60*time.Second, "writes after the join")
	l.halt()
	c.WaitConverged()
	l.verify(c)
	c.AssertIdentical(t)
}

// TestJoinerRestartsMidCopy: a joiner (no --join-from) copying a member's
// database over the cluster port is killed mid-copy and started again: it
// does not apply the log onto the partial copy, copies again, joins, and
// every table matches.
func TestJoinerRestartsMidCopy(t *testing.T) {
	c := slowTransferCluster(t)
	l := startLoad(t, c, c.Nodes, 1)
	l.waitMore(20, 30*time.Second, "load before the join")
	n4 := c.StartJoiner(t)
	if out, errOut, err := c.Nodes[0].Clusterctl(t, "node", "add", n4.ID, n4.RaftAddr); err != nil {
		t.Fatalf("node add: %v\n%s%s", err, out, errOut)
	}
	waitReceiving(t, n4)
	if strings.Contains(n4.Tail(200), "state transfer: database restored from a peer") {
		t.Fatal("the copy finished before the kill: slow it down (--snapshot-rate) or grow big.b")
	}
	n4.Kill()
	n4.Start()
	if err := n4.WaitReady(e2e.ReadyTimeout); err != nil {
		t.Fatal(err)
	}
	if line := grepLine(n4.Tail(400), "state transfer: database restored from a peer"); line == "" {
		t.Errorf("%s became ready without a finished copy:\n%s", n4.ID, n4.Tail(30))
	}
	l.waitMore(20, 60*time.Second, "writes after the join")
	l.halt()
	c.WaitConverged()
	l.verify(c)
	c.AssertIdentical(t)
}
