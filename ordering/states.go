package ordering

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lockstepdb/lockstep/command"
)

// NodeState is a node's operational state. Changes are KindNodeState log
// entries, decided by every node's FSM at the same log position, so every
// node agrees on every node's state.
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

// decideState applies one state change to states (every node runs this at
// the same log position on the same map, so every node decides the same),
// returning the refusal or nil.
func decideState(states map[string]NodeState, ch *command.NodeStateChange, by string) *command.Error {
	refuse := func(format string, a ...any) *command.Error {
		return &command.Error{Code: 1105, State: "HY000", Message: fmt.Sprintf(format, a...)}
	}
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

// decideStates decides the KindNodeState entries of the record at index,
// delivers their results to local waiters, and switches this node between
// applying records as they come (direct) and leaving them in the log for
// the drain goroutine (deferred).
func (f *fsm) decideStates(index, term uint64, entries []*command.Entry) {
	for _, e := range entries {
		if e.Kind == command.KindLeaderTransfer && e.Transfer != nil {
			f.decideTransfer(index, term, e)
			continue
		}
		if e.Kind == command.KindNodeRemove && e.NodeState != nil {
			f.decideRemove(index, term, e)
			continue
		}
		if e.Kind == command.KindNodeAdd && e.NodeState != nil {
			f.decideAdd(index, term, e)
			continue
		}
		if e.Kind != command.KindNodeState || e.NodeState == nil {
			continue
		}
		ch := e.NodeState
		f.mu.Lock()
		before := f.states[f.self]
		refused := decideState(f.states, ch, e.ID.Node)
		own := f.states[f.self]
		f.mu.Unlock()
		replay := index <= f.skipThrough
		if refused != nil {
			if !replay {
				f.logger.Info("node state change refused", "index", index, "target", ch.Node, "state", ch.State, "why", refused.Message)
			}
		} else if !replay {
			f.logger.Info("node state changed", "index", index, "target", ch.Node, "state", ch.State, "reason", ch.Reason, "by", e.ID.Node)
		}
		if e.ID.Node == f.self {
			f.n.waiters.deliver(e.ID, delivery{index: index, results: []command.Result{{Err: refused}}})
		}
		if before == own {
			continue
		}
		if !own.Applies() {
			f.mu.Lock()
			f.deferred = true
			f.mu.Unlock()
			if r := f.n.raftPtr.Load(); !replay && r != nil && r.State() == raft.Leader && !f.n.closed.Load() {
				// A leader that does not apply would stall its own
				// checkpoints; hand leadership to another node.
				f.n.wg.Add(1)
				go func() {
					defer f.n.wg.Done()
					if err := r.LeadershipTransfer().Error(); err != nil {
						f.logger.Warn("leadership transfer on leaving service failed", "err", err)
					}
				}()
			}
		} else if !before.Applies() {
			f.kickDrain()
		}
	}
}

// kickDrain wakes the drain goroutine.
func (f *fsm) kickDrain() {
	select {
	case f.drainC <- struct{}{}:
	default:
	}
}

// runDrain applies, in order, the records this node left in the log while it
// did not apply (maintenance, offline), once its state applies again; when
// it has caught up with the FSM it switches back to direct applying.
func (f *fsm) runDrain() {
	defer f.n.wg.Done()
	for {
		select {
		case <-f.drainC:
		case <-f.n.stop:
			return
		}
		caughtUp := false
		for !caughtUp {
			f.mu.Lock()
			if !f.deferred || !f.states[f.self].Applies() {
				f.mu.Unlock()
				break
			}
			if need := f.needDB; need > 0 {
				// Behind a snapshot: copy a peer's database first
				// (snapshot.go).
				f.mu.Unlock()
				if !f.transferDatabase(need) {
					return
				}
				continue
			}
			next := f.applied + 1
			if next > f.lastSeen {
				f.deferred = false
				caughtUp = true
				f.mu.Unlock()
				f.logger.Info("caught up with the log", "applied_index", next-1)
				break
			}
			f.mu.Unlock()
			var l raft.Log
			if err := f.n.logs.GetLog(next, &l); err != nil {
				f.logger.Error("cannot read a stored log record to catch up; retrying", "index", next, "err", err)
				select {
				case <-time.After(time.Second):
					continue
				case <-f.n.stop:
					return
				}
			}
			if l.Type != raft.LogCommand {
				f.mu.Lock()
				f.applied = max(f.applied, next)
				f.mu.Unlock()
				continue
			}
			entries, err := command.Decode(l.Data)
			if err != nil {
				f.logger.Error("undecodable log record; applying it as empty", "index", next, "err", err)
				entries = nil
			}
			f.drainMu.Lock()
			ok := true
			if f.appliedIndex() == next-1 { // else adoptSnapshot moved on
				ok = f.applyRecord(next, entries)
			}
			f.drainMu.Unlock()
			if !ok {
				return
			}
		}
	}
}

// NodeStates returns every node's state as this node's FSM last decided it.
func (n *Node) NodeStates() map[string]NodeState {
	n.fsm.mu.Lock()
	defer n.fsm.mu.Unlock()
	out := make(map[string]NodeState, len(n.fsm.states))
	for id, s := range n.fsm.states {
		out[id] = s
	}
	return out
}

// OwnState returns this node's state and whether it is still applying
// records it left in the log (catching up after maintenance or offline).
func (n *Node) OwnState() (NodeState, bool) {
	n.fsm.mu.Lock()
	defer n.fsm.mu.Unlock()
	st, ok := n.fsm.states[n.cfg.NodeID]
	switch {
	case !n.fsm.seeded:
		st = StateJoining // starting: the log has not told yet (serves no clients)
	case !ok:
		st = StateRemoved
	}
	return st, n.fsm.deferred
}

// SetNodeState orders a state change for node and waits for the decision:
// nil, an error wrapping ErrStateRefused (with the reason), or an ordering
// error (no leader, outcome unknown).
func (n *Node) SetNodeState(ctx context.Context, node string, state NodeState, reason string) (uint64, error) {
	return n.submitDecided(ctx, &command.Entry{Kind: command.KindNodeState, NodeState: &command.NodeStateChange{Node: node, State: string(state), Reason: reason}})
}

// decideTransfer validates a leadership transfer the same way on every node
// (the target must be a known node whose state applies the log), delivers
// the decision to a local waiter, and, on the leader that appended the entry
// (it still leads in the entry's term), starts the transfer — a later leader
// applying the same entry must not transfer again.
func (f *fsm) decideTransfer(index, term uint64, e *command.Entry) {
	to := e.Transfer.To
	var refused *command.Error
	f.mu.Lock()
	st, known := f.states[to]
	f.mu.Unlock()
	switch {
	case to != "" && !known:
		refused = &command.Error{Code: 1105, State: "HY000", Message: fmt.Sprintf("unknown node %q", to)}
	case to != "" && !st.Applies():
		refused = &command.Error{Code: 1105, State: "HY000", Message: fmt.Sprintf("node %s is %s: a leader must apply the log. Make it active first", to, st)}
	}
	f.settle(index, term, e, refused, func(r *raft.Raft) error {
		if to == f.self {
			return nil // this node leads already
		}
		var addr raft.ServerAddress
		for _, srv := range r.GetConfiguration().Configuration().Servers {
			if string(srv.ID) == to {
				addr = srv.Address
			}
		}
		if to == "" {
			return r.LeadershipTransfer().Error()
		}
		return r.LeadershipTransferToServer(raft.ServerID(to), addr).Error()
	}, "leadership transfer failed")
}

// TransferLeadership asks the current leader to hand leadership to node to
// ("" = any suitable node) and waits until another node leads (or ctx
// ends). It returns the new leader's id.
func (n *Node) TransferLeadership(ctx context.Context, to string) (string, error) {
	before := n.LeaderID()
	if to != "" && to == before {
		return before, nil
	}
	if _, err := n.submitDecided(ctx, &command.Entry{Kind: command.KindLeaderTransfer, Transfer: &command.LeaderTransfer{To: to}}); err != nil {
		return "", err
	}
	for {
		now := n.LeaderID()
		if now != "" && now != before && (to == "" || now == to) {
			return now, nil
		}
		select {
		case <-ctx.Done():
			return now, fmt.Errorf("leadership did not move within the deadline (leader now %q): %w", now, ctx.Err())
		case <-n.stop:
			return "", command.ErrShuttingDown
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// decideRemove validates a node removal alike on every node (a known node,
// and at least one active node with a database must remain), forgets the
// node's state, delivers the decision, and on the leader that appended the
// entry removes the node from the Raft configuration.
func (f *fsm) decideRemove(index, term uint64, e *command.Entry) {
	id := e.NodeState.Node
	var refused *command.Error
	f.mu.Lock()
	st, known := f.states[id]
	active := 0
	for other, s := range f.states {
		if other != id && s == StateActive {
			active++
		}
	}
	switch {
	case !known:
		refused = &command.Error{Code: 1105, State: "HY000", Message: fmt.Sprintf("unknown node %q", id)}
	case active == 0:
		refused = &command.Error{Code: 1105, State: "HY000", Message: fmt.Sprintf("removing %s would leave no active node to serve clients. Make another node active first", id)}
	default:
		delete(f.states, id)
	}
	f.mu.Unlock()
	replay := index <= f.skipThrough
	if refused == nil && !replay {
		f.logger.Info("node removed from the cluster", "index", index, "target", id, "was", st, "by", e.ID.Node)
	}
	f.settle(index, term, e, refused, func(r *raft.Raft) error {
		return r.RemoveServer(raft.ServerID(id), 0, 0).Error()
	}, "removing a node from the Raft configuration failed; run node remove again")
}

// RemoveNode removes node from the cluster: an ordered entry every node
// validates alike, then (on the leader) a Raft configuration change. It
// waits until the node is out of the configuration.
func (n *Node) RemoveNode(ctx context.Context, node string) (uint64, error) {
	idx, err := n.submitDecided(ctx, &command.Entry{Kind: command.KindNodeRemove, NodeState: &command.NodeStateChange{Node: node}})
	if err != nil {
		return idx, err
	}
	return idx, n.waitMember(ctx, node, false)
}

// decideAdd validates a node addition alike on every node (a new id), sets
// the node joining, delivers the decision, and on the leader that appended
// the entry adds the node to the Raft configuration as a voter.
func (f *fsm) decideAdd(index, term uint64, e *command.Entry) {
	id, addr := e.NodeState.Node, e.NodeState.State
	var refused *command.Error
	f.mu.Lock()
	if _, known := f.states[id]; known {
		refused = &command.Error{Code: 1105, State: "HY000", Message: fmt.Sprintf("node %q is already a member (remove it first to add it again)", id)}
	} else {
		f.states[id] = StateJoining
	}
	f.mu.Unlock()
	replay := index <= f.skipThrough
	if refused == nil && !replay {
		f.logger.Info("node added; it is joining", "index", index, "target", id, "addr", addr, "by", e.ID.Node)
	}
	f.settle(index, term, e, refused, func(r *raft.Raft) error {
		return r.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 0).Error()
	}, "adding a node to the Raft configuration failed; remove it and add it again")
}

// AddNode adds node (Raft address addr) to the cluster in state joining and
// waits until it is in the Raft configuration. The node (started with
// lockstepd --join on an empty data directory, its database in the
// cluster's initial state) receives the log, and makes itself active once
// it has caught up.
func (n *Node) AddNode(ctx context.Context, node, addr string) (uint64, error) {
	idx, err := n.submitDecided(ctx, &command.Entry{Kind: command.KindNodeAdd, NodeState: &command.NodeStateChange{Node: node, State: addr}})
	if err != nil {
		return idx, err
	}
	return idx, n.waitMember(ctx, node, true)
}

// runJoin makes a joining node active once it has applied everything the
// cluster committed (a leader is known and the applied index reached the
// commit index).
func (n *Node) runJoin() {
	defer n.wg.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-n.stop:
			return
		}
		n.fsm.mu.Lock()
		st, seeded, deferred := n.fsm.states[n.cfg.NodeID], n.fsm.seeded, n.fsm.deferred
		n.fsm.mu.Unlock()
		if !seeded || st != StateJoining || deferred || n.LeaderID() == "" {
			continue
		}
		commit, applied := n.Indexes()
		if commit == 0 || applied < commit {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		_, err := n.SetNodeState(ctx, n.cfg.NodeID, StateActive, "caught up after joining")
		cancel()
		if err != nil && !n.closed.Load() {
			n.logger.Warn("could not make this node active after joining; retrying", "err", err)
		} else if err == nil {
			n.logger.Info("joined: caught up with the log and active", "applied_index", applied)
		}
	}
}

// settle delivers a decided entry's result to its local waiter and, when
// the entry was accepted and this node is the leader that appended it (it
// still leads in the entry's term; a later leader applying the same entry
// must not act again), runs act on a goroutine of its own.
func (f *fsm) settle(index, term uint64, e *command.Entry, refused *command.Error, act func(r *raft.Raft) error, failed string) {
	if e.ID.Node == f.self {
		f.n.waiters.deliver(e.ID, delivery{index: index, results: []command.Result{{Err: refused}}})
	}
	r := f.n.raftPtr.Load()
	if refused != nil || index <= f.skipThrough || r == nil || r.State() != raft.Leader || r.CurrentTerm() != term || f.n.closed.Load() {
		return
	}
	f.n.wg.Add(1)
	go func() {
		defer f.n.wg.Done()
		// Not waited for past Close: Raft may never answer a future it
		// dropped (a leader removing itself shuts its Raft down first).
		errc := make(chan error, 1)
		go func() { errc <- act(r) }()
		select {
		case err := <-errc:
			if err != nil {
				f.logger.Warn(failed, "err", err)
			}
		case <-f.n.stop:
		}
	}()
}

// submitDecided orders an entry the ordering layer decides (a state
// change, membership, leadership) and returns its index, or an error
// wrapping ErrStateRefused with the cluster's reason.
func (n *Node) submitDecided(ctx context.Context, e *command.Entry) (uint64, error) {
	idx, res, err := n.submitIndexed(ctx, e)
	if err != nil {
		return 0, err
	}
	if len(res) == 1 && res[0].Err != nil {
		return idx, fmt.Errorf("%w: %s", ErrStateRefused, res[0].Err.Message)
	}
	return idx, nil
}

// waitMember waits until node is (in) or is not (!in) in the Raft
// configuration.
func (n *Node) waitMember(ctx context.Context, node string, in bool) error {
	for {
		found := false
		for _, p := range n.Status().Peers {
			if p.ID == node {
				found = true
			}
		}
		if found == in {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: Raft configuration not changed yet: %w", node, ctx.Err())
		case <-n.stop:
			return command.ErrShuttingDown
		case <-time.After(20 * time.Millisecond):
		}
	}
}
