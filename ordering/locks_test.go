package ordering

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/internal/testutil"
)

// lockApplier records the lock operations it applies.
type lockApplier struct {
	mu      sync.Mutex
	applied uint64
	ops     []string
}

func (a *lockApplier) AppliedIndex(context.Context) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied, nil
}

func (a *lockApplier) Apply(_ context.Context, index uint64, entries []*command.Entry) ([][]command.Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.applied = index
	out := make([][]command.Result, len(entries))
	for i, e := range entries {
		if e.Kind == command.KindLock {
			a.ops = append(a.ops, fmt.Sprintf("release-node %s keep=%q", e.Lock.Node, e.Lock.Keep))
		}
		out[i] = []command.Result{{}}
	}
	return out, nil
}

func (a *lockApplier) OutcomeHash() (uint64, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied, ""
}

func (a *lockApplier) has(op string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.ops, op)
}

// TestWatchLocks: every node releases its previous runs' locks when it
// starts; the leader releases the locks of a node whose heartbeats fail for
// longer than releaseAfter.
func TestWatchLocks(t *testing.T) {
	const n = 3
	peers := map[string]string{}
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		peers[fmt.Sprintf("n%d", i+1)] = ln.Addr().String()
	}
	nodes := make([]*Node, n)
	appliers := make([]*lockApplier, n)
	for i := range nodes {
		c := DefaultConfig()
		c.NodeID = fmt.Sprintf("n%d", i+1)
		c.RaftAddr = lns[i].Addr().String()
		c.Listener = lns[i]
		c.DataDir = t.TempDir()
		c.Peers = peers
		c.CheckpointInterval = 0
		appliers[i] = &lockApplier{}
		nd, err := New(c, appliers[i], testLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.Close() })
		nodes[i] = nd
		nd.WatchLocks(fmt.Sprintf("inc%d", i+1), time.Second)
	}
	for i := range nodes {
		for j := range nodes {
			op := fmt.Sprintf("release-node n%d keep=%q", j+1, fmt.Sprintf("inc%d", j+1))
			testutil.Eventually(t, 30*time.Second, fmt.Sprintf("node %d to apply %s", i+1, op), func() bool { return appliers[i].has(op) })
		}
	}
	leader := -1
	testutil.Eventually(t, 30*time.Second, "a leader", func() bool {
		for i, nd := range nodes {
			if nd.IsLeader() {
				leader = i
				return true
			}
		}
		return false
	})
	victim := (leader + 1) % n
	survivor := (leader + 2) % n
	stopped := time.Now()
	if err := nodes[victim].Close(); err != nil {
		t.Fatal(err)
	}
	op := fmt.Sprintf("release-node n%d keep=\"\"", victim+1)
	testutil.Eventually(t, 30*time.Second, "the leader to release the stopped node's locks", func() bool {
		return appliers[leader].has(op) && appliers[survivor].has(op)
	})
	if d := time.Since(stopped); d < time.Second {
		t.Fatalf("locks released %s after the node stopped, before releaseAfter", d)
	}
	if appliers[leader].has(fmt.Sprintf("release-node n%d keep=\"\"", survivor+1)) {
		t.Fatal("the locks of a live node were released")
	}
}
