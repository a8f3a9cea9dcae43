package quorum

import "github.com/lockstepdb/lockstep/command"

// Named locks held by sessions that can no longer release them are
// released by entries the ordering layer submits; these functions decide
// which.

// OwnLockRelease is the entry a node orders once started: it releases the
// named locks of the node's previous runs (it crashed or was stopped),
// every incarnation of node but incarnation, the current one.
func OwnLockRelease(node, incarnation string) *command.Entry {
	return &command.Entry{Kind: command.KindLock,
		Lock: &command.LockOp{Op: command.LockReleaseNode, Node: node, Keep: incarnation}}
}

// PeerLockReleases returns the entries a node orders for overdue, the peers
// out of contact for longer than FenceBound whose locks it has not released
// yet: one LockReleaseNode per peer, in overdue's order, while the node
// leads (only the leader sends heartbeats, so only its view counts); nothing
// when it does not.
func PeerLockReleases(leading bool, overdue []string) []*command.Entry {
	if !leading {
		return nil
	}
	out := make([]*command.Entry, 0, len(overdue))
	for _, peer := range overdue {
		out = append(out, &command.Entry{Kind: command.KindLock,
			Lock: &command.LockOp{Op: command.LockReleaseNode, Node: peer}})
	}
	return out
}
