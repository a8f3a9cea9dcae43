package ordering

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/internal/testutil"
)

// TestPathPolicy: the switch thresholds and the hysteresis.
func TestPathPolicy(t *testing.T) {
	p := pathPolicy{failAfter: 2, recoverAfter: time.Second}
	t0 := time.Unix(1000, 0)
	up := probeState{probed: true, okSince: t0}
	fail := func(k int) probeState { return probeState{probed: true, fails: k} }
	for _, c := range []struct {
		name      string
		secondary bool
		prim, sec probeState
		at        time.Time
		want      bool
	}{
		{"primary answers", false, up, up, t0, false},
		{"one failed probe is not enough", false, fail(1), up, t0, false},
		{"two failed probes switch", false, fail(2), up, t0, true},
		{"not to a secondary that fails too", false, fail(5), fail(1), t0, false},
		{"not to a secondary never probed", false, fail(5), probeState{}, t0, false},
		{"stay while the primary fails", true, fail(9), up, t0, true},
		{"stay while the primary has answered briefly", true, up, up, t0.Add(999 * time.Millisecond), true},
		{"back after the recovery time", true, up, up, t0.Add(time.Second), false},
		{"back at once when the secondary breaks", true, up, fail(2), t0, false},
		{"stay when both fail", true, fail(3), fail(3), t0, true},
	} {
		if got := p.useSecondary(c.secondary, c.prim, c.sec, c.at); got != c.want {
			t.Errorf("%s: useSecondary = %v, want %v", c.name, got, c.want)
		}
	}

	var s probeState
	s.record(true, t0)
	s.record(true, t0.Add(time.Second))
	if !s.up() || !s.okSince.Equal(t0) {
		t.Errorf("after two answers: %+v, want up since %v", s, t0)
	}
	s.record(false, t0.Add(2*time.Second))
	s.record(true, t0.Add(3*time.Second))
	if !s.okSince.Equal(t0.Add(3 * time.Second)) {
		t.Errorf("an answer after a failure starts a new run: %+v", s)
	}
}

// TestSecondariesValidate: configuration errors name what is wrong, and the
// probe timings must detect a failure within the lease.
func TestSecondariesValidate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.NodeID, c.DataDir, c.RaftAddr = "n1", "/tmp/x", "10.0.0.1:7000"
		c.Peers = map[string]string{"n1": "10.0.0.1:7000", "n2": "10.0.0.2:7000"}
		c.Secondaries = map[string]string{"n1": "10.1.0.1:7000", "n2": "10.1.0.2:7000"}
		return c
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if d := pathDetection(DefaultConfig()); d >= DefaultConfig().LeaderLeaseTimeout {
		t.Fatalf("default detection %s is not within the default lease", d)
	}
	for name, mod := range map[string]func(*Config){
		"not in Peers":        func(c *Config) { c.Secondaries["n9"] = "10.1.0.9:7000" },
		"not host:port":       func(c *Config) { c.Secondaries["n2"] = "10.1.0.2" },
		"wildcard":            func(c *Config) { c.Secondaries["n1"] = "0.0.0.0:7000" },
		"port 0":              func(c *Config) { c.Secondaries["n2"] = "10.1.0.2:0" },
		"same as the primary": func(c *Config) { c.Secondaries["n2"] = "10.0.0.2:7000" },
		"slower than lease":   func(c *Config) { c.PathProbeTimeout = 200 * time.Millisecond },
		"no failures":         func(c *Config) { c.PathFailures = 0 },
	} {
		c := base()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// network stands for the primary network of a test cluster: every node's
// primary address is a proxy in front of its real listener. Cut makes the
// network drop everything (connections hang, as behind a link that went
// down); Heal restores it and resets the connections that were cut.
type network struct {
	t     testing.TB
	cut   atomic.Bool
	mu    sync.Mutex
	conns []net.Conn // every connection, both sides, to reset on heal
	lns   []net.Listener
}

// proxy listens on a new loopback port and relays to target.
func (nw *network) proxy(target string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		nw.t.Fatal(err)
	}
	nw.lns = append(nw.lns, ln)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go nw.relay(c, target)
		}
	}()
	return ln.Addr().String()
}

func (nw *network) relay(c net.Conn, target string) {
	cutAtStart := nw.cut.Load()
	var b net.Conn
	if !cutAtStart {
		var err error
		if b, err = net.Dial("tcp", target); err != nil {
			c.Close()
			return
		}
	}
	nw.mu.Lock()
	nw.conns = append(nw.conns, c)
	if b != nil {
		nw.conns = append(nw.conns, b)
	}
	nw.mu.Unlock()
	if b == nil {
		_, _ = io.Copy(io.Discard, c) // a dial behind a cut: never answered
		c.Close()
		return
	}
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			k, err := src.Read(buf)
			if err != nil {
				dst.Close()
				return
			}
			if nw.cut.Load() {
				continue // dropped on the floor
			}
			if _, err := dst.Write(buf[:k]); err != nil {
				src.Close()
				return
			}
		}
	}
	go pipe(b, c)
	pipe(c, b)
}

func (nw *network) Cut() { nw.cut.Store(true) }

// Heal restores the network; the connections that lost bytes are reset
// (a stream with a gap is broken).
func (nw *network) Heal() {
	nw.mu.Lock()
	old := nw.conns
	nw.conns = nil
	nw.mu.Unlock()
	nw.cut.Store(false)
	for _, c := range old {
		c.Close()
	}
}

func (nw *network) close() {
	for _, ln := range nw.lns {
		ln.Close()
	}
	nw.Heal()
}

// newSecondaryCluster starts 3 nodes whose primary addresses go through nw
// and whose secondary addresses are direct listeners on 127.0.0.2 (a
// certificate for 127.0.0.1 only must do for both: the TLS server name is
// the primary's host).
func newSecondaryCluster(t *testing.T, mod func(c *Config)) (*testCluster, *network) {
	nw := &network{t: t}
	t.Cleanup(nw.close)
	var peers, secondaries map[string]string
	tc := newTestCluster(t, 3, func(i int, c *Config, _ *fakeApplier) {
		if i == 0 {
			peers, secondaries = map[string]string{}, map[string]string{}
			for id, real := range c.Peers {
				peers[id] = nw.proxy(real)
			}
		}
		ln, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Skipf("cannot listen on 127.0.0.2 for the secondary network: %v", err)
		}
		secondaries[c.NodeID] = ln.Addr().String()
		c.Peers, c.Secondaries, c.SecondaryListener = peers, secondaries, ln
		if mod != nil {
			mod(c)
		}
	})
	return tc, nw
}

// waitPaths waits until every node uses want to reach every peer.
func waitPaths(t *testing.T, tc *testCluster, want string, timeout time.Duration) {
	t.Helper()
	err := testutil.Until(timeout, 5*time.Millisecond, func() error {
		for _, nd := range tc.nodes {
			for _, p := range nd.Paths() {
				if p.Using != want {
					return fmt.Errorf("%s reaches %s on its %s", nd.cfg.NodeID, p.ID, p.Using)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("paths not all %s within %s: %v", want, timeout, err)
	}
}

// TestSecondaryPath: with the whole primary network down, Raft and
// forwarding move to the secondary without a leader change (same leader,
// same term) and writes through a follower keep committing; after the
// heal every path goes back to the primary.
func TestSecondaryPath(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", withTLS), func(t *testing.T) {
			conf := testTLS(t) // its certificate names 127.0.0.1 only
			tc, nw := newSecondaryCluster(t, func(c *Config) {
				if withTLS {
					c.TLS = conf
				}
			})
			testSecondaryPath(t, tc, nw, all(3))
		})
	}
	// A witness (n3: a voter without a database) switches the same way.
	t.Run("witness", func(t *testing.T) {
		tc, nw := newSecondaryCluster(t, func(c *Config) { c.Witnesses = []string{"n3"} })
		testSecondaryPath(t, tc, nw, []int{0, 1})
	})
}

// testSecondaryPath runs the cut and heal; dbs are the nodes with a
// database (the follower written through is one of them).
func testSecondaryPath(t *testing.T, tc *testCluster, nw *network, dbs []int) {
	leader := tc.waitLeader(all(3)...)
	follower := -1
	for _, i := range dbs {
		if i != leader {
			follower = i
			break
		}
	}
	before := tc.nodes[leader].Status()
	for _, p := range tc.nodes[follower].Paths() {
		if p.Using != PathPrimary || p.Secondary == "" {
			t.Fatalf("before the cut: %+v", p)
		}
	}

	// Write load through the follower.
	var acked, unknown, other atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := tc.nodes[follower].Submit(context.Background(), stmtEntry(fmt.Sprintf("w%d-%d", w, k)))
				switch {
				case err == nil:
					acked.Add(1)
				case errors.Is(err, command.ErrOutcomeUnknown):
					unknown.Add(1)
				default:
					other.Add(1)
					t.Logf("submit: %v", err)
				}
			}
		}()
	}
	waitAcked := func(more int64, what string) {
		t.Helper()
		target := acked.Load() + more
		testutil.Eventually(t, 20*time.Second, what, func() bool { return acked.Load() >= target })
	}
	waitAcked(50, "writes before the cut")

	cut := time.Now()
	nw.Cut()
	waitPaths(t, tc, PathSecondary, 10*time.Second)
	var switched time.Duration
	for _, nd := range tc.nodes {
		for _, p := range nd.Paths() {
			switched = max(switched, p.Since.Sub(cut))
		}
	}
	t.Logf("every node on the secondary %s after the cut (last switch)", switched.Round(time.Millisecond))
	waitAcked(50, "writes over the secondary")

	healed := time.Now()
	nw.Heal()
	waitPaths(t, tc, PathPrimary, 10*time.Second)
	t.Logf("every node back on the primary %s after the heal", time.Since(healed).Round(time.Millisecond))
	waitAcked(50, "writes after the heal")
	close(stop)
	wg.Wait()

	after := tc.nodes[leader].Status()
	if after.Role != "leader" || after.Term != before.Term {
		t.Errorf("leadership changed: before %s term %d, after %s term %d", before.Role, before.Term, after.Role, after.Term)
	}
	for _, nd := range tc.nodes {
		for _, p := range nd.Paths() {
			if p.Switches != 2 {
				t.Errorf("%s → %s: %d switches, want 2 (one each way)", nd.cfg.NodeID, p.ID, p.Switches)
			}
		}
	}
	t.Logf("writes: %d acknowledged, %d outcome unknown, %d other errors", acked.Load(), unknown.Load(), other.Load())
	if other.Load() > 0 {
		t.Errorf("%d writes failed with errors other than outcome unknown", other.Load())
	}
	var applied int
	for _, i := range dbs {
		ids, _, _ := tc.appliers[i].snapshot()
		applied = max(applied, len(ids))
	}
	tc.waitConverged(applied, dbs...)
}
