package localdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/lockstepdb/lockstep/command"
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
	if db.noPipeline() {
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

// pipelineBytes bounds the statement text sent in one round trip by the
// pipelined paths (records grouped, a transaction entry at once): far
// below any max_allowed_packet worth running with (MariaDB's default is
// 16 MB), which the proxy checks each statement against.
const pipelineBytes = 1 << 20

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
	nEntries, size := 0, 0
	for _, r := range recs {
		nEntries += len(r.Entries)
		for _, e := range r.Entries {
			for i := range e.Stmts {
				size += len(e.Stmts[i].SQL)
			}
		}
	}
	if size > pipelineBytes {
		// One multi-statement packet that large could pass the server's
		// max_allowed_packet: the records go one statement at a time.
		return nil, errNoPipeline
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
	var ais [][]autoInc
	for _, r := range recs {
		flat := flatten(r.Entries)
		flats = append(flats, flat)
		ai := make([]autoInc, len(flat))
		for i, f := range flat {
			var err error
			if ai[i], err = db.autoIncFor(ctx, f); err != nil {
				clear(db.aiKnown)
				return nil, err
			}
		}
		ais = append(ais, ai)
	}
	if err := db.loadPins(ctx, flats, ais); err != nil {
		clear(db.aiKnown)
		return nil, err
	}
	known := maps.Clone(db.aiKnown) // as it will be after each statement
	var predicted []predictedID
	var stmtQ []int // index in qs of each statement, records in order
	var touched []string
	qs := []string{"BEGIN"}
	for ri := range recs {
		for i, f := range flats[ri] {
			ai := ais[ri][i]
			fast := db.predictPin(f, &ai, known)
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
			switch {
			case fast:
				predicted = append(predicted, predictedID{q: len(qs) - 1, id: ai.pin})
				d := db.aiDirty[ai.key()]
				d.autoInc, d.hw = ai, max(d.hw, ai.pin+1)
				db.aiDirty[ai.key()] = d
			case ai.col != "":
				qs = append(qs, db.noteInsert(ai))
			}
		}
		qs = db.counterSQLKnown(qs, known) // the record's end, as if applied alone
		clear(db.aiDirty)
	}
	rs, err := cn.execMulti(ctx, qs)
	ok := err == nil && len(rs) == len(qs)
	for _, q := range stmtQ {
		ok = ok && rs[q].Warnings == 0
	}
	for _, p := range predicted {
		// The one row got the predicted id (else a later pin was wrong).
		ok = ok && rs[p.q].AffectedRows == 1 && rs[p.q].InsertId == p.id
	}
	if !ok {
		clear(db.aiKnown)
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
		clear(db.aiKnown)
		if !atCommit && !cn.broken {
			_, _ = cn.exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
		return nil, err
	}
	db.aiKnown = known
	db.predicted += uint64(len(predicted))
	if err := db.committed(last, hash, b); err != nil {
		return nil, err
	}
	db.publish()
	return out, nil
}

// predictedID is a one-row insert whose id the pipeline pinned in advance:
// statement q of the round trip must report exactly one row and id.
type predictedID struct {
	q  int
	id uint64
}

// loadPins reads, in one round trip, what predictPin needs of the tables
// the records insert one row into and that it does not know yet: whether
// the table has triggers and, for a table with an auto-increment column, the
// pin's value on committed state (autoInc.expr's base). A table that cannot
// be read (it does not exist) stays unknown: its statement gets the general
// pin and fails or succeeds as it would.
func (db *DB) loadPins(ctx context.Context, flats [][]flatStmt, ais [][]autoInc) error {
	var qs []string
	var tables []autoInc
	seen := map[string]bool{}
	for ri, flat := range flats {
		for i, f := range flat {
			ai := ais[ri][i]
			k := ai.key()
			if !f.stmt.InsertOne || ai.db == "" || seen[k] {
				continue
			}
			seen[k] = true
			trig, ok := db.aiTrig[k]
			if _, v := db.aiKnown[k]; ok && (trig || ai.col == "" || v) {
				continue
			}
			val := "0"
			if ai.col != "" {
				val = ai.base("0")
			}
			tables = append(tables, ai)
			qs = append(qs, fmt.Sprintf("SELECT %s, (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA=%s AND EVENT_OBJECT_TABLE=%s)",
				val, quoteString(ai.db), quoteString(ai.tbl)))
		}
	}
	if len(qs) == 0 {
		return nil
	}
	rs, err := db.cn.execMulti(ctx, qs)
	var me *mysql.MyError
	if err != nil && !errors.As(err, &me) {
		return err
	}
	for i, r := range rs {
		if r.Resultset == nil || r.RowNumber() != 1 {
			continue
		}
		v, err1 := r.GetUint(0, 0)
		trig, err2 := r.GetInt(0, 1)
		if err1 != nil || err2 != nil {
			continue
		}
		k := tables[i].key()
		db.aiTrig[k] = trig > 0
		if trig == 0 && tables[i].col != "" && v > 0 {
			db.aiKnown[k] = v
		}
	}
	return nil
}

// predictPin decides f's insert_id in advance when it can, and keeps known
// true to the state after f. A one-row insert into a trigger-free table
// changes only that table: with an auto-increment column whose value is
// known it gets a literal pin (true) and the table's next value is one past
// it. Any other statement may change any table (a trigger, an UPDATE of an
// id, a multi-row insert with explicit ids): nothing is known after it.
func (db *DB) predictPin(f flatStmt, ai *autoInc, known map[string]uint64) bool {
	k := ai.key()
	trig, ok := db.aiTrig[k]
	if !f.stmt.InsertOne || ai.db == "" || !ok || trig {
		clear(known)
		return false
	}
	v, ok := known[k]
	if ai.col == "" || !ok {
		return false
	}
	ai.pin = ai.align(v)
	known[k] = ai.pin + 1
	return true
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
