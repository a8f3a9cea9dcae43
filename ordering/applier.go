package ordering

import (
	"context"

	"github.com/lockstepdb/lockstep/command"
)

// Applier executes committed entries on the local database. It is implemented
// by internal/localdb and knows nothing about Raft.
//
// Contract:
//   - Apply is called only from the FSM's apply goroutine, one call at a time, in
//     strictly increasing index order (gaps are normal: Raft's own records
//     are not passed on). Each call is one Raft log record.
//   - entries holds only entries whose Kind.Applied() is true (statements,
//     transactions, named locks), in log order. It may be
//     empty: the record held only control entries (checkpoints, hash reports,
//     no-ops). An empty call must just record index as applied (cheaply) and
//     must not change the outcome hash.
//   - Apply must be deterministic: the same entries at the same index on the
//     same state give the same results and the same outcome hash on every
//     node. The result has one []command.Result per entry (one Result per
//     statement); SQL errors of a statement are results (Result.Err), not
//     errors.
//   - A non-nil error means the record could not be applied at all (the local
//     database is unreachable) and nothing of it was recorded: the FSM logs
//     it and calls Apply again with the same arguments, with backoff, until it
//     succeeds or the node closes (ctx is then cancelled). The FSM never skips
//     a record.
//   - AppliedIndex is called once at startup: records with index <= it are
//     not passed to Apply again (replay after restart). Record the index in
//     the same local transaction as the effects.
//   - OutcomeHash returns the index of the last applied record and the running
//     hash of all outcomes so far. It is called from the FSM goroutine right
//     after Apply (checkpoints) and from any goroutine for status.
type Applier interface {
	AppliedIndex(ctx context.Context) (uint64, error)
	Apply(ctx context.Context, index uint64, entries []*command.Entry) ([][]command.Result, error)
	OutcomeHash() (index uint64, hash string)
}

// GroupApplier is implemented by appliers that can apply several consecutive
// committed records at once (fewer round trips, one local transaction).
// ApplyGroup is called like Apply (same goroutine rules, records in
// strictly increasing order, each holding only applied entries) and must
// give each record exactly the results and the outcome hash that one Apply
// per record would: nodes group records differently. It applies all of
// recs or none: command.ErrApplyAlone means it cannot apply them together
// (the FSM then calls Apply for each); another error is handled like
// Apply's (retried with the same group).
type GroupApplier interface {
	ApplyGroup(ctx context.Context, recs []command.Record) ([][][]command.Result, error)
}

// Checksummer is implemented by appliers that can hash their database at a
// log position (clusterctl checksum). SnapshotChecksum is called from the FSM
// goroutine between two Apply calls: it must fix what is hashed (the state
// after the last applied record) quickly, and return the slow part, which
// the FSM runs on another goroutine. The result maps "db.table" to a hash.
type Checksummer interface {
	SnapshotChecksum(ctx context.Context) (func(context.Context) (map[string]string, error), error)
}
