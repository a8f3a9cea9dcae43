package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/e2e"
)

// TestWitnessTwoNodes: two database nodes and a witness (lockstepd
// --witness, a Raft voter without a database) keep a quorum when either
// database node is lost: writes go on through the other one, the lost node
// catches up when it comes back, and no acknowledged write is lost. The
// witness's state cannot be changed, and it holds no data to checksum.
func TestWitnessTwoNodes(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(2), e2e.WithWitness())
	setup(t, c, "CREATE DATABASE ld", loadSchema)
	out, errOut, err := c.Nodes[0].Clusterctl(t, "node", "list")
	if err != nil || !strings.Contains(out, "w1") || !strings.Contains(out, "witness") {
		t.Fatalf("node list: %v\n%s%s", err, out, errOut)
	}
	if _, errOut, err := c.Nodes[0].Clusterctl(t, "node", "set-state", "w1", "active"); err == nil || !strings.Contains(errOut, "is a witness") {
		t.Errorf("changing the witness's state: %v %s", err, errOut)
	}
	l := startLoad(t, c, c.Nodes, 2)
	l.waitMore(30, 30*time.Second, "load with both database nodes")
	for i, lost := range c.Nodes {
		other := c.Nodes[1-i]
		lost.Kill()
		l.waitMore(30, 60*time.Second, fmt.Sprintf("writes through %s with %s down (it and the witness are the quorum)", other.ID, lost.ID))
		lost.Restart()
		l.waitMore(10, 60*time.Second, fmt.Sprintf("writes after %s came back", lost.ID))
	}
	l.halt()
	c.WaitConverged()
	l.verify(c)
	c.AssertIdentical(t)
	if out, errOut, err := c.Nodes[1].Clusterctl(t, "checksum"); err != nil || !strings.Contains(out, "identical on 2 nodes") {
		t.Errorf("clusterctl checksum with a witness: %v\n%s%s", err, out, errOut)
	}
	if st, err := c.Witness.Status(); err != nil || st.NodeState != "witness" {
		t.Errorf("witness status: %+v %v", st, err)
	}
}
