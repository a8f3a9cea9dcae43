package view_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/console/view"
	"github.com/lockstepdb/lockstep/console/view/fakeadmin"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

type rig struct {
	t   *testing.T
	c   *fakeadmin.Cluster
	f   *view.Follower
	m   *view.Model
	now time.Time
}

func newRig(t *testing.T) *rig {
	c := fakeadmin.New(t, "n1", "n2", "n3")
	f, err := view.NewFollower(view.Config{Endpoints: c.Endpoints(), Token: fakeadmin.Token})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, c: c, f: f, m: view.NewModel(60), now: t0}
}

func (r *rig) poll() view.View {
	r.t.Helper()
	r.now = r.now.Add(time.Second)
	return r.m.Update(r.f.Poll(context.Background(), r.now))
}

func node(v view.View, id string) view.NodeView {
	for _, n := range v.Nodes {
		if n.ID == id {
			return n
		}
	}
	return view.NodeView{}
}

func hasEvent(v view.View, kind, sub string) bool {
	for _, e := range v.Events {
		if e.Kind == kind && strings.Contains(e.Text, sub) {
			return true
		}
	}
	return false
}

func TestGlyphPerState(t *testing.T) {
	r := newRig(t)
	v := r.poll()
	if !v.Connected || v.Leader != "n1" || len(v.Nodes) != 3 {
		t.Fatalf("first view: %+v", v)
	}
	for _, n := range v.Nodes {
		if n.Kind != view.Active || !n.Answered {
			t.Fatalf("%s: %v", n.ID, n.Kind)
		}
	}
	cases := []struct {
		set  func(st *admin.Status)
		want view.Kind
	}{
		{func(st *admin.Status) { st.NodeState, st.State = "standby", "not-serving" }, view.Standby},
		{func(st *admin.Status) { st.NodeState, st.State = "maintenance", "not-serving" }, view.Maintenance},
		{func(st *admin.Status) { st.NodeState, st.State = "offline", "not-serving" }, view.Offline},
		{func(st *admin.Status) { st.NodeState, st.State = "joining", "catching-up" }, view.Transitional},
		{func(st *admin.Status) { st.NodeState, st.State = "active", "catching-up" }, view.Transitional},
		{func(st *admin.Status) { st.State, st.StateDetail = "no-quorum", "leader unreachable for 2s" }, view.Fenced},
		{func(st *admin.Status) {
			st.State, st.Diverged, st.DivergedDetail = "diverged", true, "hash differs at 90"
		}, view.Diverged},
		{func(st *admin.Status) { st.Witness = true }, view.Witness},
	}
	for _, tc := range cases {
		r.c.Update("n3", func(st *admin.Status) {
			*st = admin.Status{ID: "n3", Role: "follower", Leader: "n1", State: "serving", NodeState: "active", CommitIndex: 100, AppliedIndex: 50}
			tc.set(st)
		})
		if got := node(r.poll(), "n3"); got.Kind != tc.want || got.Label != tc.want.String() {
			t.Errorf("want %v, got %v (%s)", tc.want, got.Kind, got.Detail)
		}
	}
	v = r.poll()
	if !hasEvent(v, "fence", "n3 fenced") || !hasEvent(v, "diverge", "n3 DIVERGED") || !hasEvent(v, "state", "n3: active → standby") ||
		!hasEvent(v, "join", "n3 transfer: 50%") {
		t.Errorf("events: %v", v.Events)
	}
	// Every kind has its own colour.
	seen := map[any]view.Kind{}
	for _, k := range view.Kinds {
		if o, dup := seen[k.Color()]; dup {
			t.Errorf("%v and %v share a colour", k, o)
		}
		seen[k.Color()] = k
	}
}

func TestRatesAndCharts(t *testing.T) {
	r := newRig(t)
	r.poll()
	r.c.Update("n2", func(st *admin.Status) {
		st.Clients = admin.ClientStats{Connections: 3, Reads: 120, Writes: 30, Commits: 25, Conflicts: 10}
		st.ApplyLagMS = 40
	})
	r.poll()
	r.c.Update("n2", func(st *admin.Status) { st.Clients.Reads = 220 })
	r.c.Update("n3", func(st *admin.Status) { st.Clients.Reads = 50 })
	v := r.poll()
	n2 := node(v, "n2")
	if n2.ReadsPS != 100 || n2.Conns != 3 || n2.ApplyLagMS != 40 || n2.Path != "primary" {
		t.Errorf("n2: %+v", n2)
	}
	cl := r.m.Series(view.ClusterScope, view.Reads).Points()
	if len(cl) != 3 || cl[1].V != 120 || cl[2].V != 150 {
		t.Errorf("cluster reads/s: %v", cl)
	}
	if got := r.m.Series("n2", view.Conflicts).Points()[1].V; got != 10 {
		t.Errorf("n2 conflicts/s %v", got)
	}
	if got := r.m.Series(view.ClusterScope, view.ApplyLag).Last().V; got != 40 {
		t.Errorf("cluster lag %v", got)
	}
	if !hasEvent(v, "conflicts", "burst of conflicts on n2") || !hasEvent(v, "conflicts", "back to 0/s") {
		t.Errorf("events: %v", v.Events)
	}
	// A node restart (counters back to zero) gives no negative rate.
	r.c.Update("n2", func(st *admin.Status) { st.Clients = admin.ClientStats{} })
	if got := node(r.poll(), "n2").ReadsPS; got != 0 {
		t.Errorf("after a restart: %v", got)
	}
}

func TestSeriesRing(t *testing.T) {
	s := view.NewSeries(3)
	for i := range 5 {
		s.Add(t0.Add(time.Duration(i)*time.Second), float64(i))
	}
	p := s.Points()
	if len(p) != 3 || p[0].V != 2 || p[2].V != 4 || s.Max() != 4 || s.Last().V != 4 {
		t.Fatalf("%v", p)
	}
	if _, ok := view.Rate(5, 3, time.Second); ok {
		t.Fatal("a counter going back has no rate")
	}
}

func TestFollowsTheCluster(t *testing.T) {
	r := newRig(t)
	v := r.poll()
	if v.Via != "n1" || !hasEvent(v, "connection", "connected to the cluster through n1") {
		t.Fatalf("%+v", v)
	}
	r.c.Stop("n1")
	r.c.SetLeader("n2")
	v = r.poll()
	if !v.Connected || v.Via != "n2" || !hasEvent(v, "connection", "n1 stopped answering: now following the cluster through n2") {
		t.Fatalf("after n1 went: %+v", v)
	}
	if n1 := node(v, "n1"); n1.Kind != view.Offline || n1.Label != "offline (down)" {
		t.Errorf("n1: %+v", n1)
	}
	if !hasEvent(v, "leader", "leader changed: n1 → n2") || !hasEvent(v, "reach", "n1 stopped answering") {
		t.Errorf("events: %v", v.Events)
	}
	if ep := r.f.Client().Endpoint; ep != r.c.Endpoint("n2") {
		t.Errorf("actions go to %s", ep)
	}
	r.c.Stop("n2")
	r.c.Stop("n3")
	v = r.poll()
	if v.Connected || !strings.HasPrefix(v.Banner, "NO CONNECTION") || !hasEvent(v, "connection", "lost the connection") {
		t.Fatalf("with nobody answering: %+v", v)
	}
	for _, n := range v.Nodes {
		if n.Kind != view.Unknown {
			t.Errorf("%s shown as %v without a connection", n.ID, n.Kind)
		}
	}
}

func TestActions(t *testing.T) {
	r := newRig(t)
	v := r.poll()
	enabled := func(n view.NodeView) map[view.Action]view.Choice {
		out := map[view.Action]view.Choice{}
		for _, c := range view.Allowed(n) {
			out[c.Action] = c
		}
		return out
	}
	n1 := enabled(node(v, "n1"))
	if n1[view.SetActive].Enabled || !n1[view.SetStandby].Enabled || !n1[view.SetStandby].Confirm ||
		n1[view.MakeLeader].Enabled || !n1[view.TransferAway].Enabled || !n1[view.Remove].Confirm {
		t.Errorf("n1 (active leader): %+v", n1)
	}
	if _, ok := view.Quick(node(v, "n2")); ok {
		t.Error("ctrl-click offers bring-active on an active node")
	}
	// Through the action path: n2 to standby, then back.
	c := r.f.Client()
	if msg, err := view.Do(context.Background(), c, "n2", view.SetStandby, "console"); err != nil || !strings.Contains(msg, "n2 set standby") {
		t.Fatalf("standby: %q %v", msg, err)
	}
	v = r.poll()
	n2 := node(v, "n2")
	if n2.Kind != view.Standby {
		t.Fatalf("n2 after standby: %v", n2.Kind)
	}
	q, ok := view.Quick(n2)
	if !ok || q.Confirm {
		t.Fatalf("quick on standby: %+v %v", q, ok)
	}
	if e := enabled(n2); e[view.SetMaintenance].Confirm || !e[view.MakeLeader].Enabled {
		t.Errorf("standby n2: %+v", e)
	}
	r.c.Refuse("n3 is the last voter able to keep a quorum: pass force")
	_, err := view.Do(context.Background(), c, "n3", view.SetOffline, "")
	why, refused := view.Refusal(err)
	if !refused || why != "n3 is the last voter able to keep a quorum: pass force" {
		t.Fatalf("refusal: %q %v (%v)", why, refused, err)
	}
	if msg := view.Explain("offline n3", err); !strings.Contains(msg, "refused by the cluster: n3 is the last") {
		t.Error(msg)
	}
	if msg, err := view.Do(context.Background(), c, "n3", view.MakeLeader, ""); err != nil || msg != "leadership transferred to n3" {
		t.Errorf("%q %v", msg, err)
	}
	diverged := view.NodeView{ID: "n3", Kind: view.Diverged, NodeState: "active"}
	if e := enabled(diverged); e[view.SetActive].Enabled || e[view.MakeLeader].Enabled || !e[view.SetOffline].Enabled {
		t.Errorf("diverged: %+v", e)
	}
	if e := enabled(view.NodeView{Kind: view.Witness}); e[view.SetStandby].Enabled || !e[view.Remove].Enabled {
		t.Errorf("witness: %+v", e)
	}
	res, err := c.Checksum(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows := view.ChecksumRows(res)
	if len(rows) != 3 || rows[0][0] != "table" || rows[2][4] != "NO" || !strings.Contains(view.ChecksumSummary(res), "NOT identical") {
		t.Errorf("checksum rows: %v", rows)
	}
}

// TestShortIntervalRate: a poll soon after the last repeats the last rate
// instead of dividing one conflict by a few milliseconds.
func TestShortIntervalRate(t *testing.T) {
	m := view.NewModel(10)
	snap := func(at time.Time, conflicts uint64) view.Snapshot {
		return view.Snapshot{At: at, Connected: true, Via: "n1", Nodes: []admin.Node{{ID: "n1", State: "active", Leader: true}},
			Status: map[string]admin.Status{"n1": {ID: "n1", State: "serving", NodeState: "active", Clients: admin.ClientStats{Conflicts: conflicts}}}}
	}
	m.Update(snap(t0, 0))
	m.Update(snap(t0.Add(time.Second), 2))
	m.Update(snap(t0.Add(time.Second+50*time.Millisecond), 3))
	p := m.Series("n1", view.Conflicts).Points()
	if len(p) != 3 || p[1].V != 2 || p[2].V != 2 {
		t.Fatalf("conflicts/s: %v", p)
	}
	m.Update(snap(t0.Add(2*time.Second), 5))
	if got := m.Series("n1", view.Conflicts).Last().V; got != 3 {
		t.Fatalf("after a second: %v", got)
	}
}
