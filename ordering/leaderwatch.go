package ordering

import (
	"context"
	"errors"
)

// errLeaderChanged ends an exchange with a leader this node no longer
// follows.
var errLeaderChanged = errors.New("ordering: the leader changed during the exchange")

// leaderChanged wakes every whileLeads watcher (the one Raft observer calls
// it on each LeaderObservation).
func (n *Node) leaderChanged() {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	close(n.leaderChg)
	n.leaderChg = make(chan struct{})
}

func (n *Node) leaderChange() <-chan struct{} {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	return n.leaderChg
}

// whileLeads returns a context that ends, with errLeaderChanged as its
// cause, as soon as the node at addr is not the leader this node follows
// (another node, or none while an election runs; at once when it already
// is not: a request queued for an old leader), or when parent ends. stop
// releases it.
func (n *Node) whileLeads(parent context.Context, addr string) (ctx context.Context, stop func()) {
	c, cancel := context.WithCancelCause(parent)
	go func() {
		for {
			ch := n.leaderChange() // before the check: no change is missed
			if now, _ := n.raft.LeaderWithID(); string(now) != addr {
				cancel(errLeaderChanged)
				return
			}
			select {
			case <-ch:
			case <-c.Done():
				return
			}
		}
	}()
	return c, func() { cancel(nil) }
}
