package localdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/lockstepdb/lockstep/command"
)

// Named locks (GET_LOCK and friends) are cluster-wide: the lock table
// lockstep.named_locks is changed only by applyLock, at the entry's log
// position, inside the record's local transaction, so every node holds the
// same table after the same index. One row per held lock:
//
//	name         the lock name, exact bytes (MariaDB compares lock names
//	             byte for byte: 'A' and 'a' are different locks)
//	owner        "<node>/<incarnation>/<connection id>" of the holding session
//	node,        parsed from owner, for LockReleaseNode
//	incarnation
//	holds        how many times the owner took it (GET_LOCK is re-entrant;
//	             each RELEASE_LOCK gives back one hold)
//
// Results follow command.LockOp's documentation. The proxy reads the table
// through Holder (the admin pool, committed data only) and waits for changes
// with Changed, which is notified after the record's COMMIT (locksApplied).

// maxLockName is MariaDB's limit on a lock name, in bytes.
const maxLockName = 192

// applyLock applies one named lock operation inside the record's local
// transaction (BEGIN already sent on db.cn). Its result depends only on the
// operation and the lock table, which every node changes in the same order.
func (db *DB) applyLock(ctx context.Context, e *command.Entry) (command.Result, error) {
	op := e.Lock
	if op == nil {
		return command.Result{Err: &command.Error{Code: 1105, State: "HY000", Message: "Lockstep: lock entry without an operation"}}, nil
	}
	switch op.Op {
	case command.LockAcquire:
		return db.lockAcquire(ctx, op)
	case command.LockRelease:
		return db.lockRelease(ctx, op)
	case command.LockReleaseAll:
		return db.lockDelete(ctx, "owner="+hexLiteral([]byte(op.Owner)))
	case command.LockReleaseNode:
		where := "node=" + hexLiteral([]byte(op.Node))
		if op.Keep != "" {
			where += " AND incarnation<>" + hexLiteral([]byte(op.Keep))
		}
		return db.lockDelete(ctx, where)
	}
	return command.Result{Err: &command.Error{Code: 1105, State: "HY000", Message: fmt.Sprintf("Lockstep: unknown lock operation %d", op.Op)}}, nil
}

// lockRow reads the holder of name, locking the row (or the gap) for the
// rest of the record's transaction.
func (db *DB) lockRow(ctx context.Context, name string) (owner string, holds uint64, found bool, err error) {
	r, err := db.cn.exec(ctx, "SELECT owner, holds FROM lockstep.named_locks WHERE name="+hexLiteral([]byte(name))+" FOR UPDATE")
	if err != nil {
		return "", 0, false, lockErr(err)
	}
	if r.Resultset == nil || r.RowNumber() == 0 {
		return "", 0, false, nil
	}
	owner, _ = r.GetString(0, 0)
	holds, _ = r.GetUint(0, 1)
	return strings.Clone(owner), holds, true, nil
}

func (db *DB) lockAcquire(ctx context.Context, op *command.LockOp) (command.Result, error) {
	if bad, res := invalidLockName(op.Name); bad {
		return res, nil
	}
	owner, _, found, err := db.lockRow(ctx, op.Name)
	if err != nil {
		return command.Result{}, err
	}
	switch {
	case !found:
		node, inc := splitOwner(op.Owner)
		q := fmt.Sprintf("INSERT INTO lockstep.named_locks (name, owner, node, incarnation, holds) VALUES (%s, %s, %s, %s, 1)",
			hexLiteral([]byte(op.Name)), hexLiteral([]byte(op.Owner)), hexLiteral([]byte(node)), hexLiteral([]byte(inc)))
		if _, err := db.cn.exec(ctx, q); err != nil {
			return command.Result{}, lockErr(err)
		}
	case owner == op.Owner:
		if _, err := db.cn.exec(ctx, "UPDATE lockstep.named_locks SET holds=holds+1 WHERE name="+hexLiteral([]byte(op.Name))); err != nil {
			return command.Result{}, lockErr(err)
		}
	default:
		return command.Result{AffectedRows: 0}, nil
	}
	return command.Result{AffectedRows: 1}, nil
}

func (db *DB) lockRelease(ctx context.Context, op *command.LockOp) (command.Result, error) {
	if bad, res := invalidLockName(op.Name); bad {
		return res, nil
	}
	owner, holds, found, err := db.lockRow(ctx, op.Name)
	if err != nil {
		return command.Result{}, err
	}
	switch {
	case !found:
		return command.Result{Info: "NULL"}, nil
	case owner != op.Owner:
		return command.Result{AffectedRows: 0}, nil
	}
	q := "UPDATE lockstep.named_locks SET holds=holds-1 WHERE name=" + hexLiteral([]byte(op.Name))
	if holds <= 1 {
		q = "DELETE FROM lockstep.named_locks WHERE name=" + hexLiteral([]byte(op.Name))
	}
	if _, err := db.cn.exec(ctx, q); err != nil {
		return command.Result{}, lockErr(err)
	}
	return command.Result{AffectedRows: 1}, nil
}

// lockDelete releases every lock matching where; the result counts holds.
func (db *DB) lockDelete(ctx context.Context, where string) (command.Result, error) {
	r, err := db.cn.exec(ctx, "SELECT COALESCE(SUM(holds),0) FROM lockstep.named_locks WHERE "+where+" FOR UPDATE")
	if err != nil {
		return command.Result{}, lockErr(err)
	}
	var n uint64
	if r.Resultset != nil && r.RowNumber() == 1 {
		n, _ = r.GetUint(0, 0)
	}
	if n == 0 {
		return command.Result{}, nil
	}
	if _, err := db.cn.exec(ctx, "DELETE FROM lockstep.named_locks WHERE "+where); err != nil {
		return command.Result{}, lockErr(err)
	}
	return command.Result{AffectedRows: n}, nil
}

// lockErr turns a server error on the lock table into a Go error: the lock
// table is metadata, so a failing statement on it is never a result.
// Deadlocks and lock wait timeouts (another local session touching the
// table) re-run the record like any other.
func lockErr(err error) error {
	if me := asMyError(err); me != nil && (me.Code == 1213 || me.Code == 1205) {
		return errRestart
	}
	return fmt.Errorf("localdb: named lock table: %w", err)
}

// invalidLockName: the proxy refuses these before ordering; an entry that
// still carries one gets MariaDB's answer for it (NULL).
func invalidLockName(name string) (bool, command.Result) {
	if name == "" || len(name) > maxLockName {
		return true, command.Result{Info: "NULL"}
	}
	return false, command.Result{}
}

// splitOwner takes "<node>/<incarnation>/<connection id>" apart; the node
// id may itself contain '/'.
func splitOwner(owner string) (node, incarnation string) {
	i := strings.LastIndexByte(owner, '/')
	if i < 0 {
		return owner, ""
	}
	rest := owner[:i]
	j := strings.LastIndexByte(rest, '/')
	if j < 0 {
		return rest, ""
	}
	return rest[:j], rest[j+1:]
}

// Holder returns the owner of named lock name as this node has applied the
// lock table ("" when free). Safe for concurrent use.
func (db *DB) Holder(ctx context.Context, name string) (string, error) {
	var owner []byte
	err := db.admin.QueryRowContext(ctx, "SELECT owner FROM lockstep.named_locks WHERE name=?", []byte(name)).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("localdb: read named lock %q: %w", name, err)
	}
	return string(owner), nil
}

// Locks returns every held named lock as name -> owner (tests, status).
func (db *DB) Locks(ctx context.Context) (map[string]string, error) {
	rows, err := db.admin.QueryContext(ctx, "SELECT name, owner FROM lockstep.named_locks")
	if err != nil {
		return nil, fmt.Errorf("localdb: read named locks: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, o []byte
		if err := rows.Scan(&n, &o); err != nil {
			return nil, err
		}
		out[string(n)] = string(o)
	}
	return out, rows.Err()
}

// Changed returns a channel closed the next time a record holding a lock
// operation has been applied and committed (the caller then reads Holder
// again). Safe for concurrent use.
func (db *DB) Changed() <-chan struct{} {
	n := &db.lockNote
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// locksApplied is called by applyOnce once a record is committed and
// published: it wakes Changed's waiters when the record held a lock
// operation.
func (db *DB) locksApplied(entries []*command.Entry) {
	for _, e := range entries {
		if e.Kind == command.KindLock {
			n := &db.lockNote
			n.mu.Lock()
			if n.ch != nil {
				close(n.ch)
				n.ch = nil
			}
			n.mu.Unlock()
			return
		}
	}
}

// lockNotify is the Changed channel of one DB (DB.lockNote).
type lockNotify struct {
	mu sync.Mutex
	ch chan struct{} // closed and cleared by locksApplied; nil while nobody waits
}
