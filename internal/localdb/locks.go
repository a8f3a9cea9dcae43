package localdb

import (
	"context"
	"errors"

	"github.com/lockstepdb/lockstep/ordering/command"
)

// applyLock applies one named lock operation inside the record's local
// transaction.
func (db *DB) applyLock(ctx context.Context, e *command.Entry) (command.Result, error) {
	return command.Result{Err: &command.Error{Code: 1235, State: "42000", Message: "Lockstep: named locks are not implemented yet"}}, nil
}

// Holder returns the owner of named lock name as this node has applied the
// lock table ("" when free).
func (db *DB) Holder(ctx context.Context, name string) (string, error) {
	return "", errors.New("localdb: named locks are not implemented yet")
}

// Changed returns a channel closed the next time a lock operation is applied.
func (db *DB) Changed() <-chan struct{} { return nil }
