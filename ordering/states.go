package ordering

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/membership"
)

// Node states and membership are decided by the membership package (a
// deterministic state machine over the log's entries); the FSM feeds it
// every record's entries, delivers the decisions to local waiters and
// performs the Raft actions it asks for. The names below keep ordering's
// API (admin, cmd) as it was.

// NodeState is a node's operational state (membership.NodeState).
type NodeState = membership.NodeState

// The node states; see membership.
const (
	StateJoining     = membership.StateJoining
	StateActive      = membership.StateActive
	StateStandby     = membership.StateStandby
	StateMaintenance = membership.StateMaintenance
	StateOffline     = membership.StateOffline
	StateWitness     = membership.StateWitness
	StateRemoved     = membership.StateRemoved
)

// OperatorStates are the states an operator may set.
var OperatorStates = membership.OperatorStates

// ErrStateRefused wraps a state change the cluster refused (the message says
// why and what to do).
var ErrStateRefused = membership.ErrStateRefused

// decideStates decides the membership entries of the record at index (on
// Raft's FSM goroutine, for every record, also those applied before a
// restart), delivers their results to local waiters, has the leader that
// appended an accepted entry perform its Raft action, and switches this
// node between applying records as they come (direct) and keeping them for
// the drain goroutine (deferred) when its own state changes.
func (f *fsm) decideStates(index, term uint64, entries []*command.Entry) {
	for _, e := range entries {
		if !e.Kind.DecidedByOrdering() {
			continue
		}
		d, ok := f.members.Decide(e, e.ID.Node)
		if !ok {
			continue
		}
		replay := index <= f.skipThrough
		if !replay {
			f.logDecision(index, e, d)
		}
		if e.ID.Node == f.self {
			f.proc.waiters.deliver(e.ID, delivery{index: index, results: []command.Result{{Err: d.Refused}}})
		}
		if d.Refused == nil && d.Action != membership.NoAction && !replay {
			f.leader.act(term, d)
		}
		if d.OwnBefore == d.OwnAfter {
			continue
		}
		if !d.OwnAfter.Applies() {
			f.proc.setDeferred()
			if !replay {
				// A leader that does not apply would stall its own
				// checkpoints; hand leadership to another node.
				f.leader.stepDown()
			}
		} else if !d.OwnBefore.Applies() {
			f.proc.kickDrain()
		}
	}
}

// logDecision logs a membership decision (not for records replayed after
// a restart).
func (f *fsm) logDecision(index uint64, e *command.Entry, d membership.Decision) {
	switch e.Kind {
	case command.KindNodeState:
		ch := e.NodeState
		if d.Refused != nil {
			f.logger.Info("node state change refused", "index", index, "target", ch.Node, "state", ch.State, "why", d.Refused.Message)
		} else {
			f.logger.Info("node state changed", "index", index, "target", ch.Node, "state", ch.State, "reason", ch.Reason, "by", e.ID.Node)
		}
	case command.KindNodeRemove:
		if d.Refused == nil {
			f.logger.Info("node removed from the cluster", "index", index, "target", d.Node, "was", d.Was, "by", e.ID.Node)
		}
	case command.KindNodeAdd:
		if d.Refused == nil {
			f.logger.Info("node added; it is joining", "index", index, "target", d.Node, "addr", d.Addr, "by", e.ID.Node)
		}
	}
}

// leaderActions performs the Raft actions of accepted membership entries
// on the leader that appended them. It holds what it needs of the node, not
// the node.
type leaderActions struct {
	self   string
	raft   func() *raft.Raft // nil until Raft started
	closed func() bool
	stop   <-chan struct{}
	wg     *sync.WaitGroup
	logger *slog.Logger
}

// leading returns Raft when this node leads (in term, when term > 0).
func (l *leaderActions) leading(term uint64) *raft.Raft {
	r := l.raft()
	if r == nil || r.State() != raft.Leader || (term > 0 && r.CurrentTerm() != term) || l.closed() {
		return nil
	}
	return r
}

// act performs an accepted decision's Raft action when this node is the
// leader that appended the entry (it still leads in the entry's term; a
// later leader applying the same entry must not act again), on a goroutine
// of its own.
func (l *leaderActions) act(term uint64, d membership.Decision) {
	r := l.leading(term)
	if r == nil {
		return
	}
	switch d.Action {
	case membership.AddVoter:
		l.run("adding a node to the Raft configuration failed; remove it and add it again", func() error {
			return r.AddVoter(raft.ServerID(d.Node), raft.ServerAddress(d.Addr), 0, 0).Error()
		})
	case membership.RemoveServer:
		l.run("removing a node from the Raft configuration failed; run node remove again", func() error {
			return r.RemoveServer(raft.ServerID(d.Node), 0, 0).Error()
		})
	case membership.TransferLeadership:
		to := d.Node
		l.run("leadership transfer failed", func() error {
			if to == l.self {
				return nil // this node leads already
			}
			if to == "" {
				return r.LeadershipTransfer().Error()
			}
			var addr raft.ServerAddress
			for _, srv := range r.GetConfiguration().Configuration().Servers {
				if string(srv.ID) == to {
					addr = srv.Address
				}
			}
			return r.LeadershipTransferToServer(raft.ServerID(to), addr).Error()
		})
	}
}

// stepDown hands leadership to another node when this node leads.
func (l *leaderActions) stepDown() {
	r := l.leading(0)
	if r == nil {
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if err := r.LeadershipTransfer().Error(); err != nil {
			l.logger.Warn("leadership transfer on leaving service failed", "err", err)
		}
	}()
}

// run runs a Raft action on a goroutine of its own.
func (l *leaderActions) run(failed string, action func() error) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		// Not waited for past Close: Raft may never answer a future it
		// dropped (a leader removing itself shuts its Raft down first).
		errc := make(chan error, 1)
		go func() { errc <- action() }()
		select {
		case err := <-errc:
			if err != nil {
				l.logger.Warn(failed, "err", err)
			}
		case <-l.stop:
		}
	}()
}

// NodeStates returns every node's state as this node's FSM last decided it.
func (n *Node) NodeStates() map[string]NodeState { return n.fsm.members.States() }

// OwnState returns this node's state and whether it is still applying
// records it left in the log (catching up after maintenance or offline).
func (n *Node) OwnState() (NodeState, bool) {
	return n.fsm.members.Own(), n.fsm.proc.catchingUp()
}

// SetNodeState orders a state change for node and waits for the decision:
// nil, an error wrapping ErrStateRefused (with the reason), or an ordering
// error (no leader, outcome unknown).
func (n *Node) SetNodeState(ctx context.Context, node string, state NodeState, reason string) (uint64, error) {
	return n.submitDecided(ctx, &command.Entry{Kind: command.KindNodeState, NodeState: &command.NodeStateChange{Node: node, State: string(state), Reason: reason}})
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
// cluster committed (membership.JoinDone decides; it submits the change).
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
		st, deferred := n.OwnState()
		commit, applied := n.Indexes()
		if !membership.JoinDone(membership.JoinProgress{Seeded: n.fsm.members.Seeded(), State: st,
			CatchingUp: deferred, LeaderKnown: n.LeaderID() != "", Commit: commit, Applied: applied}) {
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
