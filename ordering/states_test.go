package ordering

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/internal/testutil"
)

// TestNodeStatesOrdered: every node agrees on every node's state; a node in
// maintenance stores the log without applying it, and back in service it
// applies what it missed, in order, before it is no longer catching up;
// states survive a restart (rebuilt from the log).
func TestNodeStatesOrdered(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.waitLeader(all(3)...)
	ctx := context.Background()
	submit := func(via int, sql string) {
		t.Helper()
		if _, err := tc.nodes[via].Submit(ctx, stmtEntry(sql)); err != nil {
			t.Fatalf("submit %q via node %d: %v", sql, via, err)
		}
	}
	submit(0, "before")
	tc.waitConverged(1, all(3)...)

	// n3 into maintenance, ordered through n1.
	if _, err := tc.nodes[0].SetNodeState(ctx, "n3", StateMaintenance, "test"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "every node to see n3 in maintenance", func() bool {
		for _, nd := range tc.nodes {
			if nd.NodeStates()["n3"] != StateMaintenance {
				return false
			}
		}
		return true
	})
	for i := range 5 {
		submit(i%2, fmt.Sprintf("during %d", i))
	}
	tc.waitConverged(6, 0, 1)
	if got, _, _ := tc.appliers[2].snapshot(); len(got) != 1 {
		t.Fatalf("n3 applied %d entries while in maintenance, want only the first", len(got))
	}
	if st, catchingUp := tc.nodes[2].OwnState(); st != StateMaintenance || !catchingUp {
		t.Fatalf("n3 own state %s, deferred %v", st, catchingUp)
	}

	// The last active nodes cannot all leave service.
	if _, err := tc.nodes[1].SetNodeState(ctx, "n1", StateStandby, ""); err != nil {
		t.Fatal(err)
	}
	_, err := tc.nodes[2].SetNodeState(ctx, "n2", StateOffline, "")
	if !errors.Is(err, ErrStateRefused) || !strings.Contains(err.Error(), "only active node") {
		t.Fatalf("taking the last active node offline: %v, want a refusal", err)
	}

	// n3 back: it applies what it missed, in the cluster's order.
	if _, err := tc.nodes[1].SetNodeState(ctx, "n3", StateActive, ""); err != nil {
		t.Fatal(err)
	}
	submit(1, "after")
	tc.waitConverged(7, all(3)...)
	testutil.Eventually(t, 10*time.Second, "n3 to finish catching up", func() bool {
		st, catchingUp := tc.nodes[2].OwnState()
		return st == StateActive && !catchingUp
	})

	// Restart n3: the states come back from the log.
	tc.stop(2)
	tc.start(2)
	testutil.Eventually(t, 20*time.Second, "restarted n3 to know every state", func() bool {
		s := tc.nodes[2].NodeStates()
		return s["n1"] == StateStandby && s["n2"] == StateActive && s["n3"] == StateActive
	})
	submit(2, "after restart")
	tc.waitConverged(8, all(3)...)
}
