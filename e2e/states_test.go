package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/e2e"
	"github.com/lockstepdb/lockstep/internal/testutil"
)

// TestNodeStates: node states through clusterctl and the admin API on a
// 3-node cluster. Standby applies but refuses clients; maintenance stops
// applying and refuses clients, and back to active it catches up before it
// serves; refused transitions (no active node left, unknown state, wrong
// token) say why; every node agrees on every state; the data ends identical.
func TestNodeStates(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	setup(t, c, "CREATE DATABASE st", "CREATE TABLE st.t (id INT PRIMARY KEY, v INT)")
	db1 := n1.Open(t, "st")
	db3 := n3.Open(t, "st")
	db3.SetMaxOpenConns(1)

	ctl := func(n *e2e.Node, args ...string) string {
		t.Helper()
		out, errOut, err := n.Clusterctl(t, args...)
		if err != nil {
			t.Fatalf("clusterctl %s via %s: %v\n%s%s", strings.Join(args, " "), n.ID, err, out, errOut)
		}
		return out
	}
	ctlFails := func(n *e2e.Node, want string, args ...string) {
		t.Helper()
		out, errOut, err := n.Clusterctl(t, args...)
		if err == nil || !strings.Contains(errOut, want) {
			t.Errorf("clusterctl %s via %s: err %v, stderr %q, stdout %q; want a failure saying %q", strings.Join(args, " "), n.ID, err, errOut, out, want)
		} else {
			t.Logf("clusterctl %s → %s", strings.Join(args, " "), strings.TrimSpace(errOut))
		}
	}
	// every node's /status shows want as the node's own state, and every
	// node's /nodes agrees on every state.
	waitStates := func(want map[string]string) {
		t.Helper()
		var bad string
		err := testutil.Until(e2e.ConvergeTimeout, 50*time.Millisecond, func() error {
			bad = ""
			for _, n := range c.Nodes {
				l, err := (&admin.Client{Endpoint: "http://" + n.AdminAddr, Token: c.Token}).Nodes(context.Background())
				if err != nil {
					bad = err.Error()
					break
				}
				for _, x := range l.Nodes {
					if w, ok := want[x.ID]; ok && x.State != w {
						bad = fmt.Sprintf("%s says %s is %s, want %s", n.ID, x.ID, x.State, w)
					}
				}
			}
			if bad != "" {
				return errors.New(bad)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("node states did not converge: %s", bad)
		}
	}
	insert := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			mustExec(t, db1, "INSERT INTO t (id, v) VALUES (?, ?)", i, i*10)
		}
	}
	backendCount := func(n *e2e.Node) int64 {
		t.Helper()
		return queryInt(t, n.BackendDB(), "SELECT COUNT(*) FROM st.t")
	}
	// All active to begin with; the list comes as a table and as JSON.
	out := ctl(n1, "node", "list", "--json")
	var l admin.NodeList
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.Nodes) != 3 {
		t.Fatalf("node list --json: %v\n%s", err, out)
	}
	leaders := 0
	for _, x := range l.Nodes {
		if x.State != "active" || x.Suffrage != "Voter" {
			t.Errorf("node list: %+v, want an active voter", x)
		}
		if x.Leader {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("node list shows %d leaders", leaders)
	}
	if out := ctl(n2, "status"); !strings.Contains(out, "node n2:") || !strings.Contains(out, "NODE") {
		t.Errorf("status output:\n%s", out)
	}

	// Standby: applies, serves no clients. The session open when n3
	// leaves active is closed at its next statement with 1927
	// (--leave-sessions close, the default); a new one gets 1047.
	if err := db3.Ping(); err != nil {
		t.Fatal(err)
	}
	if out := ctl(n1, "node", "set-state", "n3", "standby", "--reason", "e2e"); !strings.Contains(out, "node n3 is now standby") {
		t.Errorf("set-state output: %q", out)
	}
	waitStates(map[string]string{"n1": "active", "n2": "active", "n3": "standby"})
	if st := n3.MustStatus(t); st.NodeState != "standby" || st.State != "not-serving" {
		t.Errorf("n3 status: node_state %q state %q", st.NodeState, st.State)
	}
	var one int
	e2e.Eventually(t, 5*time.Second, "n3 closes the session open when it left active", func() error {
		err := db3.QueryRow("SELECT 1").Scan(&one)
		if me := mysqlErr(err); me == nil || me.Number != 1927 || !strings.Contains(me.Message, "left active") {
			return fmt.Errorf("the session open when n3 left active: %v; want 1927 saying it left active", err)
		}
		return nil
	})
	err := db3.QueryRow("SELECT 1").Scan(&one)
	if me := mysqlErr(err); me == nil || me.Number != 1047 || !strings.Contains(me.Message, "out of service") || !strings.Contains(me.Message, "set-state") {
		t.Errorf("a read through standby n3: %v; want 1047 saying it is out of service and how to bring it back", err)
	}
	insert(1, 11)
	waitCount(t, n3, 10, "standby n3 applies the writes")

	// Maintenance, through the admin API of another node: n3 stops applying.
	cl2 := &admin.Client{Endpoint: "http://" + n2.AdminAddr, Token: c.Token}
	if _, err := cl2.SetNodeState(context.Background(), "n3", "maintenance", "dba work", false); err != nil {
		t.Fatal(err)
	}
	waitStates(map[string]string{"n3": "maintenance"})
	insert(11, 31)
	if err := n2.WaitApplied(n1.MustStatus(t).CommitIndex); err != nil {
		t.Fatal(err)
	}
	if got := backendCount(n3); got != 10 {
		t.Errorf("n3 in maintenance holds %d rows, want the 10 from before", got)
	}
	if _, err := db3.Exec("INSERT INTO t VALUES (999, 0)"); mysqlErr(err) == nil || mysqlErr(err).Number != 1047 {
		t.Errorf("a write through n3 in maintenance: %v, want 1047", err)
	}

	// Refusals: the last active node cannot leave; unknown states; a wrong
	// token; an unknown node.
	ctl(n1, "node", "set-state", "n2", "standby")
	waitStates(map[string]string{"n2": "standby"})
	ctlFails(n2, "would leave 1 voter(s) that can keep a quorum", "node", "set-state", "n1", "maintenance")
	ctlFails(n2, "only active node", "node", "set-state", "n1", "maintenance", "--force")
	ctlFails(n1, `unknown state "sleeping"`, "node", "set-state", "n3", "sleeping")
	ctlFails(n1, `unknown node "n9"`, "node", "set-state", "n9", "active")
	ctlFails(n1, "missing or wrong admin token", "--token", "wrong", "node", "list")
	_, err = (&admin.Client{Endpoint: "http://" + n1.AdminAddr, Token: "wrong"}).SetNodeState(context.Background(), "n3", "active", "", false)
	var he *admin.HTTPError
	if !errors.As(err, &he) || he.Code != http.StatusUnauthorized {
		t.Errorf("state change with a wrong token: %v, want 401", err)
	}
	ctl(n1, "node", "set-state", "n2", "active")

	// Back to active: n3 applies what it missed before it serves.
	ctl(n2, "node", "set-state", "n3", "active")
	waitStates(map[string]string{"n1": "active", "n2": "active", "n3": "active"})
	if err := n3.WaitReady(e2e.ConvergeTimeout); err != nil {
		t.Fatal(err)
	}
	if got := backendCount(n3); got != 30 {
		t.Errorf("n3 back from maintenance holds %d rows, want 30", got)
	}
	if got := queryInt(t, db3, "SELECT COUNT(*) FROM t"); got != 30 {
		t.Errorf("a read through n3 back in service: %d rows, want 30", got)
	}
	mustExec(t, db3, "INSERT INTO t VALUES (31, 310)")

	// Leadership moves on request, to a named node or any; a node that does
	// not apply the log cannot be the target.
	leader := c.WaitForLeader()
	var target *e2e.Node
	for _, n := range c.Nodes {
		if n != leader {
			target = n
			break
		}
	}
	if out := ctl(n2, "leader", "transfer", "--to", target.ID); !strings.Contains(out, target.ID+" leads now") {
		t.Errorf("leader transfer output: %q", out)
	}
	if got := c.WaitForLeader(); got != target {
		t.Errorf("after the transfer %s leads, want %s", got.ID, target.ID)
	}
	ctl(n1, "node", "set-state", leader.ID, "maintenance")
	ctlFails(n1, "a leader must apply the log", "leader", "transfer", "--to", leader.ID)
	ctl(n1, "node", "set-state", leader.ID, "active")
	if out := ctl(n3, "leader", "transfer"); !strings.Contains(out, "leads now") {
		t.Errorf("leader transfer to any node: %q", out)
	}
	waitStates(map[string]string{"n1": "active", "n2": "active", "n3": "active"})
	for _, n := range c.Nodes {
		if err := n.WaitReady(e2e.ConvergeTimeout); err != nil {
			t.Fatal(err)
		}
	}
	c.AssertIdentical(t)
}

// waitCount waits until n's backend holds want rows in st.t.
func waitCount(t *testing.T, n *e2e.Node, want int64, what string) {
	t.Helper()
	err := testutil.Until(e2e.ConvergeTimeout, 50*time.Millisecond, func() error {
		var got int64
		err := n.BackendDB().QueryRow("SELECT COUNT(*) FROM st.t").Scan(&got)
		if err == nil && got == want {
			return nil
		}
		return fmt.Errorf("%s: %s holds %d rows (err %v), want %d", what, n.ID, got, err, want)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestQuorumLossRefused: taking a node out of service or out of the
// cluster is refused when the voters left that the leader reaches (and
// that are not in maintenance or offline) could not keep a quorum once it
// stops; --force overrides.
func TestQuorumLossRefused(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	leader := c.WaitForLeader()
	others := c.Other(leader)
	a, down := others[0], others[1]
	down.Kill()
	e2e.Eventually(t, 10*time.Second, "the leader to notice "+down.ID+" is down", func() error {
		if st := leader.MustStatus(t); !slices.Contains(st.Unreachable, down.ID) {
			return fmt.Errorf("unreachable according to the leader: %v", st.Unreachable)
		}
		return nil
	})
	if out, _, err := leader.Clusterctl(t, "status"); err != nil || !strings.Contains(out, "UNREACHABLE from the leader: "+down.ID) {
		t.Errorf("clusterctl status on the leader with %s down: %v\n%s", down.ID, err, out)
	}
	for _, args := range [][]string{
		{"node", "set-state", a.ID, "maintenance"},
		{"node", "set-state", a.ID, "offline"},
		{"node", "remove", a.ID},
	} {
		// Through the leader and through a follower (which asks the leader).
		for _, via := range []*e2e.Node{leader, a} {
			_, errOut, err := via.Clusterctl(t, args...)
			if err == nil || !strings.Contains(errOut, "quorum") || !strings.Contains(errOut, down.ID+" (unreachable)") {
				t.Errorf("%v via %s with %s down: %v\n%s", args, via.ID, down.ID, err, errOut)
			}
		}
	}
	if out, errOut, err := leader.Clusterctl(t, "node", "set-state", a.ID, "maintenance", "--force"); err != nil {
		t.Fatalf("set-state --force: %v\n%s%s", err, out, errOut)
	}
	if out, errOut, err := leader.Clusterctl(t, "node", "set-state", a.ID, "active"); err != nil {
		t.Fatalf("back to active: %v\n%s%s", err, out, errOut)
	}
	down.Restart()
	e2e.Eventually(t, 30*time.Second, "maintenance allowed once "+down.ID+" is back", func() error {
		_, errOut, err := leader.Clusterctl(t, "node", "set-state", down.ID, "maintenance")
		if err != nil {
			return fmt.Errorf("%v: %s", err, errOut)
		}
		return nil
	})
	// A second node out while one is in maintenance: refused.
	if _, errOut, err := leader.Clusterctl(t, "node", "set-state", a.ID, "offline"); err == nil || !strings.Contains(errOut, down.ID+" (maintenance)") {
		t.Errorf("a second node offline while %s is in maintenance: %v\n%s", down.ID, err, errOut)
	}
	if out, errOut, err := leader.Clusterctl(t, "node", "set-state", down.ID, "active"); err != nil {
		t.Fatalf("back to active: %v\n%s%s", err, out, errOut)
	}
	if err := down.WaitReady(e2e.ReadyTimeout); err != nil {
		t.Fatal(err)
	}
}
