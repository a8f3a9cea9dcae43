package membership

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/lockstepdb/lockstep/command"
)

// NodeState is a node's operational state. Changes are KindNodeState log
// entries, decided by every node at the same log position, so every node
// agrees on every node's state.
type NodeState string

const (
	// StateJoining: receiving a snapshot or catching up (set by joins).
	StateJoining NodeState = "joining"
	// StateActive: applies the log and serves clients.
	StateActive NodeState = "active"
	// StateStandby: applies the log, serves no clients.
	StateStandby NodeState = "standby"
	// StateMaintenance: stops applying (the log is still stored) and serves
	// no clients, so a DBA can work on the local server; leaving it applies
	// the stored log before the node serves again.
	StateMaintenance NodeState = "maintenance"
	// StateOffline: out of serving and applying, like maintenance, for a
	// node that is being taken away.
	StateOffline NodeState = "offline"
	// StateWitness: a Raft voter without a database (lockstepd --witness);
	// fixed, never applies or serves.
	StateWitness NodeState = "witness"
	// StateRemoved: this node was removed from the cluster (OwnState only).
	StateRemoved NodeState = "removed"
)

// OperatorStates are the states an operator may set.
var OperatorStates = []NodeState{StateActive, StateStandby, StateMaintenance, StateOffline}

// Applies reports whether a node in state s applies the log.
func (s NodeState) Applies() bool {
	return s == StateActive || s == StateStandby || s == StateJoining
}

// Serves reports whether a node in state s serves clients.
func (s NodeState) Serves() bool { return s == StateActive }

// ErrStateRefused wraps a state change the cluster refused (the message says
// why and what to do).
var ErrStateRefused = errors.New("state change refused")

// Action is a Raft configuration or leadership action an accepted entry
// asks for. Only the leader that appended the entry (it still leads in the
// entry's term) performs it: a later leader applying the same entry must not
// act again.
type Action int

const (
	// NoAction: nothing to do beyond the state change.
	NoAction Action = iota
	// AddVoter: add Decision.Node at Decision.Addr as a voter.
	AddVoter
	// RemoveServer: remove Decision.Node from the configuration.
	RemoveServer
	// TransferLeadership: hand leadership to Decision.Node ("" = any).
	TransferLeadership
)

// Decision is what Members decided for one entry.
type Decision struct {
	// Refused is the entry's result: nil when accepted.
	Refused *command.Error
	// Action is what the leader of the entry's term does when accepted.
	Action Action
	// Node is the entry's target node; Addr its Raft address (AddVoter).
	Node, Addr string
	// Was is the target's state before the entry.
	Was NodeState
	// OwnBefore and OwnAfter are this node's own state before and after a
	// KindNodeState entry (equal for other entries).
	OwnBefore, OwnAfter NodeState
}

// Members holds every node's state. Decide, Seed and Restore are called
// from one goroutine (the Raft FSM's), in log order; the readers may be
// called from any goroutine.
type Members struct {
	self      string
	witnesses []string

	mu     sync.RWMutex
	states map[string]NodeState
	seeded bool
}

// New returns the membership of node self; witnesses are the cluster's
// witnesses (the same list on every node).
func New(self string, witnesses []string) *Members {
	return &Members{self: self, witnesses: slices.Clone(witnesses), states: map[string]NodeState{}}
}

// IsWitness reports whether id is a witness.
func (m *Members) IsWitness(id string) bool { return slices.Contains(m.witnesses, id) }

// Seed seeds the states from the cluster's first configuration (its
// servers: every one active, witnesses witness); later calls do nothing.
// Later changes follow KindNodeAdd and KindNodeRemove entries.
func (m *Members) Seed(servers []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seeded {
		return
	}
	m.seeded = true
	for _, id := range servers {
		m.states[id] = StateActive
		if m.IsWitness(id) {
			m.states[id] = StateWitness
		}
	}
}

// Decide decides one entry the same way on every node. ok is false when the
// entry is not a membership entry (nothing changed).
func (m *Members) Decide(e *command.Entry, by string) (d Decision, ok bool) {
	switch {
	case e.Kind == command.KindLeaderTransfer && e.Transfer != nil:
		return m.decideTransfer(e.Transfer.To), true
	case e.Kind == command.KindNodeRemove && e.NodeState != nil:
		return m.decideRemove(e.NodeState.Node), true
	case e.Kind == command.KindNodeAdd && e.NodeState != nil:
		return m.decideAdd(e.NodeState.Node, e.NodeState.State), true
	case e.Kind == command.KindNodeState && e.NodeState != nil:
		m.mu.Lock()
		defer m.mu.Unlock()
		d := Decision{Node: e.NodeState.Node, Was: m.states[e.NodeState.Node], OwnBefore: m.states[m.self]}
		d.Refused = DecideState(m.states, e.NodeState, by)
		d.OwnAfter = m.states[m.self]
		return d, true
	}
	return Decision{}, false
}

func refuse(format string, a ...any) *command.Error {
	return &command.Error{Code: 1105, State: "HY000", Message: fmt.Sprintf(format, a...)}
}

// DecideState applies one state change to states (every node runs this at
// the same log position on the same map, so every node decides the same),
// returning the refusal or nil. by is the node that ordered the change.
func DecideState(states map[string]NodeState, ch *command.NodeStateChange, by string) *command.Error {
	cur, ok := states[ch.Node]
	if !ok {
		known := make([]string, 0, len(states))
		for id := range states {
			known = append(known, id)
		}
		slices.Sort(known)
		return refuse("unknown node %q (the cluster's nodes: %s)", ch.Node, strings.Join(known, ", "))
	}
	to := NodeState(ch.State)
	if !slices.Contains(OperatorStates, to) {
		names := make([]string, len(OperatorStates))
		for i, s := range OperatorStates {
			names[i] = string(s)
		}
		return refuse("unknown state %q: a node can be set to %s", ch.State, strings.Join(names, ", "))
	}
	if cur == to {
		return nil
	}
	if cur == StateWitness {
		return refuse("node %s is a witness (a voter without a database); its state cannot change", ch.Node)
	}
	if cur == StateJoining && !(by == ch.Node && to == StateActive) {
		return refuse("node %s is joining; it becomes active by itself when it has caught up", ch.Node)
	}
	if cur == StateActive && !to.Serves() {
		others := 0
		for id, s := range states {
			if id != ch.Node && s == StateActive {
				others++
			}
		}
		if others == 0 {
			return refuse("node %s is the only active node: setting it %s would leave no node serving clients. Make another node active first", ch.Node, to)
		}
	}
	states[ch.Node] = to
	return nil
}

// decideTransfer: the target must be a known node whose state applies the
// log ("" = any suitable node).
func (m *Members) decideTransfer(to string) Decision {
	m.mu.RLock()
	st, known := m.states[to]
	m.mu.RUnlock()
	d := Decision{Action: TransferLeadership, Node: to, Was: st}
	switch {
	case to != "" && !known:
		d.Refused = refuse("unknown node %q", to)
	case to != "" && !st.Applies():
		d.Refused = refuse("node %s is %s: a leader must apply the log. Make it active first", to, st)
	}
	return d
}

// decideRemove: a known node, and at least one active node must remain; the
// node's state is forgotten.
func (m *Members) decideRemove(id string) Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, known := m.states[id]
	d := Decision{Action: RemoveServer, Node: id, Was: st}
	active := 0
	for other, s := range m.states {
		if other != id && s == StateActive {
			active++
		}
	}
	switch {
	case !known:
		d.Refused = refuse("unknown node %q", id)
	case active == 0:
		d.Refused = refuse("removing %s would leave no active node to serve clients. Make another node active first", id)
	default:
		delete(m.states, id)
	}
	return d
}

// decideAdd: a new id, set joining.
func (m *Members) decideAdd(id, addr string) Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := Decision{Action: AddVoter, Node: id, Addr: addr}
	if _, known := m.states[id]; known {
		d.Refused = refuse("node %q is already a member (remove it first to add it again)", id)
	} else {
		m.states[id] = StateJoining
	}
	return d
}

// States returns a copy of every node's state.
func (m *Members) States() map[string]NodeState {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return maps.Clone(m.states)
}

// State returns node id's state and whether it is a member.
func (m *Members) State(id string) (NodeState, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st, ok := m.states[id]
	return st, ok
}

// Own returns this node's state: joining until the states are seeded (a
// starting node serves no clients), removed when it is no longer a member.
func (m *Members) Own() NodeState {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st, ok := m.states[m.self]
	switch {
	case !m.seeded:
		return StateJoining
	case !ok:
		return StateRemoved
	}
	return st
}

// Seeded reports whether the states were seeded (from the first
// configuration or a snapshot).
func (m *Members) Seeded() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.seeded
}

// Snapshot returns a copy of the states and whether they were seeded, for a
// Raft snapshot.
func (m *Members) Snapshot() (map[string]NodeState, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return maps.Clone(m.states), m.seeded
}

// Restore replaces the states with a snapshot's.
func (m *Members) Restore(states map[string]NodeState, seeded bool) {
	if states == nil {
		states = map[string]NodeState{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.states, m.seeded = maps.Clone(states), seeded
}

// Donors returns, of servers (the configuration's, in order), the members
// that can serve a database copy: not this node, not a witness, and in a
// state that applies the log.
func (m *Members) Donors(servers []string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for _, id := range servers {
		if id == m.self || m.IsWitness(id) || !m.states[id].Applies() {
			continue
		}
		out = append(out, id)
	}
	return out
}
