package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/console/view"
	"github.com/lockstepdb/lockstep/e2e"
)

// consoleRig is the console's view logic (no GUI) following a real cluster.
type consoleRig struct {
	t    *testing.T
	f    *view.Follower
	m    *view.Model
	last view.View
}

func (r *consoleRig) poll() view.View {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r.last = r.m.Update(r.f.Poll(ctx, time.Now()))
	return r.last
}

// until polls once a second until ok holds for the view.
func (r *consoleRig) until(what string, timeout time.Duration, ok func(v view.View) bool) view.View {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := r.poll()
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("console: %s not seen within %s; last view: banner %q, nodes %+v, events %v", what, timeout, v.Banner, v.Nodes, v.Events)
		}
		time.Sleep(time.Second)
	}
}

func viewNode(v view.View, id string) view.NodeView {
	for _, n := range v.Nodes {
		if n.ID == id {
			return n
		}
	}
	return view.NodeView{}
}

func viewEvent(v view.View, kind, sub string) bool {
	for _, e := range v.Events {
		if e.Kind == kind && strings.Contains(e.Text, sub) {
			return true
		}
	}
	return false
}

// TestConsoleView runs the console's view logic against a real 3-node
// cluster: every glyph active with the leader marked, client counters
// charted as rates, a node moved to standby through the action path, the
// cluster's refusal of a change that would lose the quorum, a checksum's
// per-table result, and the console following the cluster when the node it
// talks to dies.
func TestConsoleView(t *testing.T) {
	e2e.SkipIfNoMariaDB(t)
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	leader := c.WaitForLeader()
	var eps []string
	// The leader first: the console talks to it, and later loses it.
	eps = append(eps, "http://"+leader.AdminAddr)
	for _, n := range c.Other(leader) {
		eps = append(eps, "http://"+n.AdminAddr)
	}
	f, err := view.NewFollower(view.Config{Endpoints: eps, Token: c.Token, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := &consoleRig{t: t, f: f, m: view.NewModel(120)}

	v := r.until("three active glyphs and the leader", 30*time.Second, func(v view.View) bool {
		if !v.Connected || v.Leader != leader.ID || len(v.Nodes) != 3 {
			return false
		}
		for _, n := range v.Nodes {
			if n.Kind != view.Active || !n.Answered {
				return false
			}
		}
		return true
	})
	if v.Via != leader.ID || !viewNode(v, leader.ID).Leader || viewNode(v, leader.ID).Role != "leader" {
		t.Fatalf("leader glyph: %+v (via %s)", viewNode(v, leader.ID), v.Via)
	}

	// Client traffic on one node shows as its reads/s and writes/s and in
	// the cluster's commits/s.
	other := c.Other(leader)
	n2, n3 := other[0], other[1]
	db := n3.Open(t, "")
	mustExec(t, db, "CREATE DATABASE con")
	mustExec(t, db, "CREATE TABLE con.t (id INT PRIMARY KEY, v INT)")
	r.poll()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			db.Exec("INSERT INTO con.t VALUES (?, 1)", i)
			db.QueryRow("SELECT COUNT(*) FROM con.t").Scan(new(int))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	v = r.until(n3.ID+"'s reads/s and writes/s", 30*time.Second, func(v view.View) bool {
		n := viewNode(v, n3.ID)
		return n.ReadsPS > 0 && n.WritesPS > 0 && n.Conns >= 1
	})
	close(stop)
	<-done
	if s := r.m.Series(view.ClusterScope, view.Commits); s == nil || s.Max() <= 0 {
		t.Errorf("cluster commits/s never above 0: %v", s.Points())
	}
	if s := r.m.Series(n3.ID, view.Writes); s == nil || s.Max() <= 0 {
		t.Errorf("%s writes/s never above 0", n3.ID)
	}
	t.Logf("%s: %+v", n3.ID, viewNode(v, n3.ID))

	// A transaction whose read row changed before it committed gets 1213:
	// the console counts it as a conflict on its node.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var val int
	if err := tx.QueryRow("SELECT v FROM con.t WHERE id = 0").Scan(&val); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("UPDATE con.t SET v = v + 1 WHERE id = 0"); err != nil {
		t.Fatal(err)
	}
	mustExec(t, leader.Open(t, ""), "UPDATE con.t SET v = 100 WHERE id = 0")
	if err := tx.Commit(); err == nil || !strings.Contains(err.Error(), "1213") {
		t.Fatalf("commit after a conflicting write: want 1213, got %v", err)
	}
	r.until(n3.ID+"'s conflict counted", 20*time.Second, func(v view.View) bool {
		s := r.m.Series(n3.ID, view.Conflicts)
		return s != nil && s.Max() > 0
	})

	// Standby through the action path, as the context menu does it.
	choice := func(n view.NodeView, a view.Action) view.Choice {
		for _, ch := range view.Allowed(n) {
			if ch.Action == a {
				return ch
			}
		}
		return view.Choice{}
	}
	if ch := choice(viewNode(v, n2.ID), view.SetStandby); !ch.Enabled || !ch.Confirm {
		t.Fatalf("standby on an active node: %+v", ch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msg, err := view.Do(ctx, f.Client(), n2.ID, view.SetStandby, "e2e console")
	if err != nil {
		t.Fatalf("standby %s: %v", n2.ID, err)
	}
	t.Log(msg)
	v = r.until(n2.ID+" standby", 30*time.Second, func(v view.View) bool { return viewNode(v, n2.ID).Kind == view.Standby })
	if !viewEvent(v, "state", n2.ID+": active → standby") {
		t.Errorf("no state event: %v", v.Events)
	}
	if _, ok := view.Quick(viewNode(v, n2.ID)); !ok {
		t.Errorf("ctrl-click does not offer bring-active on standby %s", n2.ID)
	}

	// Offline of both others would leave one voter able to keep a quorum:
	// the cluster refuses and says why.
	if _, err := view.Do(ctx, f.Client(), n2.ID, view.SetOffline, "e2e console"); err != nil {
		t.Fatalf("offline %s: %v", n2.ID, err)
	}
	_, err = view.Do(ctx, f.Client(), n3.ID, view.SetOffline, "e2e console")
	if why, refused := view.Refusal(err); !refused || why == "" {
		t.Errorf("offline of a second node: want the cluster's refusal, got %v", err)
	} else {
		t.Logf("refused: %s", why)
	}
	if _, err := view.Do(ctx, f.Client(), n2.ID, view.SetActive, "e2e console"); err != nil {
		t.Fatalf("active %s: %v", n2.ID, err)
	}
	r.until(n2.ID+" active again", 60*time.Second, func(v view.View) bool { return viewNode(v, n2.ID).Kind == view.Active })

	// A checksum's per-table result.
	res, err := f.Client().Checksum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows := view.ChecksumRows(res)
	found := false
	for _, row := range rows[1:] {
		if row[0] == "con.t" && row[len(row)-1] == "yes" {
			found = true
		}
	}
	if !found || !res.Identical {
		t.Errorf("checksum: %s\n%v", view.ChecksumSummary(res), rows)
	}

	// The node the console talks to dies: it follows the cluster through
	// another member and says so.
	leader.Kill()
	v = r.until("the console following the cluster without "+leader.ID, 60*time.Second, func(v view.View) bool {
		return v.Connected && v.Via != leader.ID && v.Leader != "" && v.Leader != leader.ID &&
			viewNode(v, leader.ID).Kind == view.Offline
	})
	if !viewEvent(v, "connection", fmt.Sprintf("%s stopped answering: now following the cluster through %s", leader.ID, v.Via)) ||
		!viewEvent(v, "leader", "leader changed") {
		t.Errorf("events after the leader died: %v", v.Events)
	}
	t.Logf("banner: %s; events: %v", v.Banner, v.Events)
}

// TestConsoleJoin: a node added through the console's add-node call shows
// as a new glyph, transitional while it joins, then active; the events
// tell its join and transfer.
func TestConsoleJoin(t *testing.T) {
	e2e.SkipIfNoMariaDB(t)
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	c.WaitForLeader()
	db := c.Nodes[0].Open(t, "")
	mustExec(t, db, "CREATE DATABASE cj")
	mustExec(t, db, "CREATE TABLE cj.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
	for range 50 {
		mustExec(t, db, "INSERT INTO cj.t (v) VALUES (1)")
	}
	n4 := c.StartJoiner(t)
	var eps []string
	for _, n := range c.Nodes {
		eps = append(eps, "http://"+n.AdminAddr)
	}
	f, err := view.NewFollower(view.Config{Endpoints: eps, Token: c.Token})
	if err != nil {
		t.Fatal(err)
	}
	r := &consoleRig{t: t, f: f, m: view.NewModel(120)}
	r.until("three nodes", 30*time.Second, func(v view.View) bool { return v.Connected && len(v.Nodes) == 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// What the Add node dialog calls.
	if _, err := f.Client().AddNode(ctx, n4.ID, n4.RaftAddr); err != nil {
		t.Fatalf("add %s: %v", n4.ID, err)
	}
	kinds := map[view.Kind]bool{}
	v := r.until(n4.ID+" active", 3*time.Minute, func(v view.View) bool {
		n := viewNode(v, n4.ID)
		kinds[n.Kind] = true
		return n.Kind == view.Active && n.Answered
	})
	if !viewEvent(v, "member", n4.ID+" joined the membership") {
		t.Errorf("no join event: %v", v.Events)
	}
	t.Logf("%s shown as %v on the way; events: %v", n4.ID, kinds, v.Events)
}
