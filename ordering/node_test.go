package ordering

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/internal/testutil"
)

func TestSubmitThroughEveryNode(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.waitLeader(all(3)...)
	ctx := context.Background()
	var want []string
	for round := 0; round < 5; round++ {
		for i, nd := range tc.nodes {
			e := stmtEntry(fmt.Sprintf("INSERT %d %d", round, i))
			res, err := nd.Submit(ctx, e)
			if err != nil {
				t.Fatalf("submit via node %d: %v", i, err)
			}
			if len(res) != 1 || res[0].AffectedRows != 1 || res[0].LastInsertID == 0 {
				t.Fatalf("submit via node %d: results %+v", i, res)
			}
			if e.ID.Node != nd.cfg.NodeID || e.ID.Seq == 0 {
				t.Fatalf("entry ID not assigned: %v", e.ID)
			}
			// Never success before the local applier has it.
			if got, _, _ := tc.appliers[i].snapshot(); got[len(got)-1] != e.ID.String() {
				t.Fatalf("node %d returned before applying %s (last applied %v)", i, e.ID, got[len(got)-1])
			}
			want = append(want, e.ID.String())
		}
	}
	got := tc.waitConverged(len(want), all(3)...)
	for k := range want {
		if got[k] != want[k] {
			t.Fatalf("position %d: applied %s, submitted %s (sequential submits must keep their order)", k, got[k], want[k])
		}
	}
	for i, nd := range tc.nodes {
		s := nd.Status()
		if len(s.Peers) != 3 || s.Diverged || s.AppliedIndex == 0 || s.CommitIndex == 0 || s.Term == 0 {
			t.Fatalf("node %d status %+v", i, s)
		}
	}
}

func TestConcurrentSubmitsAreBatched(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.waitLeader(all(3)...)
	const workers, per = 64, 50
	var wg sync.WaitGroup
	var failures atomic.Int64
	var firstErr atomic.Value
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			nd := tc.nodes[w%3]
			for k := 0; k < per; k++ {
				res, err := nd.Submit(context.Background(), stmtEntry(fmt.Sprintf("w%d k%d", w, k)))
				if err != nil || len(res) != 1 {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%v %v", err, res))
				}
			}
		}(w)
	}
	wg.Wait()
	if f := failures.Load(); f > 0 {
		t.Fatalf("%d submits failed, first: %v", f, firstErr.Load())
	}
	ids := tc.waitConverged(workers*per, all(3)...)
	if len(ids) != workers*per {
		t.Fatalf("applied %d entries, want %d", len(ids), workers*per)
	}
	_, _, calls := tc.appliers[0].snapshot()
	t.Logf("%d entries in %d records (%.1f per record)", len(ids), calls, float64(len(ids))/float64(calls))
	if calls >= workers*per {
		t.Fatalf("no batching: %d entries took %d records", len(ids), calls)
	}
}

func TestLeaderFailover(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	l := tc.waitLeader(all(3)...)
	for i := range tc.nodes {
		if _, err := tc.nodes[i].Submit(context.Background(), stmtEntry("before")); err != nil {
			t.Fatal(err)
		}
	}
	tc.stop(l)
	var live []int
	for i := range tc.nodes {
		if i != l {
			live = append(live, i)
		}
	}
	start := time.Now()
	nl := tc.waitLeader(live...)
	t.Logf("new leader n%d after %s", nl+1, time.Since(start))
	for _, i := range live {
		for k := 0; k < 5; k++ {
			if _, err := tc.nodes[i].Submit(context.Background(), stmtEntry("after")); err != nil {
				t.Fatalf("submit via survivor %d: %v", i, err)
			}
		}
	}
	tc.waitConverged(3+10, live...)
}

// Submissions running while the leader goes away either succeed, or fail with
// one of the documented errors; nothing is applied twice.
func TestSubmitDuringLeaderLoss(t *testing.T) {
	tc := newTestCluster(t, 3, func(_ int, c *Config, _ *fakeApplier) { c.OutcomeGrace = 2 * time.Second })
	l := tc.waitLeader(all(3)...)
	var live []int
	for i := range tc.nodes {
		if i != l {
			live = append(live, i)
		}
	}
	var wg sync.WaitGroup
	var ok, unknown, noLeader atomic.Int64
	var other atomic.Value
	stopAt := make(chan struct{})
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			nd := tc.nodes[live[w%2]]
			for k := 0; k < 30; k++ {
				if k == 5 && w == 0 {
					close(stopAt)
				}
				_, err := nd.Submit(context.Background(), stmtEntry("x"))
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, command.ErrOutcomeUnknown):
					unknown.Add(1)
				case errors.Is(err, command.ErrNoLeader):
					noLeader.Add(1)
				default:
					other.CompareAndSwap(nil, err.Error())
				}
			}
		}(w)
	}
	<-stopAt
	tc.stop(l)
	wg.Wait()
	t.Logf("ok=%d unknown=%d no_leader=%d", ok.Load(), unknown.Load(), noLeader.Load())
	if o := other.Load(); o != nil {
		t.Fatalf("unexpected error: %v", o)
	}
	if ok.Load() < 16*25 {
		t.Fatalf("only %d of %d submits succeeded across a failover", ok.Load(), 16*30)
	}
	tc.waitLeader(live...)
	ids := tc.waitConverged(int(ok.Load()), live...)
	if len(ids) < int(ok.Load()) {
		t.Fatalf("applied %d < succeeded %d", len(ids), ok.Load())
	}
}

func TestRestartDoesNotReapply(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.waitLeader(all(3)...)
	ctx := context.Background()
	for k := 0; k < 10; k++ {
		if _, err := tc.nodes[k%3].Submit(ctx, stmtEntry("a")); err != nil {
			t.Fatal(err)
		}
	}
	tc.waitConverged(10, all(3)...)
	// Restart a follower while the others keep taking writes.
	f := (tc.waitLeader(all(3)...) + 1) % 3
	tc.stop(f)
	for k := 0; k < 10; k++ {
		if _, err := tc.nodes[(f+1+k%2)%3].Submit(ctx, stmtEntry("b")); err != nil {
			t.Fatal(err)
		}
	}
	tc.start(f)
	tc.waitConverged(20, all(3)...)
	if _, err := tc.nodes[f].Submit(ctx, stmtEntry("c")); err != nil {
		t.Fatal(err)
	}
	// Restart the whole cluster: every node replays its log from the start.
	for i := range tc.nodes {
		tc.stop(i)
	}
	for i := range tc.nodes {
		tc.start(i)
	}
	tc.waitLeader(all(3)...)
	if _, err := tc.nodes[0].Submit(ctx, stmtEntry("d")); err != nil {
		t.Fatal(err)
	}
	tc.waitConverged(22, all(3)...) // fails on any re-apply (violations) or duplicate
	for i := range tc.nodes {
		ids, _, _ := tc.appliers[i].snapshot()
		if len(ids) != 22 {
			t.Fatalf("node %d applied %d entries, want 22", i, len(ids))
		}
	}
}

func TestDivergenceDetected(t *testing.T) {
	tc := newTestCluster(t, 3, func(i int, c *Config, a *fakeApplier) {
		c.CheckpointInterval = 100 * time.Millisecond
		if i == 2 {
			a.salt = "different"
		}
	})
	tc.waitLeader(all(3)...)
	for k := 0; k < 6; k++ {
		if _, err := tc.nodes[k%3].Submit(context.Background(), stmtEntry("x")); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 15*time.Second, "node 3 to detect divergence", func() bool { return tc.nodes[2].Status().Diverged })
	t.Logf("detail: %s", tc.nodes[2].Status().DivergedDetail)
	// The healthy nodes judged the same checkpoints (they applied the
	// reports too) and must not consider themselves diverged.
	idx := tc.nodes[2].Status().AppliedIndex
	for _, i := range []int{0, 1} {
		if err := tc.nodes[i].WaitApplied(context.Background(), idx); err != nil {
			t.Fatal(err)
		}
		if s := tc.nodes[i].Status(); s.Diverged {
			t.Fatalf("healthy node %d marked diverged: %s", i, s.DivergedDetail)
		}
	}
}

func TestNoQuorum(t *testing.T) {
	tc := newTestCluster(t, 3, func(_ int, c *Config, _ *fakeApplier) {
		c.SubmitTimeout = 2 * time.Second
		c.OutcomeGrace = time.Second
	})
	tc.waitLeader(all(3)...)
	if _, err := tc.nodes[0].Submit(context.Background(), stmtEntry("ok")); err != nil {
		t.Fatal(err)
	}
	tc.stop(1)
	tc.stop(2)
	for k := 0; k < 2; k++ { // the first may meet a stale leader lease
		start := time.Now()
		_, err := tc.nodes[0].Submit(context.Background(), stmtEntry("no quorum"))
		el := time.Since(start)
		if !errors.Is(err, command.ErrNoLeader) && !errors.Is(err, command.ErrOutcomeUnknown) {
			t.Fatalf("submit without quorum: got %v", err)
		}
		if el > 2*time.Second+time.Second+time.Second {
			t.Fatalf("submit without quorum took %s", el)
		}
		t.Logf("no quorum: %v after %s", err, el)
	}
	if _, err := tc.nodes[0].Barrier(ctxTimeout(t, time.Second)); !errors.Is(err, command.ErrNoLeader) {
		t.Fatalf("barrier without quorum: %v", err)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestApplierErrorIsRetried(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	l := tc.waitLeader(all(3)...)
	f := (l + 1) % 3
	tc.appliers[f].mu.Lock()
	tc.appliers[f].failNext = 3
	tc.appliers[f].mu.Unlock()
	if _, err := tc.nodes[f].Submit(context.Background(), stmtEntry("x")); err != nil {
		t.Fatal(err)
	}
	tc.waitConverged(1, all(3)...)
}

func TestBarrierAndWaitApplied(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	l := tc.waitLeader(all(3)...)
	if _, err := tc.nodes[l].Submit(context.Background(), stmtEntry("x")); err != nil {
		t.Fatal(err)
	}
	leaderApplied := tc.nodes[l].Status().AppliedIndex
	for i, nd := range tc.nodes {
		idx, err := nd.Barrier(ctxTimeout(t, 5*time.Second))
		if err != nil {
			t.Fatalf("barrier on node %d: %v", i, err)
		}
		if idx < leaderApplied {
			t.Fatalf("barrier on node %d returned %d < %d", i, idx, leaderApplied)
		}
		if err := nd.WaitApplied(ctxTimeout(t, 5*time.Second), idx); err != nil {
			t.Fatal(err)
		}
		if ids, _, _ := tc.appliers[i].snapshot(); len(ids) != 1 {
			t.Fatalf("node %d: %d entries applied after barrier", i, len(ids))
		}
	}
}

func TestCloseUnblocks(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.waitLeader(all(3)...)
	tc.stop(1)
	tc.stop(2)
	nd := tc.nodes[0]
	errc := make(chan error, 1)
	go func() {
		_, err := nd.Submit(context.Background(), stmtEntry("x"))
		errc <- err
	}()
	go func() { _ = nd.WaitApplied(context.Background(), 1<<40) }()
	testutil.Eventually(t, 5*time.Second, "Submit to wait for its entry", func() bool {
		nd.waiters.mu.Lock()
		defer nd.waiters.mu.Unlock()
		return len(nd.waiters.m) > 0
	})
	nd.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, command.ErrShuttingDown) && !errors.Is(err, command.ErrNoLeader) && !errors.Is(err, command.ErrOutcomeUnknown) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Submit not unblocked by Close")
	}
	if _, err := nd.Submit(context.Background(), stmtEntry("y")); !errors.Is(err, command.ErrShuttingDown) {
		t.Fatalf("submit after close: %v", err)
	}
	if s := nd.Status(); s.Role != "shutdown" {
		t.Fatalf("role after close: %s", s.Role)
	}
}

func TestMuxRejectsUnknownKind(t *testing.T) {
	tc := newTestCluster(t, 1, nil)
	tc.waitLeader(0)
	c, err := net.Dial("tcp", tc.cfgs[0].RaftAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{9})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); err == nil {
		t.Fatal("connection of unknown kind was not closed")
	}
	// A single-node cluster still orders.
	if _, err := tc.nodes[0].Submit(context.Background(), stmtEntry("x")); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.NodeID, good.RaftAddr, good.DataDir = "n1", "127.0.0.1:7001", "/tmp/x"
	good.Peers = map[string]string{"n1": "127.0.0.1:7001", "n2": "127.0.0.1:7002"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"no id":        func(c *Config) { c.NodeID = "" },
		"wildcard":     func(c *Config) { c.RaftAddr = "0.0.0.0:7001"; c.Peers["n1"] = c.RaftAddr },
		"port 0":       func(c *Config) { c.RaftAddr = "127.0.0.1:0"; c.Peers["n1"] = c.RaftAddr },
		"self missing": func(c *Config) { delete(c.Peers, "n1") },
		"addr differs": func(c *Config) { c.Peers["n1"] = "127.0.0.1:9" },
		"lease":        func(c *Config) { c.LeaderLeaseTimeout = time.Second },
		"batch":        func(c *Config) { c.MaxBatch = 0 },
		"no datadir":   func(c *Config) { c.DataDir = "" },
	} {
		c := good
		c.Peers = map[string]string{"n1": "127.0.0.1:7001", "n2": "127.0.0.1:7002"}
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
}

// BenchmarkSubmit: 3 nodes, 64 concurrent submitters spread over all nodes
// (two thirds forwarded), fsync on.
func BenchmarkSubmit(b *testing.B) {
	for _, inflight := range []int{1, 4} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			benchmarkSubmit(b, func(_ int, c *Config, _ *fakeApplier) { c.MaxInflight = inflight })
		})
	}
}

func benchmarkSubmit(b *testing.B, mod func(int, *Config, *fakeApplier)) {
	tc := newTestCluster(b, 3, mod)
	tc.waitLeader(all(3)...)
	var next atomic.Int64
	b.SetParallelism(64 / max(1, runtimeGOMAXPROCS()))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		nd := tc.nodes[int(next.Add(1))%3]
		for pb.Next() {
			if _, err := nd.Submit(context.Background(), stmtEntry("INSERT INTO t VALUES (1)")); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkSubmitSerial is one submitter on the leader: the ordering layer's
// share of a single client's write latency (fsync on, fake applier).
func BenchmarkSubmitSerial(b *testing.B) {
	tc := newTestCluster(b, 3, nil)
	l := tc.waitLeader(all(3)...)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tc.nodes[l].Submit(context.Background(), stmtEntry("INSERT INTO t VALUES (1)")); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFollowerAppliesAhead: with a commit timeout of seconds (Raft tells
// followers the commit index only that often when no record follows),
// a follower learns that its forwarded entry committed only from the
// leader's answer; it applies the record from its own log store at once
// (applyAhead) instead of waiting for Raft's next AppendEntries, and every
// node still applies every entry exactly once, in the same order.
func TestFollowerAppliesAhead(t *testing.T) {
	tc := newTestCluster(t, 3, func(i int, c *Config, a *fakeApplier) {
		c.CommitTimeout = 2 * time.Second
		c.CheckpointInterval = 0
	})
	leader := tc.waitLeader(all(3)...)
	f := (leader + 1) % 3
	ctx := context.Background()
	for k := 0; k < 20; k++ {
		if _, err := tc.nodes[f].Submit(ctx, stmtEntry(fmt.Sprintf("a%d", k))); err != nil {
			t.Fatal(err)
		}
	}
	if got := tc.nodes[f].fsm.proc.aheadRecords.Load(); got == 0 {
		t.Fatal("the follower applied no record ahead of Raft's commit notice")
	}
	// Entries through the leader and the other follower too, then every
	// node must hold the same 30 entries (no record applied twice).
	for k := 0; k < 10; k++ {
		if _, err := tc.nodes[(f+1+k%2)%3].Submit(ctx, stmtEntry(fmt.Sprintf("b%d", k))); err != nil {
			t.Fatal(err)
		}
	}
	tc.waitConverged(30, all(3)...)
}

// TestLogStoreSurvivesTailTruncation: a follower's log loses its suffix
// when a new leader overrules an old one's records (Raft's "clearing log
// suffix"), gets the new records, and must read every record back after a
// restart.
func TestLogStoreSurvivesTailTruncation(t *testing.T) {
	dir := t.TempDir()
	st, err := openLogStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte{byte(i)}})
	}
	if err := st.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteRange(8, 10); err != nil {
		t.Fatal(err)
	}
	if err := st.StoreLogs([]*raft.Log{{Index: 8, Term: 2, Type: raft.LogCommand}, {Index: 9, Term: 2, Type: raft.LogCommand}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = openLogStore(dir); err != nil {
		t.Fatalf("reopen after a tail truncation: %v", err)
	}
	defer st.Close()
	for i := uint64(1); i <= 9; i++ {
		var l raft.Log
		if err := st.GetLog(i, &l); err != nil {
			t.Fatalf("record %d after the restart: %v", i, err)
		}
		if want := uint64(1 + i/8); l.Term != want {
			t.Fatalf("record %d has term %d, want %d", i, l.Term, want)
		}
	}
	if last, _ := st.LastIndex(); last != 9 {
		t.Fatalf("last index %d, want 9", last)
	}
}

// TestClientEntriesCounted: Status.ClientEntries counts the client entries
// every node was handed, and the checkpoints and hash reports that follow
// them move the commit index but not the counter.
func TestClientEntriesCounted(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.waitLeader(all(3)...)
	ctx := context.Background()
	for i, nd := range tc.nodes {
		if _, err := nd.Submit(ctx, stmtEntry(fmt.Sprintf("INSERT %d", i))); err != nil {
			t.Fatalf("submit via node %d: %v", i, err)
		}
	}
	tc.waitConverged(3, all(3)...)
	commit := tc.nodes[0].Status().CommitIndex
	testutil.Eventually(t, 10*time.Second, "a checkpoint after the writes", func() bool {
		return tc.nodes[0].Status().CommitIndex > commit
	})
	for i, nd := range tc.nodes {
		if got := nd.Status().ClientEntries; got != 3 {
			t.Errorf("node %d: ClientEntries = %d, want 3", i, got)
		}
	}
}
