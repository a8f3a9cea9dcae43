// Package quorum decides whether this node may serve clients, from what the
// ordering layer knows: a node that has no reachable leader (a minority in a
// partition, or a cluster still electing) refuses reads and writes, and a node
// whose outcome hash diverged from the majority's refuses everything until an
// operator resyncs it.
//
// The SQL proxy asks the Guard before each statement (Admit); a refusal is
// an *Error (the State and a human detail), which the proxy's error table
// (sqlproxy/errors.go) turns into the client's MySQL error.
//
// Lease: a node serves only while it is the Raft leader or heard from a
// leader within the lease (lockstepd --fence-grace, default 900ms); a node cut
// off from the majority refuses reads and writes within that bound and serves
// again by itself once a leader reaches it. A node whose operational state is
// not active (standby, maintenance, offline, joining), or that is still
// applying the log it stored while out of service, refuses clients too.
//
// Divergence judges checkpoint reports: a node whose outcome hash differs
// from the one a majority of the voters of the configuration at the
// checkpoint's index reported has diverged. The ordering layer feeds it, in
// log order, from the goroutine that applies records.
//
// QuorumLoss refuses operator actions (a node into maintenance or offline,
// a removal) that would leave too few running voters for a quorum, and
// FenceBound is how long a cut-off node takes to fence itself, after which
// the leader may release its named locks. Both are plain functions over
// inputs the ordering layer gathers. OwnLockRelease and PeerLockReleases
// decide the named-lock releases the ordering layer submits: a node's
// previous runs' at start, and, while leading, those of the peers out of
// contact for longer than FenceBound (package liveness tracks them).
package quorum
