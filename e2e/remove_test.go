package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/e2e"
)

// TestNodeRemove: `clusterctl node remove` takes a node out of the cluster
// under write load: every node agrees, the Raft configuration shrinks, the
// removed node stops serving clients, and the other two keep committing.
// A removal that would leave no active node is refused.
func TestNodeRemove(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	setup(t, c, "CREATE DATABASE ld", loadSchema)
	l := startLoad(t, c, c.Nodes[:2], 2)
	l.waitMore(30, 30*time.Second, "load before the removal")

	if _, errOut, err := n1.Clusterctl(t, "node", "remove", "n9"); err == nil || !strings.Contains(errOut, `unknown node "n9"`) {
		t.Errorf("removing an unknown node: %v %s", err, errOut)
	}
	out, errOut, err := n2.Clusterctl(t, "node", "remove", "n3")
	if err != nil || !strings.Contains(out, "node n3 removed") {
		t.Fatalf("node remove n3: %v\n%s%s", err, out, errOut)
	}
	for _, n := range []*e2e.Node{n1, n2} {
		out, _, err := n.Clusterctl(t, "node", "list")
		if err != nil || strings.Contains(out, "n3") || !strings.Contains(out, "n2") {
			t.Errorf("node list via %s after the removal: %v\n%s", n.ID, err, out)
		}
	}
	probe := n3.Open(t, "ld?timeout=2s&readTimeout=5s")
	e2e.Eventually(t, 30*time.Second, "removed n3 refuses clients", func() error {
		err := probe.QueryRow("SELECT 1").Scan(new(int))
		if me := mysqlErr(err); me != nil && me.Number == 1047 && strings.Contains(me.Message, "removed from the cluster") {
			t.Logf("removed n3 answers: %s", me.Message)
			return nil
		}
		return err
	})
	l.waitMore(30, 60*time.Second, "writes through the two remaining nodes")

	// The last active node cannot be removed.
	if _, _, err := n1.Clusterctl(t, "node", "set-state", "n2", "standby"); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := n2.Clusterctl(t, "node", "remove", "n1"); err == nil || !strings.Contains(errOut, "no active node") {
		t.Errorf("removing the last active node: %v %s", err, errOut)
	}
	if _, _, err := n1.Clusterctl(t, "node", "set-state", "n2", "active"); err != nil {
		t.Fatal(err)
	}
	l.halt()

	// n3 is out: stop it and check the two members.
	n3.Stopped()
	t.Cleanup(func() { _ = n3.Backend.Stop() })
	c.Nodes = c.Nodes[:2]
	c.WaitConverged()
	l.verify(c)
	c.AssertIdentical(t)
}
