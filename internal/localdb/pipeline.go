package localdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/lockstepdb/lockstep/ordering/command"
)

// errNoPipeline: the records cannot be applied in one round trip (a
// statement failed or warned, or the records hold something the pipeline
// does not do); nothing of them took effect, apply them the careful way.
var errNoPipeline = errors.New("records not applied in one round trip")

// unknownSession marks the applier session's default database and variables
// as unknown after a pipeline stopped half way: the next statement sets them
// again (and an entry without a default database gets a fresh session).
const unknownSession = "\x00unknown"

// pipelinable reports whether a record's statements can go to the server in
// one round trip: plain writes (INSERT, REPLACE, UPDATE, DELETE: they answer
// with exactly one OK or error) of autocommit entries that name their
// default database. Transactions, named locks and DDL take the careful path.
func pipelinable(flat []flatStmt) bool {
	for _, f := range flat {
		if f.e.Kind != command.KindStatements || f.stmt.DDL || f.e.Ctx.DB == "" || !plainWrite(f.stmt.SQL) {
			return false
		}
	}
	return true
}

func plainWrite(q string) bool {
	w := q
	if i := strings.IndexAny(w, " \t\r\n("); i > 0 {
		w = w[:i]
	}
	switch strings.ToUpper(w) {
	case "INSERT", "REPLACE", "UPDATE", "DELETE":
		return true
	}
	return false
}

// ApplyGroup applies consecutive committed records (ordering's
// GroupApplier) as one local transaction with one round trip for all their
// statements and one for the progress row and COMMIT, when every statement
// qualifies (pipelinable) and none fails or warns. The outcome hash, the
// results and the database are the same as with one Apply per record: every
// statement is folded by its own record's index and position, and every
// record's auto-increment counters are brought up to date at the record's
// end. Otherwise nothing of the group took effect and it returns
// command.ErrApplyAlone: the caller applies the records one by one (Apply,
// with exact errors and warnings and progress recorded per record).
func (db *DB) ApplyGroup(ctx context.Context, recs []command.Record) ([][][]command.Result, error) {
	db.applyMu.Lock()
	defer db.applyMu.Unlock()
	if err := db.closedErr(); err != nil {
		return nil, err
	}
	if db.testNoPipeline {
		return nil, command.ErrApplyAlone
	}
	for _, r := range recs {
		if !pipelinable(flatten(r.Entries)) {
			return nil, command.ErrApplyAlone
		}
	}
	res, err := db.applyPipelined(ctx, recs)
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, errNoPipeline):
		return nil, command.ErrApplyAlone
	}
	last := recs[len(recs)-1].Index
	db.retryIndex = last
	db.reload = true
	return nil, fmt.Errorf("localdb: apply records %d..%d: %w", recs[0].Index, last, err)
}

// applyPipelined applies pipelinable records as one local transaction in two
// round trips: BEGIN and, for every statement, its session setup, the
// statement and its auto-increment high-water mark, with every record's
// counters at its end; then the progress row (the last record's index, the
// outcome hash, every entry's results) and COMMIT. A statement that fails
// or warns rolls the whole transaction back (errNoPipeline): the careful
// path then gives it its exact result (and SHOW WARNINGS).
func (db *DB) applyPipelined(ctx context.Context, recs []command.Record) ([][][]command.Result, error) {
	if err := db.ensureSession(ctx); err != nil {
		return nil, err
	}
	first, last := recs[0].Index, recs[len(recs)-1].Index
	nEntries := 0
	for _, r := range recs {
		nEntries += len(r.Entries)
	}
	if last == db.st.idx && db.retryIndex == last && db.st.partIdx == 0 {
		// Applied, but the COMMIT's acknowledgement was lost.
		db.retryIndex = 0
		flat, err := decodeResults(db.st.results, nEntries)
		if err != nil {
			return nil, err
		}
		return splitResults(recs, flat), nil
	}
	if first <= db.st.idx || db.st.partIdx != 0 {
		return nil, errNoPipeline // partly applied before: record by record
	}
	db.wd.start.Store(time.Now().UnixNano())
	defer db.wd.start.Store(0)
	clear(db.aiDirty)
	db.hwPending = ""
	cn := db.cn
	savedVars := make([]string, 0, len(cn.vars))
	for k := range cn.vars {
		savedVars = append(savedVars, k)
	}
	var flats [][]flatStmt
	var stmtQ []int // index in qs of each statement, records in order
	var touched []string
	qs := []string{"BEGIN"}
	for _, r := range recs {
		flat := flatten(r.Entries)
		flats = append(flats, flat)
		for _, f := range flat {
			ai, err := db.autoIncFor(ctx, f)
			if err != nil {
				db.forgetSession(savedVars, touched)
				return nil, err
			}
			s := db.setupSQL(f, ai)
			if s.use != "" {
				qs = append(qs, s.use)
				cn.curDB = f.e.Ctx.DB
			}
			qs = append(qs, s.set)
			for k := range s.changed {
				touched = append(touched, k)
			}
			s.commit(cn) // what the next statement's SET starts from
			qs = append(qs, f.stmt.SQL)
			stmtQ = append(stmtQ, len(qs)-1)
			if ai.col != "" {
				qs = append(qs, db.noteInsert(ai))
			}
		}
		qs = db.counterSQL(qs) // the record's end, as if applied alone
		clear(db.aiDirty)
	}
	rs, err := cn.execMulti(ctx, qs)
	ok := err == nil && len(rs) == len(qs)
	for _, q := range stmtQ {
		ok = ok && rs[q].Warnings == 0
	}
	if !ok {
		var me *mysql.MyError
		if err != nil && !errors.As(err, &me) {
			return nil, err // the session is gone; nothing was committed
		}
		if !cn.broken {
			if _, rerr := cn.exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				return nil, rerr
			}
		}
		db.forgetSession(savedVars, touched)
		clear(db.aiDirty)
		return nil, errNoPipeline
	}
	out := make([][][]command.Result, len(recs))
	flatRes := make([][]command.Result, 0, nEntries)
	hash := db.st.hash
	si := 0
	for ri, r := range recs {
		out[ri] = make([][]command.Result, len(r.Entries))
		for p, f := range flats[ri] {
			rr := rs[stmtQ[si]]
			si++
			res := command.Result{
				AffectedRows: rr.AffectedRows,
				LastInsertID: rr.InsertId,
				Status:       rr.Status &^ mysql.SERVER_STATUS_IN_TRANS,
				Info:         strings.Clone(rr.StatusMessage),
			}
			hash = foldHash(hash, r.Index, p, res, false)
			out[ri][f.ent] = append(out[ri][f.ent], res)
		}
		flatRes = append(flatRes, out[ri]...)
	}
	b, _ := json.Marshal(flatRes)
	q := fmt.Sprintf("UPDATE lockstep.applied SET idx=%d, hash='%s', part_idx=0, part_pos=0, part_hash='', results=%s WHERE id=1", last, hash, hexLiteral(b))
	if atCommit, err := db.recordProgress(ctx, q, true); err != nil {
		if !atCommit && !cn.broken {
			_, _ = cn.exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
		return nil, err
	}
	if err := db.committed(last, hash, b); err != nil {
		return nil, err
	}
	db.publish()
	return out, nil
}

// forgetSession marks the applier session's default database and the
// session variables in keys as unknown (a pipeline stopped part way, so the
// server may hold any of the values it sent).
func (db *DB) forgetSession(keys ...[]string) {
	cn := db.cn
	if cn == nil {
		return
	}
	cn.curDB = unknownSession
	for _, ks := range keys {
		for _, k := range ks {
			cn.vars[k] = unknownSession
		}
	}
	db.hwPending = ""
}

// splitResults cuts the results of a group's entries, in order, into
// per-record results.
func splitResults(recs []command.Record, flat [][]command.Result) [][][]command.Result {
	out := make([][][]command.Result, len(recs))
	i := 0
	for ri, r := range recs {
		out[ri] = flat[i : i+len(r.Entries)]
		i += len(r.Entries)
	}
	return out
}
