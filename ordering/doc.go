// Package ordering is Lockstep's total-order layer: a hashicorp/raft cluster
// whose log is the global sequence of writes. The Raft leader is the
// sequencer; a log index is the sequence number.
//
// A Node is created with New(cfg, applier, logger). Submit orders one
// command.Entry — locally when this node leads, otherwise by forwarding it to
// the leader over the same TCP port Raft uses — and returns only after this
// node's own FSM has applied it, with this node's results. The leader batches
// concurrently submitted entries into one log record. Every node's FSM hands
// committed statement entries, in log order, to its Applier (the local
// database), which records the applied index in the same local transaction,
// so replay after a restart never applies an entry twice.
//
// Divergence detection: the leader appends checkpoint entries, every node
// reports its outcome hash at each checkpoint through the log, and a node
// whose hash differs from a majority's marks itself diverged (Status).
//
// The Raft FSM is thin: it decodes a record and hands it to a command
// processor, which applies it in the applier mode in force — direct, deferred
// (not applying now, catching up, or copying a peer's database with package
// transfer) or witness (no database: New with a nil applier). Node states
// and membership are decided by package membership; the FSM feeds it the
// log's entries and performs the Raft actions it asks for.
//
// Peer liveness: one Raft observer feeds failed and resumed heartbeats to a
// liveness.Tracker, the leader's view of the peers it cannot reach
// (CheckQuorumLoss, Status) and of those out of contact long enough for
// their named locks to be released (WatchLocks submits the releases
// package quorum decides).
//
// Secondary network: a peer may have a second address (Config.Secondaries).
// Every outgoing connection is dialed on the path in use to its peer; the
// node probes each peer's two addresses and switches a peer to its
// secondary when the primary fails, and back when it heals (paths.go,
// Node.Paths). Forwards cut by a switch are resolved with the leader and
// sent again when it never got them (resolve.go).
//
// Barrier and WaitApplied give linearizable reads. See DESIGN.md for the
// request path, failure stories and trade-offs.
package ordering
