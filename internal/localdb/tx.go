package localdb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/command"
)

// txSavepoint brackets one transaction entry inside the record's local
// transaction; the proxy refuses client savepoints with this prefix.
const txSavepoint = "lockstep_tx"

// conflict is the single result of a transaction entry whose re-execution
// did not observe what its client observed at the origin.
func conflict(pos int, why string) command.Result {
	return command.Result{Err: &command.Error{Code: 1213, State: "40001",
		Message: fmt.Sprintf("Deadlock found when trying to get lock; try restarting transaction (Lockstep: statement %d %s)", pos+1, why)}}
}

// applyTx re-executes a transaction entry at its log position and keeps its
// effects only when every statement's outcome equals what the client saw at
// the origin (Stmt.Expect); otherwise it rolls them back to a savepoint and
// returns error 1213. The decision depends only on the entry and the local
// data, which are the same on every node.
func (db *DB) applyTx(ctx context.Context, f flatStmt) (command.Result, error) {
	cn := db.cn
	e := f.e
	session := false
	for i := range e.Stmts {
		session = session || e.Stmts[i].Session
	}
	if !session && db.txPipelinable(ctx, e) {
		return db.applyTxPipelined(ctx, f)
	}
	if _, err := cn.exec(ctx, "SAVEPOINT "+txSavepoint); err != nil {
		return command.Result{}, err
	}
	aiBefore := maps.Clone(db.aiDirty)
	// The transaction's starting context: database, session variables,
	// the pinned time and RAND() seeds, LAST_INSERT_ID() and the user
	// variables it reads. Statements then run back to back, as they did in
	// the client's session.
	res, err := db.txSetup(ctx, f)
	if err != nil {
		return command.Result{}, err
	}
	if res.Err != nil {
		return db.txRollback(ctx, aiBefore, session, res)
	}
	for i := range e.Stmts {
		st := &e.Stmts[i]
		got, err := db.txStmt(ctx, e, st)
		if err != nil {
			return command.Result{}, err
		}
		want := command.Outcome{}
		if st.Expect != nil {
			want = *st.Expect
		}
		got.CheckAffected = want.CheckAffected
		if !want.Equal(got) {
			return db.txRollback(ctx, aiBefore, session, conflict(i, describeMismatch(want, got)))
		}
	}
	if _, err := cn.exec(ctx, "RELEASE SAVEPOINT "+txSavepoint); err != nil {
		return command.Result{}, err
	}
	if err := db.txRestore(ctx, session); err != nil {
		return command.Result{}, err
	}
	return command.Result{}, nil
}

// txPipelinable reports whether a transaction entry's statements can go to
// the server in one round trip (applyTxPipelined): plain writes and reads
// (each answers with one OK or one result set; no session changes), and
// every insert's id pin computable before
// any statement ran: at most one insert per auto-increment table, into a
// table the record has not inserted into yet (its pin then depends only on
// the data, not on ids generated earlier in the record).
func (db *DB) txPipelinable(ctx context.Context, e *command.Entry) bool {
	if db.noPipeline() {
		return false
	}
	seen := map[string]bool{}
	size := 0
	for i := range e.Stmts {
		st := &e.Stmts[i]
		if st.Session || st.DDL || (!st.Read && !plainWrite(st.SQL)) {
			return false
		}
		if size += len(st.SQL); size > pipelineBytes {
			return false // one packet that large could pass max_allowed_packet
		}
		if st.InsertTable == "" {
			continue
		}
		ai, err := db.autoIncFor(ctx, flatStmt{e: e, stmt: st})
		if err != nil {
			return false
		}
		if ai.col == "" {
			continue
		}
		k := ai.key()
		if _, dirty := db.aiDirty[k]; dirty || seen[k] {
			return false
		}
		seen[k] = true
	}
	return true
}

// applyTxPipelined is applyTx for a txPipelinable entry: the session setup,
// SAVEPOINT and every statement with its id pin in one round trip; then
// the outcomes are compared in order. A setup that fails is redone the
// careful way (txSetup; nothing else ran), and when it is the transaction's
// result the savepoint is not needed: nothing ran to roll back. Statements after a
// mismatch ran too, but the savepoint rollback undoes them with the rest, so
// the result and the data are what the statement-by-statement loop leaves.
// A statement that fails ends the round trip; after it is judged, the rest
// go in the next one. On success the savepoint is left to the record's
// COMMIT (a later SAVEPOINT of the same name replaces it).
func (db *DB) applyTxPipelined(ctx context.Context, f flatStmt) (command.Result, error) {
	cn := db.cn
	e := f.e
	db.txPipelined++
	aiBefore := maps.Clone(db.aiDirty)
	ais := make([]autoInc, len(e.Stmts))
	rs := false
	for i := range e.Stmts {
		var err error
		if ais[i], err = db.autoIncFor(ctx, flatStmt{e: e, stmt: &e.Stmts[i]}); err != nil {
			return command.Result{}, err
		}
		rs = rs || e.Stmts[i].UsesRand
	}
	setup := db.setupSQL(flatStmt{ent: f.ent, e: e, stmt: &command.Stmt{UsesRand: rs}}, autoInc{})
	next := 0
	first := true
	for next < len(e.Stmts) {
		var qs []string
		var stmtQ []int // index in qs of statement next+j
		nSetup := 0
		if first {
			if setup.use != "" {
				qs = append(qs, setup.use)
			}
			qs = append(qs, setup.set, "SAVEPOINT "+txSavepoint)
			nSetup = len(qs) - 1
		}
		for i := next; i < len(e.Stmts); i++ {
			if ai := ais[i]; ai.col != "" {
				qs = append(qs, "SET insert_id="+ai.expr(db.hwExpr(ai.key())))
			}
			qs = append(qs, e.Stmts[i].SQL)
			stmtQ = append(stmtQ, len(qs)-1)
		}
		rs, err := cn.execEach(ctx, qs)
		var me *mysql.MyError
		if err != nil && !errors.As(err, &me) {
			return command.Result{}, err
		}
		if first && nSetup > 0 && len(rs) < nSetup {
			// USE or SET failed, and nothing after it ran.
			if setup.use != "" && len(rs) > 0 {
				cn.curDB = e.Ctx.DB
			}
			res, err := db.txSetup(ctx, f)
			if err != nil || res.Err != nil {
				return res, err
			}
			if _, err := cn.exec(ctx, "SAVEPOINT "+txSavepoint); err != nil {
				return command.Result{}, err
			}
			first = false
			continue
		}
		if first {
			if setup.use != "" {
				cn.curDB = e.Ctx.DB
			}
			setup.commit(cn)
		}
		first = false
		if me != nil {
			// Before judging what ran, find out whether the failure
			// ended the whole local transaction (a deadlock, or an error
			// that rolls back everything): then the savepoint is gone, and
			// a mismatch before the failure could not be rolled back to
			// it. The record is re-run, as when a statement fails so in
			// the statement-by-statement loop.
			if me.Code == 1213 || me.Code == 1205 {
				return command.Result{}, errRestart
			}
			ok, err := cn.exec(ctx, "DO 0")
			if err != nil {
				return command.Result{}, err
			}
			if ok.Status&mysql.SERVER_STATUS_IN_TRANS == 0 {
				return command.Result{}, errRestart
			}
		}
		// Judge the statements that ran, in order.
		start := next
		for j, q := range stmtQ {
			i := start + j
			st := &e.Stmts[i]
			want := command.Outcome{}
			if st.Expect != nil {
				want = *st.Expect
			}
			var got command.Outcome
			switch {
			case q < len(rs) && isRows(rs[q]):
				for _, row := range rs[q].RowDatas {
					got.Rows.Add(row)
				}
				got.Warnings = rs[q].Warnings
			case q < len(rs):
				r := rs[q]
				got.AffectedRows, got.LastInsertID = r.AffectedRows, r.InsertId
				got.Warnings, got.Info = r.Warnings, r.StatusMessage
				if ai := ais[i]; ai.col != "" && r.AffectedRows > 0 && r.InsertId > 0 {
					k := ai.key()
					d := db.aiDirty[k]
					d.autoInc = ai
					d.hw = max(d.hw, r.InsertId+1)
					db.aiDirty[k] = d
				}
			case q == len(rs) && me != nil:
				// This statement failed, and the transaction is still
				// open (checked above).
				got.ErrCode = me.Code
			default:
				// Its id pin (or the SAVEPOINT) failed: as txStmt, an error.
				return command.Result{}, me
			}
			got.CheckAffected = want.CheckAffected
			if !want.Equal(got) {
				return db.txRollback(ctx, aiBefore, false, conflict(i, describeMismatch(want, got)))
			}
			next = i + 1
			if got.ErrCode != 0 {
				break // the rest did not run
			}
		}
		if me == nil {
			break
		}
	}
	return command.Result{}, nil
}

// txSetup brings the applier session to the transaction's starting context.
// A failure to set it (for example an unknown database) is the
// transaction's result.
func (db *DB) txSetup(ctx context.Context, f flatStmt) (command.Result, error) {
	rs := false
	for i := range f.e.Stmts {
		rs = rs || f.e.Stmts[i].UsesRand
	}
	start := flatStmt{ent: f.ent, e: f.e, stmt: &command.Stmt{UsesRand: rs}}
	if err := db.setup(ctx, start, autoInc{}); err != nil {
		var se *stmtError
		if errors.As(err, &se) {
			return conflict(-1, "could not set up its session: "+se.me.Message), nil
		}
		return command.Result{}, err
	}
	return command.Result{}, nil
}

// txStmt runs one statement of a transaction entry and returns what a
// client would observe of it.
func (db *DB) txStmt(ctx context.Context, e *command.Entry, st *command.Stmt) (command.Outcome, error) {
	cn := db.cn
	ai, err := db.autoIncFor(ctx, flatStmt{e: e, stmt: st})
	if err != nil {
		return command.Outcome{}, err
	}
	if ai.col != "" {
		if _, err := cn.exec(ctx, "SET insert_id="+ai.expr(db.hwExpr(ai.key()))); err != nil {
			return command.Outcome{}, err
		}
	}
	r, err := cn.exec(ctx, st.SQL)
	if err != nil {
		var me *mysql.MyError
		if !errors.As(err, &me) {
			return command.Outcome{}, err
		}
		if me.Code == 1213 || me.Code == 1205 {
			return command.Outcome{}, errRestart
		}
		// Some errors roll back the whole local transaction: then the
		// record must be re-run, not judged.
		ok, err := cn.exec(ctx, "DO 0")
		if err != nil {
			return command.Outcome{}, err
		}
		if ok.Status&mysql.SERVER_STATUS_IN_TRANS == 0 {
			return command.Outcome{}, errRestart
		}
		return command.Outcome{ErrCode: me.Code}, nil
	}
	var out command.Outcome
	if r.Resultset != nil && len(r.Fields) > 0 {
		for _, row := range r.RowDatas {
			out.Rows.Add(row)
		}
		out.Warnings = r.Warnings
	} else {
		out.AffectedRows, out.LastInsertID = r.AffectedRows, r.InsertId
		out.Warnings, out.Info = r.Warnings, strings.Clone(r.StatusMessage)
	}
	if ai.col != "" && r.AffectedRows > 0 && r.InsertId > 0 {
		k := ai.key()
		d := db.aiDirty[k]
		d.autoInc = ai
		d.hw = max(d.hw, r.InsertId+1)
		db.aiDirty[k] = d
	}
	return out, nil
}

// txRollback undoes a transaction entry that is not kept and returns res.
func (db *DB) txRollback(ctx context.Context, aiBefore map[string]dirtyAutoInc, session bool, res command.Result) (command.Result, error) {
	cn := db.cn
	if _, err := cn.exec(ctx, "ROLLBACK TO SAVEPOINT "+txSavepoint); err != nil {
		return command.Result{}, err
	}
	if _, err := cn.exec(ctx, "RELEASE SAVEPOINT "+txSavepoint); err != nil {
		return command.Result{}, err
	}
	db.aiDirty = aiBefore
	if db.aiDirty == nil {
		db.aiDirty = map[string]dirtyAutoInc{}
	}
	if err := db.txRestore(ctx, session); err != nil {
		return command.Result{}, err
	}
	return res, nil
}

// txRestore returns the applier session to a known state after a
// transaction that changed session state (SET, USE): the character set the
// applier dialled with, the current database, and a cache that forces the
// next entry to set every session variable.
func (db *DB) txRestore(ctx context.Context, session bool) error {
	if !session {
		return nil
	}
	cn := db.cn
	r, err := cn.exec(ctx, "SELECT DATABASE()")
	if err != nil {
		return err
	}
	cn.curDB = ""
	if r.Resultset != nil && r.RowNumber() == 1 {
		cn.curDB, _ = r.GetString(0, 0)
	}
	if _, err := cn.exec(ctx, "SET NAMES utf8mb4"); err != nil {
		return err
	}
	for k := range cn.vars {
		cn.vars[k] = "\x00unknown"
	}
	for _, k := range []string{"sql_mode", "time_zone", "character_set_client", "character_set_connection", "collation_connection"} {
		cn.vars[k] = "\x00unknown"
	}
	return nil
}

func describeMismatch(want, got command.Outcome) string {
	switch {
	case want.ErrCode != got.ErrCode:
		return fmt.Sprintf("raised error %d where the client saw %d", got.ErrCode, want.ErrCode)
	case want.Rows != got.Rows:
		return fmt.Sprintf("read %d rows different from the %d the client read", got.Rows.N, want.Rows.N)
	case want.LastInsertID != got.LastInsertID:
		return fmt.Sprintf("generated insert id %d where the client saw %d", got.LastInsertID, want.LastInsertID)
	case want.CheckAffected && want.AffectedRows != got.AffectedRows:
		return fmt.Sprintf("affected %d rows where the client saw %d", got.AffectedRows, want.AffectedRows)
	}
	return fmt.Sprintf("reported %q (%d warnings) where the client saw %q (%d warnings)", got.Info, got.Warnings, want.Info, want.Warnings)
}
