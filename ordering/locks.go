package ordering

import (
	"context"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/quorum"
)

// Named locks (GET_LOCK and friends) are held in a table every node changes
// only through KindLock entries. A holder's session releases its locks when
// it ends; the entries here (decided by quorum.OwnLockRelease and
// quorum.PeerLockReleases, ordered here) release the locks of sessions that
// can no longer do so:
//
//   - a node's previous run (it crashed or was stopped): once started, the
//     node orders LockReleaseNode{Node: self, Keep: its incarnation};
//   - a node outside the quorum: the leader orders LockReleaseNode{Node: X}
//     once its heartbeats to X have failed for longer than releaseAfter,
//     counted from X's last contact. X's own proxy has by then closed the
//     sessions that held locks, because X's quorum gate refuses writes
//     after it lost its leader for longer than its grace.
//
// Failed heartbeats are learnt from n.live, which the node's one heartbeat
// observer feeds (health.go).

// WatchLocks starts this node's part in releasing named locks: it orders
// the release of the locks of this node's previous runs (every incarnation
// but incarnation, retried until ordered), and, while this node leads,
// orders the release of the locks of any node whose heartbeats have failed
// for longer than releaseAfter. releaseAfter must exceed the time a node cut
// off from the leader takes to fence itself: up to 2 HeartbeatTimeouts until
// it drops its leader, plus its quorum gate's grace, plus the proxy's fence
// check interval. Call it once, after New; it stops with Close.
func (n *Node) WatchLocks(incarnation string, releaseAfter time.Duration) {
	if n.closed.Load() {
		return
	}
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		n.releaseOwnLocks(incarnation)
	}()
	go func() {
		defer n.wg.Done()
		n.watchPeerLocks(releaseAfter)
	}()
}

// releaseOwnLocks orders the release of the locks of this node's earlier
// incarnations, retrying until it is ordered or the node closes.
func (n *Node) releaseOwnLocks(incarnation string) {
	backoff := 100 * time.Millisecond
	for {
		res, err := n.Submit(n.ctx, quorum.OwnLockRelease(n.cfg.NodeID, incarnation))
		if err == nil {
			released := uint64(0)
			if len(res) == 1 {
				released = res[0].AffectedRows
			}
			n.logger.Info("named locks of this node's previous runs released", "incarnation", incarnation, "holds", released)
			return
		}
		if n.closed.Load() {
			return
		}
		n.logger.Debug("named locks of this node's previous runs not released yet; retrying", "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-n.stop:
			t.Stop()
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// watchPeerLocks, while this node leads, releases the locks of the
// followers whose heartbeats have failed for releaseAfter since their last
// contact, once per episode (n.live); when it does not lead, it forgets the
// episodes.
func (n *Node) watchPeerLocks(releaseAfter time.Duration) {
	tick := min(max(releaseAfter/8, 50*time.Millisecond), 250*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			leading := n.raft.State() == raft.Leader
			if !leading {
				n.live.Reset() // only the leader's view counts
			}
			overdue := n.live.Overdue(time.Now(), releaseAfter)
			peers := make([]string, len(overdue))
			for i, ep := range overdue {
				peers[i] = ep.Peer
			}
			for i, e := range quorum.PeerLockReleases(leading, peers) {
				ep := overdue[i]
				if err := n.submitTimed(e); err != nil {
					n.logger.Warn("named locks of a node outside the quorum not released yet", "peer", ep.Peer, "err", err)
					continue
				}
				n.live.Mark(ep)
				n.logger.Warn("released the named locks of a node outside the quorum", "peer", ep.Peer,
					"last_contact", ep.Since.Format(time.RFC3339Nano))
			}
		}
	}
}

// submitTimed submits e within SubmitTimeout.
func (n *Node) submitTimed(e *command.Entry) error {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.SubmitTimeout)
	defer cancel()
	_, err := n.Submit(ctx, e)
	return err
}
