package e2e_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/e2e"
)

// TestWholeClusterRestart: every node stopped (some gracefully, some with
// kill -9, while writes are in flight), then all started again in a random
// order with gaps, without an operator choosing a node: the cluster comes
// back by itself with every acknowledged write, and takes writes again.
func TestWholeClusterRestart(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c, "CREATE DATABASE ld", loadSchema)
	for round := range 2 {
		l := startLoad(t, c, c.Nodes, 2)
		l.waitMore(40, 30*time.Second, "load before the restart")
		order := rand.Perm(len(c.Nodes))
		for k, i := range order {
			if (k+round)%2 == 0 {
				c.Nodes[i].Kill()
			} else {
				c.Nodes[i].Stopped()
			}
		}
		l.halt()
		start := rand.Perm(len(c.Nodes))
		for k, i := range start {
			if k > 0 {
				time.Sleep(time.Duration(rand.IntN(1500)) * time.Millisecond) // nodes come back at different times
			}
			c.Nodes[i].Start()
		}
		c.WaitAllReady()
		t.Logf("round %d: stopped in order %v, started in order %v; ready", round, order, start)
		c.WaitConverged()
		l.verify(c)
		mustExec(t, c.Nodes[start[0]].Open(t, "ld"), "INSERT INTO w (writer, n) VALUES (?, 1)", 1000+round)
	}
	c.WaitConverged()
	c.AssertIdentical(t)
}
