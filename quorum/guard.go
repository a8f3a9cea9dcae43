package quorum

import (
	"fmt"
	"sync"
	"time"
)

// State is what this node may do for clients.
type State string

const (
	// Serving: a leader is known and the outcome hash agrees.
	Serving State = "serving"
	// NoQuorum: no leader has been reachable for longer than the grace period.
	NoQuorum State = "no-quorum"
	// Diverged: this node's outcome hash differs from the majority's.
	Diverged State = "diverged"
	// NotServing: the node's operational state (standby, maintenance,
	// offline, joining) serves no clients.
	NotServing State = "not-serving"
	// CatchingUp: the node is active again but still applying the log it
	// stored while it was in maintenance or offline.
	CatchingUp State = "catching-up"
)

// View is the part of the ordering status the Guard needs.
type View struct {
	LeaderID string
	// IsLeader: this node is the Raft leader (it steps down by itself when
	// it loses contact with a quorum for its leader lease).
	IsLeader bool
	// LastContact is when this node last heard from a leader (zero: never).
	LastContact    time.Time
	Diverged       bool
	DivergedDetail string
	// NodeState is the node's operational state as the log decided it
	// (active, standby, maintenance, offline, joining); "" means active.
	NodeState string
	// CatchingUp: the node still applies records it stored while it did
	// not apply.
	CatchingUp bool
	// CommitIndex and AppliedIndex: after a lost lease, the node serves
	// again only once it applied what the leader had committed when
	// contact came back.
	CommitIndex, AppliedIndex uint64
}

// Source reports the current View. ordering.Node satisfies it through a small
// adapter in cmd/lockstepd.
type Source interface {
	QuorumView() View
}

// Error is a refusal: the node's State and a human Detail (as State
// reports them). The SQL proxy turns it into its client's error
// (sqlproxy/errors.go).
type Error struct {
	State  State
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "quorum: " + string(e.State)
	}
	return "quorum: " + string(e.State) + ": " + e.Detail
}

// Guard answers Admit for the SQL proxy.
type Guard struct {
	src   Source
	lease time.Duration
	now   func() time.Time

	started time.Time // the first lease starts with the node

	mu        sync.Mutex
	wasLeader bool   // led at the last look, and no other leader known since
	fenced    bool   // the lease ran out; not yet caught up since
	catchUpTo uint64 // commit index to apply before serving again (fenced)
}

// NewGuard returns a Guard over src. A node serves only while it is the
// leader or heard from a leader within lease: a follower cut off from the
// majority stops serving within lease of its last contact; a leader cut off
// steps down within its Raft leader lease and stops serving at once (its last
// contact from another leader is older than its leadership).
func NewGuard(src Source, lease time.Duration) *Guard {
	// A node starts fenced: it serves once it has heard from a leader and
	// applied what that leader had committed, never from its own old data.
	return &Guard{src: src, lease: lease, now: time.Now, started: time.Now(), fenced: true}
}

// State reports the node's current serving state and a human detail.
func (g *Guard) State() (State, string) {
	v := g.src.QuorumView()
	if v.Diverged {
		return Diverged, v.DivergedDetail
	}
	if v.NodeState == "removed" {
		return NotServing, "node state removed" // whatever its quorum says
	}
	g.mu.Lock()
	now := g.now()
	contact := v.LastContact
	if contact.Before(g.started) {
		contact = g.started
	}
	switch {
	case v.IsLeader:
		contact = now
		g.wasLeader = true
	case v.LeaderID != "":
		g.wasLeader = false
	}
	since := now.Sub(contact)
	var st State
	var detail string
	switch {
	case g.wasLeader && !v.IsLeader:
		// A leader steps down when it loses contact with a quorum for its
		// Raft leader lease: it has been cut off for that long already.
		g.fenced, g.catchUpTo = true, 0
		st, detail = NoQuorum, "stepped down as leader: lost contact with the majority"
	case since > g.lease:
		g.fenced, g.catchUpTo = true, 0
		st, detail = NoQuorum, fmt.Sprintf("no contact with a leader for %s, lease %s", since.Round(time.Millisecond), g.lease)
	case g.fenced && v.LeaderID == "":
		st, detail = NoQuorum, "waiting for contact with a leader"
	case g.fenced:
		// Contact is back: serve once the log the leader had committed
		// then is applied here.
		if g.catchUpTo == 0 {
			g.catchUpTo = max(v.CommitIndex, 1)
		}
		if v.AppliedIndex >= g.catchUpTo {
			g.fenced = false
			st = Serving
		} else {
			st, detail = CatchingUp, fmt.Sprintf("back in contact with the leader; applied %d of %d", v.AppliedIndex, g.catchUpTo)
		}
	case v.LeaderID == "":
		st, detail = Serving, "electing"
	default:
		st = Serving
	}
	g.mu.Unlock()
	if st != Serving {
		return st, detail
	}
	switch {
	case v.NodeState != "" && v.NodeState != "active":
		return NotServing, "node state " + v.NodeState
	case v.CatchingUp:
		return CatchingUp, "applying the log stored while this node was out of service"
	}
	return st, detail
}

// Admit returns nil when the node may serve the statement, or an *Error.
func (g *Guard) Admit(write bool) error {
	if st, detail := g.State(); st != Serving {
		return &Error{State: st, Detail: detail}
	}
	return nil
}
