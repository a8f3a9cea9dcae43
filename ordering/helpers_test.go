package ordering

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/internal/testutil"
)

// fakeApplier records what it applied, in memory. It survives a node restart
// (reuse the same value), like a real database would.
type fakeApplier struct {
	salt string // non-empty: outcomes hash differently (a diverged node)

	mu         sync.Mutex
	applied    uint64
	hash       string
	calls      int      // Apply calls with at least one entry
	ids        []string // KindStatements entry IDs in apply order
	violations []string
	failNext   int // fail this many Apply calls
}

var _ Applier = (*fakeApplier)(nil)

func (a *fakeApplier) AppliedIndex(context.Context) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied, nil
}

func (a *fakeApplier) Apply(_ context.Context, index uint64, entries []*command.Entry) ([][]command.Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failNext > 0 {
		a.failNext--
		return nil, errors.New("fake: database down")
	}
	if index <= a.applied {
		a.violations = append(a.violations, fmt.Sprintf("index %d applied again (applied %d)", index, a.applied))
	}
	a.applied = index
	if len(entries) > 0 {
		a.calls++
	}
	out := make([][]command.Result, len(entries))
	for i, e := range entries {
		if e.Kind != command.KindStatements {
			a.violations = append(a.violations, fmt.Sprintf("index %d: got a %s entry", index, e.Kind))
		}
		a.ids = append(a.ids, e.ID.String())
		h := sha256.Sum256([]byte(a.hash + a.salt + e.ID.String()))
		a.hash = hex.EncodeToString(h[:8])
		for range e.Stmts {
			out[i] = append(out[i], command.Result{AffectedRows: 1, LastInsertID: index})
		}
	}
	return out, nil
}

func (a *fakeApplier) OutcomeHash() (uint64, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied, a.hash
}

func (a *fakeApplier) snapshot() (ids []string, violations []string, calls int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.ids...), append([]string(nil), a.violations...), a.calls
}

type testCluster struct {
	t        testing.TB
	cfgs     []Config
	nodes    []*Node
	appliers []*fakeApplier
	logger   *slog.Logger
}

func testLogger() *slog.Logger {
	lv := slog.LevelWarn
	if os.Getenv("ORDERING_DEBUG") != "" {
		lv = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
}

// newTestCluster starts n nodes on loopback ports. mod may adjust each
// node's config and applier before start.
func newTestCluster(t testing.TB, n int, mod func(i int, c *Config, a *fakeApplier)) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, logger: testLogger()}
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
	for i := 0; i < n; i++ {
		c := DefaultConfig()
		c.NodeID = fmt.Sprintf("n%d", i+1)
		c.RaftAddr = lns[i].Addr().String()
		c.Listener = lns[i]
		c.DataDir = t.TempDir()
		c.Peers = peers
		a := &fakeApplier{}
		if mod != nil {
			mod(i, &c, a)
		}
		tc.cfgs = append(tc.cfgs, c)
		tc.appliers = append(tc.appliers, a)
	}
	tc.nodes = make([]*Node, n)
	for i := range tc.cfgs {
		tc.start(i)
	}
	t.Cleanup(func() {
		for _, nd := range tc.nodes {
			if nd != nil {
				nd.Close()
			}
		}
	})
	return tc
}

func (tc *testCluster) start(i int) {
	tc.t.Helper()
	c := tc.cfgs[i]
	if tc.nodes[i] != nil || c.Listener == nil {
		// Restart: listen again on the same address.
		err := testutil.Until(5*time.Second, testutil.Interval, func() error {
			var err error
			c.Listener, err = net.Listen("tcp", c.RaftAddr)
			return err
		})
		if err != nil {
			tc.t.Fatal(err)
		}
	}
	nd, err := New(c, tc.appliers[i], tc.logger)
	if err != nil {
		tc.t.Fatalf("start node %d: %v", i, err)
	}
	tc.cfgs[i].Listener = nil
	tc.nodes[i] = nd
}

func (tc *testCluster) stop(i int) {
	tc.t.Helper()
	if err := tc.nodes[i].Close(); err != nil {
		tc.t.Fatalf("close node %d: %v", i, err)
	}
}

// waitLeader waits until exactly one of the given live nodes leads and all
// of them name it; it returns its position.
func (tc *testCluster) waitLeader(live ...int) int {
	tc.t.Helper()
	leader := -1
	testutil.Eventually(tc.t, 20*time.Second, "a leader", func() bool {
		leader = -1
		var id string
		for _, i := range live {
			s := tc.nodes[i].Status()
			if s.Role == "leader" {
				if leader >= 0 {
					return false
				}
				leader = i
			}
			if id == "" {
				id = s.LeaderID
			}
			if s.LeaderID == "" || s.LeaderID != id {
				return false
			}
		}
		return leader >= 0
	})
	return leader
}

func all(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// waitConverged waits until the given nodes' appliers hold the same
// statement entries and returns that sequence.
func (tc *testCluster) waitConverged(want int, live ...int) []string {
	tc.t.Helper()
	var ids []string
	testutil.Eventually(tc.t, 30*time.Second, fmt.Sprintf("%d entries applied on nodes %v", want, live), func() bool {
		for _, i := range live {
			got, _, _ := tc.appliers[i].snapshot()
			if len(got) < want {
				return false
			}
		}
		return true
	})
	first, _, _ := tc.appliers[live[0]].snapshot()
	for _, i := range live {
		got, viol, _ := tc.appliers[i].snapshot()
		if len(viol) > 0 {
			tc.t.Fatalf("node %d applier violations: %v", i, viol)
		}
		if len(got) != len(first) {
			tc.t.Fatalf("node %d applied %d entries, node %d applied %d", i, len(got), live[0], len(first))
		}
		for k := range got {
			if got[k] != first[k] {
				tc.t.Fatalf("node %d applied %s at position %d, node %d applied %s", i, got[k], k, live[0], first[k])
			}
		}
		seen := map[string]bool{}
		for _, id := range got {
			if seen[id] {
				tc.t.Fatalf("node %d applied %s twice", i, id)
			}
			seen[id] = true
		}
	}
	ids = first
	return ids
}

func stmtEntry(sql string) *command.Entry {
	return &command.Entry{Kind: command.KindStatements, Stmts: []command.Stmt{{SQL: sql}}}
}

func runtimeGOMAXPROCS() int { return runtime.GOMAXPROCS(0) }
