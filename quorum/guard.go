package quorum

import (
	"fmt"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
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
	LeaderID       string
	Diverged       bool
	DivergedDetail string
	// NodeState is the node's operational state as the log decided it
	// (active, standby, maintenance, offline, joining); "" means active.
	NodeState string
	// CatchingUp: the node still applies records it stored while it did
	// not apply.
	CatchingUp bool
}

// Source reports the current View. ordering.Node satisfies it through a small
// adapter in cmd/lockstepd.
type Source interface {
	QuorumView() View
}

// Error is a refusal with its MySQL representation.
type Error struct {
	State State
	my    *mysql.MyError
}

func (e *Error) Error() string { return e.my.Message }

// MySQLError returns the error as the client should see it.
func (e *Error) MySQLError() *mysql.MyError { return e.my }

// Guard answers Admit for the SQL proxy.
type Guard struct {
	src   Source
	grace time.Duration
	now   func() time.Time

	mu          sync.Mutex
	leaderSince time.Time // last time a leader was seen
}

// NewGuard returns a Guard over src. A node that has seen no leader for
// longer than grace refuses clients (grace absorbs a normal election).
func NewGuard(src Source, grace time.Duration) *Guard {
	return &Guard{src: src, grace: grace, now: time.Now, leaderSince: time.Now()}
}

// State reports the node's current serving state and a human detail.
func (g *Guard) State() (State, string) {
	v := g.src.QuorumView()
	if v.Diverged {
		return Diverged, v.DivergedDetail
	}
	g.mu.Lock()
	now := g.now()
	var st State
	var detail string
	switch {
	case v.LeaderID != "":
		g.leaderSince = now
		st = Serving
	case now.Sub(g.leaderSince) > g.grace:
		st, detail = NoQuorum, fmt.Sprintf("no leader reachable for %s", now.Sub(g.leaderSince).Round(time.Millisecond))
	default:
		st, detail = Serving, "electing"
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
	st, detail := g.State()
	switch st {
	case Diverged:
		return &Error{State: st, my: &mysql.MyError{Code: mysql.ER_UNKNOWN_COM_ERROR, State: "08S01",
			Message: "Lockstep: this node's data diverged from the cluster (" + detail + "); it serves no clients until an operator resyncs it. Connect to another node."}}
	case NoQuorum:
		return &Error{State: st, my: &mysql.MyError{Code: mysql.ER_UNKNOWN_COM_ERROR, State: "08S01",
			Message: "Lockstep: this node has no quorum (" + detail + "); it serves no reads or writes until it rejoins the majority. Connect to another node."}}
	case NotServing:
		return &Error{State: st, my: &mysql.MyError{Code: mysql.ER_UNKNOWN_COM_ERROR, State: "08S01",
			Message: "Lockstep: this node is out of service (" + detail + "); it serves no clients until an operator makes it active (clusterctl node set-state <node> active). Connect to another node."}}
	case CatchingUp:
		return &Error{State: st, my: &mysql.MyError{Code: mysql.ER_UNKNOWN_COM_ERROR, State: "08S01",
			Message: "Lockstep: this node is catching up with the cluster (" + detail + "); it serves clients again when it has. Retry shortly or connect to another node."}}
	}
	return nil
}
