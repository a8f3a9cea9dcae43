package membership

// JoinProgress is what a node knows of its own progress through a join.
type JoinProgress struct {
	Seeded      bool      // the node states are seeded (Members.Seeded)
	State       NodeState // the node's own state (Members.Own)
	CatchingUp  bool      // it is still applying the log it stored while out of service
	LeaderKnown bool      // it knows a leader
	Commit      uint64    // the commit index it knows
	Applied     uint64    // the index it has applied
}

// JoinDone reports whether a joining node has caught up with the cluster
// and orders its own change joining → active: its states are seeded, it is
// joining and not catching up, a leader is known, and it has applied every
// record up to a (nonzero) commit index it knows.
func JoinDone(p JoinProgress) bool {
	if !p.Seeded || p.State != StateJoining || p.CatchingUp || !p.LeaderKnown {
		return false
	}
	return p.Commit != 0 && p.Applied >= p.Commit
}
