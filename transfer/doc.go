// Package transfer copies a member's whole database to a node that cannot
// replay the log it needs: a follower whose database is behind the leader's
// compacted log (Raft installed a snapshot), a joiner, or a node whose
// database lost commits that its latest Raft snapshot covers.
//
// A donor serves a consistent logical dump of its database (Database.Dump,
// taken between two applies, with the index it is at) on GET Path of the
// cluster port (Handler; mutual TLS when the cluster has it); the receiver
// streams it into its own database (Database.RestoreSnapshot) with Fetch, and
// Copier tries the donors it is given in rounds, with back-off, until a copy
// at or after the index it needs is restored. internal/snapstream carries the
// dump with its index in an HTTP trailer, so a cut transfer is an error.
//
// It knows nothing of Raft: the ordering layer says which index it needs and
// which members may donate, and what to do after the copy.
package transfer
