package e2e_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/e2e"
)

// switchBound is what this test accepts between the leader's primary link
// going down and every affected path being on the secondary: the probes'
// worst case is 140 ms (2 × (20 ms interval + 50 ms timeout)); the rest is
// slack for a loaded 2-core machine. It must stay below the leader's lease
// (250 ms) for the leader to keep its term, which the test checks too.
const switchBound = 250 * time.Millisecond

// TestSecondaryNetwork: a 3-node cluster with a secondary cluster network.
// Under write load through a follower, the leader's primary link goes down.
// Raft and forwarding move to the secondary within the lease: the leader
// and its term do not change, writes keep succeeding with no client error,
// and every node's status (and clusterctl status) shows the secondary for
// the paths to and from the leader. When the link comes back every path
// returns to the primary. Every acknowledged write is on every node.
func TestSecondaryNetwork(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithSecondaryNet())
	setup(t, c, "CREATE DATABASE ld", loadSchema)
	leader := c.WaitForLeader()
	followers := c.Other(leader)
	before := leader.MustStatus(t)
	for _, n := range c.Nodes {
		for _, p := range n.MustStatus(t).Paths {
			if p.Using != "primary" || p.Secondary == "" {
				t.Fatalf("%s before the cut: path to %s %+v, want the primary of a peer with a secondary", n.ID, p.Peer, p)
			}
		}
	}

	l := startLoad(t, c, followers[:1], 3)
	l.waitMore(50, 30*time.Second, "load through a follower before the cut")
	l.mark("before the cut")
	errsBefore := l.errs.Load()

	// affected is whether a path crosses the leader's primary link.
	affected := func(n *e2e.Node, peer string) bool { return n == leader || peer == leader.ID }
	// onPaths waits until every affected path uses want (and the others
	// the primary), and returns the latest switch among the affected ones.
	onPaths := func(want string, timeout time.Duration) time.Time {
		t.Helper()
		var last time.Time
		e2e.Eventually(t, timeout, "paths on the "+want, func() error {
			last = time.Time{}
			for _, n := range c.Nodes {
				st, err := n.Status()
				if err != nil {
					return err
				}
				if len(st.Paths) != len(c.Nodes)-1 {
					return fmt.Errorf("%s reports %d paths, want %d", n.ID, len(st.Paths), len(c.Nodes)-1)
				}
				for _, p := range st.Paths {
					w := "primary"
					if affected(n, p.Peer) {
						w = want
						if p.Since.After(last) {
							last = p.Since
						}
					}
					if p.Using != w {
						return fmt.Errorf("%s reaches %s on its %s, want %s", n.ID, p.Peer, p.Using, w)
					}
				}
			}
			return nil
		})
		return last
	}
	sameLeader := func(when string) {
		t.Helper()
		for _, n := range c.Nodes {
			st := n.MustStatus(t)
			if st.Leader != before.Leader || st.Term != before.Term {
				t.Errorf("%s: %s knows leader %s in term %d, want %s in term %d (no leader change)", when, n.ID, st.Leader, st.Term, before.Leader, before.Term)
			}
		}
	}

	cut := time.Now()
	leader.PrimaryDown(t)
	switched := onPaths("secondary", 20*time.Second)
	took := switched.Sub(cut)
	t.Logf("link down → last affected path on the secondary: %s (bound %s)", took.Round(time.Millisecond), switchBound)
	if took > switchBound {
		t.Errorf("the switch to the secondary took %s, want at most %s", took.Round(time.Millisecond), switchBound)
	}
	l.waitMore(100, 30*time.Second, "writes over the secondary")
	l.mark("over the secondary")
	sameLeader("over the secondary")
	out, _, err := followers[0].Clusterctl(t, "status")
	if err != nil || !strings.Contains(out, "PATH") || !strings.Contains(out, leader.ID+"    SECONDARY") {
		t.Errorf("clusterctl status on %s does not show the secondary path to %s: %v\n%s", followers[0].ID, leader.ID, err, out)
	} else {
		t.Logf("clusterctl status on %s:\n%s", followers[0].ID, out)
	}

	healed := time.Now()
	leader.PrimaryUp(t)
	back := onPaths("primary", 30*time.Second)
	t.Logf("link up → last affected path back on the primary: %s (after PathRecovery, 1s, of answered probes)", back.Sub(healed).Round(time.Millisecond))
	l.waitMore(100, 30*time.Second, "writes after the heal")
	l.mark("after the heal")
	sameLeader("after the heal")

	l.halt()
	for _, r := range l.rates() {
		t.Log(r)
	}
	if n := l.errs.Load() - errsBefore; n > 0 {
		t.Errorf("%d writes failed across the switches (want no client error): %v", n, l.errorKinds())
	}
	if errsBefore > 0 {
		t.Logf("%d writes failed before the cut", errsBefore)
	}
	for _, n := range c.Nodes {
		// Forwards cut by the switch that the leader confirmed it never
		// received (ordering/resolve.go), sent again instead of failing.
		if log, err := os.ReadFile(n.LogPath); err == nil {
			if k := strings.Count(string(log), "forward lost before it reached the leader"); k > 0 {
				t.Logf("%s: %d lost forwards resolved and sent again", n.ID, k)
			}
		}
	}
	c.WaitConverged()
	l.verify(c)
	c.AssertIdentical(t)
}
