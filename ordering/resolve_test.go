package ordering

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/command"
)

// TestForwardLedger: a resolved nonce is refused when its request arrives
// later; a received one resolves as received; old nonces are pruned.
func TestForwardLedger(t *testing.T) {
	l := newForwardLedger(time.Minute)
	t0 := time.Unix(1000, 0)
	if !l.receive(1, t0) || !l.receive(1, t0) {
		t.Fatal("a new request is received (and receive is idempotent)")
	}
	if !l.resolve(1, t0) {
		t.Error("a received request resolves as received")
	}
	if l.resolve(2, t0) {
		t.Error("an unknown request resolves as not received")
	}
	if l.receive(2, t0) {
		t.Error("a request resolved as lost is refused when it arrives")
	}
	l.receive(3, t0.Add(2*time.Minute)) // prunes 1 and 2
	if len(l.m) != 1 || len(l.order) != 1 {
		t.Errorf("after pruning: %d nonces, %d in order", len(l.m), len(l.order))
	}
}

// TestResolveRefusesLateRequest: over a real cluster, the leader answers a
// resolve of a nonce it never saw with its incarnation, and then refuses
// the request carrying that nonce (nothing is ordered); a request it did
// receive resolves as received.
func TestResolveRefusesLateRequest(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	leader := tc.waitLeader(all(3)...)
	f := tc.nodes[(leader+1)%3]
	addr := tc.cfgs[leader].Peers[tc.cfgs[leader].NodeID]

	a, err := f.askResolve(context.Background(), addr, 77)
	if err != nil || a.Received || a.Incarnation != tc.nodes[leader].incarnation {
		t.Fatalf("resolve of an unseen nonce: %+v, %v", a, err)
	}
	post := func(nonce uint64) forwardResponse {
		t.Helper()
		e := stmtEntry("late")
		e.ID = command.EntryID{Node: f.cfg.NodeID, Seq: nonce}
		body, _ := command.Encode([]*command.Entry{e})
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+pathSubmit, bytes.NewReader(body))
		req.Header.Set(forwardNonce, strconv.FormatUint(nonce, 10))
		resp, err := f.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var fr forwardResponse
		if err := json.NewDecoder(resp.Body).Decode(&fr); err != nil {
			t.Fatal(err)
		}
		return fr
	}
	if fr := post(77); fr.Code != "not_leader" {
		t.Errorf("request with a resolved nonce: %+v, want not_leader", fr)
	}
	if fr := post(78); fr.Code != "ok" || fr.Incarnation != tc.nodes[leader].incarnation {
		t.Errorf("request with a fresh nonce: %+v", fr)
	}
	if a, err := f.askResolve(context.Background(), addr, 78); err != nil || !a.Received {
		t.Errorf("resolve of a received nonce: %+v, %v", a, err)
	}
	term := f.raft.CurrentTerm()
	if !f.resolveLost(context.Background(), addr, 79, tc.nodes[leader].incarnation, term) {
		t.Error("resolveLost of an unseen nonce from the same incarnation")
	}
	if f.resolveLost(context.Background(), addr, 80, 12345, term) {
		t.Error("resolveLost trusted another incarnation")
	}
	// A leader that is gone (its port refuses) is not waited for.
	tc.stop(leader)
	start := time.Now()
	if f.resolveLost(context.Background(), addr, 81, tc.nodes[leader].incarnation, term) {
		t.Error("resolveLost of a stopped leader")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("resolveLost waited %s for a stopped leader", d)
	}
}
