package ordering

import (
	"context"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lockstepdb/lockstep/command"
)

// Named locks (GET_LOCK and friends) are held in a table every node changes
// only through KindLock entries. A holder's session releases its locks when
// it ends; the entries here release the locks of sessions that can no longer
// do so:
//
//   - a node's previous run (it crashed or was stopped): once started, the
//     node orders LockReleaseNode{Node: self, Keep: its incarnation};
//   - a node outside the quorum: the leader orders LockReleaseNode{Node: X}
//     once its heartbeats to X have failed for longer than releaseAfter,
//     counted from X's last contact. X's own proxy has by then closed the
//     sessions that held locks, because X's quorum gate refuses writes
//     after it lost its leader for longer than its grace.
//
// Failed heartbeats are learnt from Raft observations; Raft reports a failure
// at least every HeartbeatTimeout/2 while it lasts, and a resumption once.

// lockObserverBuffer is the observation channel's size: observations are
// dropped by Raft when it is full, and the watcher may be busy ordering a
// release for up to 2 SubmitTimeouts.
const lockObserverBuffer = 1024

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
	ch := make(chan raft.Observation, lockObserverBuffer)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(obs)
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		n.releaseOwnLocks(incarnation)
	}()
	go func() {
		defer n.wg.Done()
		defer n.raft.DeregisterObserver(obs)
		n.watchPeerLocks(ch, releaseAfter)
	}()
}

// releaseOwnLocks orders the release of the locks of this node's earlier
// incarnations, retrying until it is ordered or the node closes.
func (n *Node) releaseOwnLocks(incarnation string) {
	backoff := 100 * time.Millisecond
	for {
		res, err := n.Submit(n.ctx, &command.Entry{Kind: command.KindLock,
			Lock: &command.LockOp{Op: command.LockReleaseNode, Node: n.cfg.NodeID, Keep: incarnation}})
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

// failingPeer is a follower whose heartbeats fail.
type failingPeer struct {
	since    time.Time // its last contact with this leader
	released bool      // its locks were released in this episode
}

// watchPeerLocks tracks followers whose heartbeats fail and, while this node
// leads, releases the locks of those out of contact for releaseAfter.
func (n *Node) watchPeerLocks(ch <-chan raft.Observation, releaseAfter time.Duration) {
	failing := map[raft.ServerID]*failingPeer{}
	tick := min(max(releaseAfter/8, 50*time.Millisecond), 250*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case o := <-ch:
			switch d := o.Data.(type) {
			case raft.FailedHeartbeatObservation:
				since := d.LastContact
				if since.IsZero() {
					since = time.Now()
				}
				f := failing[d.PeerID]
				switch {
				case f == nil:
					failing[d.PeerID] = &failingPeer{since: since}
				case since.After(f.since):
					// Contact happened in between (its resumption was not
					// observed): a new episode.
					*f = failingPeer{since: since}
				}
			case raft.ResumedHeartbeatObservation:
				delete(failing, d.PeerID)
			}
		case <-t.C:
			if n.raft.State() != raft.Leader {
				clear(failing)
				continue
			}
			for id, f := range failing {
				if f.released || time.Since(f.since) < releaseAfter {
					continue
				}
				if err := n.releasePeerLocks(string(id)); err != nil {
					n.logger.Warn("named locks of a node outside the quorum not released yet", "peer", string(id), "err", err)
					continue
				}
				f.released = true
				n.logger.Warn("released the named locks of a node outside the quorum", "peer", string(id),
					"last_contact", f.since.Format(time.RFC3339Nano))
			}
		}
	}
}

func (n *Node) releasePeerLocks(peer string) error {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.SubmitTimeout)
	defer cancel()
	_, err := n.Submit(ctx, &command.Entry{Kind: command.KindLock,
		Lock: &command.LockOp{Op: command.LockReleaseNode, Node: peer}})
	return err
}
