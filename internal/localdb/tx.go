package localdb

import (
	"context"

	"github.com/lockstepdb/lockstep/ordering/command"
)

// applyTx re-executes a transaction entry and keeps its effects only when
// every outcome equals what the client saw at the origin.
func (db *DB) applyTx(ctx context.Context, f flatStmt) (command.Result, error) {
	return command.Result{Err: &command.Error{Code: 1235, State: "42000", Message: "Lockstep: transactions are not implemented yet"}}, nil
}
