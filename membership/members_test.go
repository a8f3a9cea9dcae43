package membership

import (
	"strings"
	"testing"

	"github.com/lockstepdb/lockstep/command"
)

func TestDecideState(t *testing.T) {
	states := map[string]NodeState{"n1": StateActive, "n2": StateActive, "n3": StateJoining}
	for _, tc := range []struct {
		node, state string
		refused     string // substring of the refusal, "" = accepted
	}{
		{"n9", "standby", `unknown node "n9"`},
		{"n1", "sleeping", `unknown state "sleeping"`},
		{"n1", "joining", `unknown state "joining"`},
		{"n3", "active", "is joining"},
		{"n1", "standby", ""},
		{"n1", "standby", ""}, // same state: accepted, nothing changes
		{"n2", "maintenance", "only active node"},
		{"n2", "offline", "only active node"},
		{"n1", "active", ""},
		{"n2", "offline", ""},
		{"n1", "maintenance", "only active node"},
	} {
		err := DecideState(states, &command.NodeStateChange{Node: tc.node, State: tc.state}, "n1")
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s -> %s refused: %s", tc.node, tc.state, err.Message)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Message, tc.refused)):
			t.Errorf("%s -> %s: %v, want a refusal saying %q", tc.node, tc.state, err, tc.refused)
		}
	}
	want := map[string]NodeState{"n1": StateActive, "n2": StateOffline, "n3": StateJoining}
	for id, s := range want {
		if states[id] != s {
			t.Errorf("%s is %s, want %s", id, states[id], s)
		}
	}
}

// TestDecide: membership entries decided alike on every node, with the
// Raft action an accepted one asks for.
func TestDecide(t *testing.T) {
	m := New("n1", []string{"w"})
	m.Seed([]string{"n1", "n2", "w"})
	m.Seed([]string{"n9"}) // only the first configuration seeds
	if got := m.States(); len(got) != 3 || got["w"] != StateWitness || got["n2"] != StateActive {
		t.Fatalf("seeded %v", got)
	}
	decide := func(e *command.Entry) Decision {
		t.Helper()
		d, ok := m.Decide(e, "n1")
		if !ok {
			t.Fatalf("%s not decided", e.Kind)
		}
		return d
	}
	add := func(id string) *command.Entry {
		return &command.Entry{Kind: command.KindNodeAdd, NodeState: &command.NodeStateChange{Node: id, State: id + ":1"}}
	}
	if d := decide(add("n3")); d.Refused != nil || d.Action != AddVoter || d.Node != "n3" || d.Addr != "n3:1" {
		t.Fatalf("add: %+v", d)
	}
	if st, _ := m.State("n3"); st != StateJoining {
		t.Fatalf("added node is %s", st)
	}
	if d := decide(add("n3")); d.Refused == nil || !strings.Contains(d.Refused.Message, "already a member") {
		t.Fatalf("add again: %+v", d)
	}
	transfer := func(to string) *command.Entry {
		return &command.Entry{Kind: command.KindLeaderTransfer, Transfer: &command.LeaderTransfer{To: to}}
	}
	if d := decide(transfer("w")); d.Refused == nil || !strings.Contains(d.Refused.Message, "a leader must apply the log") {
		t.Fatalf("transfer to a witness: %+v", d)
	}
	if d := decide(transfer("n9")); d.Refused == nil || !strings.Contains(d.Refused.Message, "unknown node") {
		t.Fatalf("transfer to an unknown node: %+v", d)
	}
	if d := decide(transfer("n2")); d.Refused != nil || d.Action != TransferLeadership {
		t.Fatalf("transfer: %+v", d)
	}
	remove := func(id string) *command.Entry {
		return &command.Entry{Kind: command.KindNodeRemove, NodeState: &command.NodeStateChange{Node: id}}
	}
	if d := decide(remove("n3")); d.Refused != nil || d.Action != RemoveServer || d.Was != StateJoining {
		t.Fatalf("remove: %+v", d)
	}
	if d := decide(remove("n3")); d.Refused == nil {
		t.Fatalf("remove again: %+v", d)
	}
	set := &command.Entry{Kind: command.KindNodeState, NodeState: &command.NodeStateChange{Node: "n1", State: "maintenance"}}
	if d := decide(set); d.Refused != nil || d.OwnBefore != StateActive || d.OwnAfter != StateMaintenance {
		t.Fatalf("own state: %+v", d)
	}
	if d := decide(remove("n2")); d.Refused == nil || !strings.Contains(d.Refused.Message, "no active node") {
		t.Fatalf("removing the last active node: %+v", d)
	}
	if _, ok := m.Decide(&command.Entry{Kind: command.KindStatements}, "n1"); ok {
		t.Fatal("a statement entry decided")
	}
	if got := m.Donors([]string{"n1", "n2", "w"}); len(got) != 1 || got[0] != "n2" {
		t.Fatalf("donors %v", got)
	}
	if m.Own() != StateMaintenance {
		t.Fatalf("own %s", m.Own())
	}
	states, seeded := m.Snapshot()
	r := New("n1", nil)
	if r.Own() != StateJoining {
		t.Fatal("unseeded membership: own state not joining")
	}
	r.Restore(states, seeded)
	if r.Own() != StateMaintenance || len(r.States()) != 3 {
		t.Fatalf("restored %v", r.States())
	}
	delete(states, "n1")
	if r.Own() != StateMaintenance {
		t.Fatal("Restore kept a reference to the snapshot's map")
	}
	r.Restore(map[string]NodeState{}, true)
	if r.Own() != StateRemoved {
		t.Fatalf("not a member: %s", r.Own())
	}
}
