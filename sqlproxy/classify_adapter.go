package sqlproxy

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// defaultClassifier adapts package classify.
type defaultClassifier struct{}

func (defaultClassifier) split(q string, noBackslash bool) (parts []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			parts, err = nil, fmt.Errorf("Lockstep could not split the query (internal error: %v)", r)
		}
	}()
	return classify.Split(q, noBackslash)
}

// classify never lets a classifier bug take the session down: a panic
// refuses the statement (nothing is ordered or relayed).
func (defaultClassifier) classify(sql string, p pins) (st stmt) {
	defer func() {
		if r := recover(); r != nil {
			st = stmt{class: classRefused, sql: sql, kind: "this statement", err: &mysql.MyError{
				Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
				Message: fmt.Sprintf("Lockstep could not check this statement (internal error: %v); it was not executed", r)}}
		}
	}()
	c := classify.Classify(sql, classify.Pins{
		Now: p.now, UUID: p.uuid, UUIDShort: p.uuidShort,
		ConnectionID: p.connectionID, CurrentUser: p.currentUser, InTx: p.inTx,
		NoBackslashEscapes: p.noBackslash,
	})
	st = stmt{sql: c.SQL, kind: c.Kind, userVars: c.UserVars, usesRand: c.UsesRand,
		insertTable: c.InsertTable, insertOne: c.InsertOne, upsertOne: c.UpsertOne, sleep: c.Sleep,
		loadLocal: c.LoadLocal, loadReplace: c.LoadReplace, loadFile: c.LoadFile, db: c.DB, err: c.Err, replay: c.TxReplay, sysVars: c.SysVars,
		locking: c.Locking, assigns: c.Assigns}
	switch c.Class {
	case classify.Read:
		st.class = classRead
	case classify.Write:
		st.class = classWrite
	case classify.DDL:
		st.class = classDDL
	case classify.Session:
		st.class = classSession
	case classify.Local:
		st.class = classLocal
	case classify.TxControl:
		st.class = classTx
		st.tx = txOps[c.Tx]
	default:
		st.class = classRefused
	}
	if st.sql == "" {
		st.sql = sql
	}
	return st
}

var txOps = map[classify.TxOp]txOp{
	classify.TxNone: txNone, classify.Begin: txBegin, classify.Commit: txCommit,
	classify.Rollback: txRollback, classify.Savepoint: txSavepoint, classify.Release: txRelease,
	classify.RollbackTo: txRollbackTo, classify.SetAutocommit0: txAutocommit0,
	classify.SetAutocommit1: txAutocommit1, classify.XA: txXA, classify.LockTables: txLockTables,
	classify.UnlockTables: txUnlockTables,
}
