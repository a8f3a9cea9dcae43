package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
)

type src struct {
	st      Status
	changes []StateChange
}

func (s *src) AdminStatus() Status { return s.st }

func (s *src) Nodes() NodeList {
	return NodeList{Reporter: s.st.ID, Nodes: []Node{{ID: "n1", State: "active", Leader: true}, {ID: "n2", State: "standby"}}}
}

func (s *src) SetNodeState(_ context.Context, node, state, reason string, _ bool) (uint64, error) {
	if state == "standby" && node == "n1" {
		return 0, &RefusedError{Msg: "node n1 is the only active node"}
	}
	if node == "down" {
		return 0, errors.New("no leader reachable")
	}
	s.changes = append(s.changes, StateChange{State: node + "=" + state, Reason: reason})
	return 42, nil
}

func TestAuthAndReady(t *testing.T) {
	s, err := New(Config{Listen: "127.0.0.1:0", Token: "secret-token"}, &src{st: Status{ID: "n1", Leader: "n1", State: "serving", CommitIndex: 5, AppliedIndex: 4, ApplyLagMS: 3000}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, tok := range []string{"", "wrong"} {
		_, err := (&Client{Endpoint: "http://" + s.Addr(), Token: tok}).Status(ctx)
		var he *HTTPError
		if !errors.As(err, &he) || he.Code != http.StatusUnauthorized {
			t.Fatalf("token %q: want 401, got %v", tok, err)
		}
	}
	c := &Client{Endpoint: "http://" + s.Addr(), Token: "secret-token"}
	st, err := c.Status(ctx)
	if err != nil || st.ID != "n1" {
		t.Fatalf("status: %+v %v", st, err)
	}
	if ok, err := c.Ready(ctx); err != nil || ok {
		t.Fatalf("ready while catching up: ok=%v err=%v", ok, err)
	}
	if resp, err := http.Get("http://" + s.Addr() + "/debug/pprof/"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("pprof without a token: want 401, got %v %v", resp, err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
}

func TestNodesAndStateChanges(t *testing.T) {
	source := &src{st: Status{ID: "n1"}}
	s, err := New(Config{Listen: "127.0.0.1:0", Token: "tok"}, source, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := (&Client{Endpoint: "http://" + s.Addr(), Token: "nope"}).SetNodeState(ctx, "n2", "active", "", false); err == nil {
		t.Fatal("state change with a wrong token accepted")
	}
	c := &Client{Endpoint: "http://" + s.Addr(), Token: "tok"}
	l, err := c.Nodes(ctx)
	if err != nil || len(l.Nodes) != 2 || l.Nodes[1].State != "standby" || l.Reporter != "n1" {
		t.Fatalf("nodes: %+v %v", l, err)
	}
	got, err := c.SetNodeState(ctx, "n2", "active", "back from lunch", false)
	if err != nil || got.Index != 42 || got.Node != "n2" || got.State != "active" {
		t.Fatalf("accepted change: %+v %v", got, err)
	}
	if len(source.changes) != 1 || source.changes[0].Reason != "back from lunch" {
		t.Fatalf("source saw %+v", source.changes)
	}
	for _, tc := range []struct {
		node, state string
		code        int
		msg         string
	}{
		{"n1", "standby", http.StatusConflict, "only active node"},
		{"down", "active", http.StatusServiceUnavailable, "no leader reachable"},
	} {
		_, err := c.SetNodeState(ctx, tc.node, tc.state, "", false)
		var he *HTTPError
		if !errors.As(err, &he) || he.Code != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s -> %s: %v, want HTTP %d saying %q", tc.node, tc.state, err, tc.code, tc.msg)
		}
	}
	// A malformed body is a 400 that says what to send.
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr()+"/nodes/n2/state", strings.NewReader(`{"sate":"x"}`))
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed body: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestCompareChecksums(t *testing.T) {
	same := CompareChecksums("x", 7, map[string]map[string]string{
		"n1": {"a.t": "1:2:3", "a.u": "0:0:0"},
		"n2": {"a.t": "1:2:3", "a.u": "0:0:0"},
	}, nil, nil)
	if !same.Identical || len(same.Tables) != 2 || same.Index != 7 || !slices.Equal(same.Nodes, []string{"n1", "n2"}) {
		t.Fatalf("identical: %+v", same)
	}
	diff := CompareChecksums("y", 8, map[string]map[string]string{
		"n1": {"a.t": "1:2:3"},
		"n2": {"a.t": "1:2:4", "a.extra": "1:1:1"},
	}, nil, nil)
	if diff.Identical || diff.Tables[0].Table != "a.extra" || diff.Tables[0].Match || diff.Tables[0].Hashes["n1"] != "" || diff.Tables[1].Match {
		t.Fatalf("differing: %+v", diff)
	}
	if r := CompareChecksums("z", 9, map[string]map[string]string{"n1": {"a.t": "1"}}, nil, []string{"n2"}); r.Identical {
		t.Fatalf("a missing node cannot prove identity: %+v", r)
	}
	if r := CompareChecksums("z", 9, map[string]map[string]string{"n1": {"a.t": "1"}}, map[string]string{"n2": "boom"}, nil); r.Identical {
		t.Fatalf("a failed node cannot prove identity: %+v", r)
	}
}

func TestMetricsAndStream(t *testing.T) {
	s, err := New(Config{Listen: "127.0.0.1:0", Token: "tok"}, &src{st: Status{ID: "n1", Role: "leader", State: "serving", CommitIndex: 10, AppliedIndex: 7, BatchedRecords: 3,
		Clients: ClientStats{Connections: 2, Reads: 40, Writes: 5, Commits: 4, Conflicts: 1}}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(path, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := get("/metrics", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/metrics without a token: %d", resp.StatusCode)
	}
	resp := get("/metrics", "tok")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"lockstep_applied_index 7", "lockstep_apply_lag 3", "lockstep_is_leader 1", "lockstep_serving 1",
		"lockstep_batched_records_total 3", "lockstep_client_connections 2", "lockstep_client_reads_total 40",
		"lockstep_client_writes_total 5", "lockstep_client_commits_total 4", "lockstep_client_conflicts_total 1", `lockstep_node_state{node="n2",state="standby"} 1`, "go_goroutines", "tok"} {
		if want == "tok" {
			if strings.Contains(string(b), want) {
				t.Errorf("/metrics shows the token")
			}
			continue
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	resp = get("/metrics/stream", "tok")
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("stream content type %q", ct)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	var st Status
	if err != nil || !strings.HasPrefix(line, "data: ") || json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &st) != nil || st.AppliedIndex != 7 {
		t.Errorf("first stream event %q: %v", line, err)
	}
}

// TestReadyUnderApplyLag: a serving node that applies a moment after each
// commit is ready; one whose database is more than ReadyLag behind, or that
// does not serve, is not.
func TestReadyUnderApplyLag(t *testing.T) {
	base := Status{Leader: "n1", State: "serving", CommitIndex: 100}
	for _, c := range []struct {
		applied uint64
		lagMS   int64
		state   string
		want    bool
	}{
		{100, 0, "serving", true},
		{97, 40, "serving", true},
		{60, 2500, "serving", false},
		{100, 0, "no-quorum", false},
	} {
		st := base
		st.AppliedIndex, st.ApplyLagMS, st.State = c.applied, c.lagMS, c.state
		if got, why := Ready(st); got != c.want {
			t.Errorf("Ready(applied %d of 100, %d ms behind, %s) = %v (%s), want %v", c.applied, c.lagMS, c.state, got, why, c.want)
		}
	}
}

func TestParseWeights(t *testing.T) {
	w, err := ParseWeights("n1=3, n2=0")
	if err != nil || w["n1"] != 3 || w["n2"] != 0 || FormatWeights(w) != "n1=3,n2=0" {
		t.Fatalf("ParseWeights: %v %v", w, err)
	}
	for _, bad := range []string{"n1", "n1=-1", "=2", "n1=x"} {
		if _, err := ParseWeights(bad); err == nil {
			t.Fatalf("ParseWeights(%q) accepted", bad)
		}
	}
}
