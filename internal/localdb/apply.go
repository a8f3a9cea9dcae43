package localdb

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/lockstepdb/lockstep/command"
)

// errRestart: the server rolled back the record's whole local transaction
// (deadlock, lock wait timeout); the record is re-run from its last recorded
// position.
var errRestart = errors.New("local transaction rolled back as a whole")

// errHook is returned by test hooks; it is not retried inside Apply.
type errHook struct{ err error }

func (e *errHook) Error() string { return "test hook: " + e.err.Error() }
func (e *errHook) Unwrap() error { return e.err }

// stmtError is a setup failure that becomes the statement's result.
type stmtError struct{ me *mysql.MyError }

func (e *stmtError) Error() string { return e.me.Error() }

// flatStmt is one statement of a record, numbered across its entries.
type flatStmt struct {
	ent  int
	e    *command.Entry
	stmt *command.Stmt
}

// flatten numbers the statements of a record's entries; a transaction or a
// lock operation is one unit.
func flatten(entries []*command.Entry) []flatStmt {
	var flat []flatStmt
	for i, e := range entries {
		if e.Kind == command.KindTransaction || e.Kind == command.KindLock {
			flat = append(flat, flatStmt{ent: i, e: e, stmt: &command.Stmt{}})
			continue
		}
		for j := range e.Stmts {
			flat = append(flat, flatStmt{ent: i, e: e, stmt: &e.Stmts[j]})
		}
	}
	return flat
}

// Apply executes the statements of the entries of the Raft log record at
// index, records index and the running outcome hash in the same local
// transaction, and returns one result per statement per entry. See the
// package documentation for the contract.
func (db *DB) Apply(ctx context.Context, index uint64, entries []*command.Entry) ([][]command.Result, error) {
	db.applyMu.Lock()
	defer db.applyMu.Unlock()
	if err := db.closedErr(); err != nil {
		return nil, err
	}
	return db.applyLocked(ctx, index, entries)
}

// closedErr is the error of Apply and ApplyGroup after Close.
func (db *DB) closedErr() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return errors.New("localdb: closed")
	}
	return nil
}

// applyLocked is Apply under applyMu.
func (db *DB) applyLocked(ctx context.Context, index uint64, entries []*command.Entry) ([][]command.Result, error) {
	if index <= db.st.idx && !db.reload {
		return db.alreadyApplied(index, len(entries))
	}
	flat := flatten(entries)
	if !db.noPipeline() && pipelinable(flat) {
		res, err := db.applyPipelined(ctx, []command.Record{{Index: index, Entries: entries}})
		if err == nil {
			return res[0], nil
		}
		if !errors.Is(err, errNoPipeline) {
			db.retryIndex = index
			db.reload = true
			return nil, fmt.Errorf("localdb: apply index %d: %w", index, err)
		}
	}
	db.wd.start.Store(time.Now().UnixNano())
	defer db.wd.start.Store(0)
	deadline := time.Now().Add(db.cfg.RetryFor)
	backoff := 50 * time.Millisecond
	restarts := 0
	for {
		if err := ctx.Err(); err != nil {
			db.retryIndex = index
			return nil, err
		}
		res, err := db.applyOnce(ctx, index, entries, flat)
		if err == nil {
			db.retryIndex = 0
			return res, nil
		}
		var hook *errHook
		switch {
		case errors.Is(err, errRestart) && restarts < db.cfg.MaxRestarts:
			restarts++
			// The server chose the applier as a deadlock victim (or its
			// wait timed out): every optimistic transaction that may hold
			// row locks goes, so the re-run does not meet the same holders
			// (every one from half of MaxRestarts on: a lock the proxy
			// does not know of, such as a metadata lock in a cycle).
			all := restarts > db.cfg.MaxRestarts/2
			if all {
				db.log.Warn("record re-run many times; aborting every open client transaction, readers included", "index", index, "attempt", restarts)
			}
			if err := db.releaseBlockers(ctx, true, all); err != nil {
				db.log.Warn("could not abort client transactions before re-running a record", "err", err)
			}
			if db.hooks != nil {
				db.hooks.OnRestart()
			}
			db.log.Warn("local transaction rolled back by the server; re-running the record", "index", index, "attempt", restarts)
			continue
		case errors.As(err, &hook), ctx.Err() != nil, time.Now().After(deadline):
			db.retryIndex = index
			db.reload = true
			return nil, fmt.Errorf("localdb: apply index %d: %w", index, err)
		}
		var ue *unavailableError
		if !errors.As(err, &ue) && !errors.Is(err, errRestart) {
			// A metadata statement failed with a server error: the local
			// database cannot record progress. Not retried here.
			db.retryIndex = index
			db.reload = true
			return nil, fmt.Errorf("localdb: apply index %d: %w", index, err)
		}
		db.log.Warn("local database unavailable during apply; reconnecting", "index", index, "err", err)
		db.reload = true
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// alreadyApplied answers an Apply of an index the database already recorded:
// a retry after a lost COMMIT acknowledgement gets the recorded results, a
// replay after restart gets (nil, nil).
func (db *DB) alreadyApplied(index uint64, n int) ([][]command.Result, error) {
	if index == db.st.idx && db.retryIndex == index && db.st.partIdx == 0 {
		db.retryIndex = 0
		return decodeResults(db.st.results, n)
	}
	return nil, nil
}

// ensureSession connects the applier session and reloads the recorded
// progress when the last attempt left it unknown.
func (db *DB) ensureSession(ctx context.Context) error {
	if db.reload || db.cn == nil || db.cn.broken {
		if err := db.connect(ctx); err != nil {
			return &unavailableError{err: err}
		}
		if err := db.loadProgress(ctx); err != nil {
			return err
		}
		db.forgetTables()
		db.hwPending = ""
		db.reload = false
	}
	return nil
}

func (db *DB) applyOnce(ctx context.Context, index uint64, entries []*command.Entry, flat []flatStmt) ([][]command.Result, error) {
	if err := db.ensureSession(ctx); err != nil {
		return nil, err
	}
	if index <= db.st.idx {
		// Found recorded after a reconnect: the COMMIT of an earlier
		// attempt of this very Apply (or of a failed one the caller now
		// retries) took effect but its acknowledgement was lost.
		if index == db.st.idx && db.st.partIdx == 0 {
			return decodeResults(db.st.results, len(entries))
		}
		return nil, nil
	}
	if db.st.partIdx != 0 && db.st.partIdx != index {
		return nil, fmt.Errorf("localdb: record %d is partially applied (up to statement %d); it must be applied before index %d", db.st.partIdx, db.st.partPos, index)
	}
	clear(db.aiDirty)
	clear(db.aiKnown) // statements of any kind follow: read the counters again after
	db.hwPending = ""
	results := make([][]command.Result, len(entries))
	start, hash := 0, db.st.hash
	if db.st.partIdx == index {
		var err error
		if results, err = decodeResults(db.st.results, len(entries)); err != nil {
			return nil, err
		}
		start, hash = db.st.partPos, db.st.partHash
	}
	cn := db.cn
	inTx := false
	rollback := func() {
		if inTx && !cn.broken {
			_, _ = cn.exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
		inTx = false
	}
	// commitPart records (index, p) as reached and commits what came before.
	commitPart := func(p int) error {
		if !inTx {
			return nil
		}
		b, _ := json.Marshal(results)
		q := fmt.Sprintf("UPDATE lockstep.applied SET part_idx=%d, part_pos=%d, part_hash='%s', results=%s WHERE id=1", index, p, hash, hexLiteral(b))
		if atCommit, err := db.recordProgress(ctx, q, true); err != nil {
			if !atCommit {
				rollback()
			}
			inTx = false
			return err
		}
		inTx = false
		db.st.partIdx, db.st.partPos, db.st.partHash, db.st.results = index, p, hash, b
		return nil
	}
	for p := start; p < len(flat); p++ {
		f := flat[p]
		if f.e.Kind != command.KindLock && f.e.Ctx.DB == "" && cn.curDB != "" {
			// No statement unselects the default database: record progress,
			// then start a fresh session.
			if err := commitPart(p); err != nil {
				return nil, err
			}
			if err := db.connect(ctx); err != nil {
				return nil, &unavailableError{err: err}
			}
			cn = db.cn
		}
		if f.stmt.DDL {
			if err := commitPart(p); err != nil {
				return nil, err
			}
			res, err := db.runDDL(ctx, index, p, f)
			if err != nil {
				return nil, err
			}
			hash = foldHash(hash, index, p, res, true)
			results[f.ent] = append(results[f.ent], res)
			if err := db.recordDDL(ctx, index, p, p == len(flat)-1, hash, results, f, res); err != nil {
				return nil, err
			}
			continue
		}
		var res command.Result
		var err error
		begin := !inTx
		if db.hwPending != "" && f.e.Kind != command.KindStatements {
			// The high-water mark of the statement before, taken before a
			// transaction or lock operation can change its table.
			if begin {
				if _, err := cn.exec(ctx, "BEGIN"); err != nil {
					return nil, err
				}
				begin, inTx = false, true
			}
			if _, err := cn.exec(ctx, db.hwPending); err != nil {
				rollback()
				return nil, err
			}
			db.hwPending = ""
		}
		if begin && f.e.Kind != command.KindStatements {
			if _, err := cn.exec(ctx, "BEGIN"); err != nil {
				return nil, err
			}
			begin = false
		}
		inTx = true
		switch f.e.Kind {
		case command.KindTransaction:
			res, err = db.applyTx(ctx, f)
		case command.KindLock:
			res, err = db.applyLock(ctx, f.e)
		default:
			if f.stmt.Call != nil {
				res, err = db.runCall(ctx, f, begin)
				break
			}
			res, err = db.runStmt(ctx, f, true, begin) // BEGIN in the same round trip
		}
		if err != nil {
			rollback()
			return nil, err
		}
		hash = foldHash(hash, index, p, res, false)
		results[f.ent] = append(results[f.ent], res)
	}
	if inTx || len(flat) == 0 || !flat[len(flat)-1].stmt.DDL {
		b, _ := json.Marshal(results)
		q := fmt.Sprintf("UPDATE lockstep.applied SET idx=%d, hash='%s', part_idx=0, part_pos=0, part_hash='', results=%s WHERE id=1", index, hash, hexLiteral(b))
		if atCommit, err := db.recordProgress(ctx, q, inTx); err != nil {
			if !atCommit {
				rollback()
			}
			return nil, err
		}
		inTx = false
		if err := db.committed(index, hash, b); err != nil {
			return nil, err
		}
	}
	db.publish()
	db.locksApplied(entries)
	return results, nil
}

// committed records in memory that the progress row now says index (with
// hash and results) is fully applied, after the crash-test hook.
func (db *DB) committed(index uint64, hash string, results []byte) error {
	if db.hooks != nil {
		if err := db.hooks.AfterCommit(); err != nil {
			return &errHook{err}
		}
	}
	db.st.idx, db.st.hash, db.st.results = index, hash, results
	db.st.partIdx, db.st.partPos, db.st.partHash = 0, 0, ""
	return nil
}

// runStmt sets up the session for f and executes it. Statement errors are
// returned in the Result; a Go error means the record cannot continue.
// begin prepends BEGIN (the record's local transaction starts with this
// statement): the session setup, the statement and the BEGIN go to the
// server in one round trip.
func (db *DB) runStmt(ctx context.Context, f flatStmt, inTx, begin bool) (command.Result, error) {
	cn := db.cn
	ai, err := db.autoIncFor(ctx, f)
	if err != nil {
		return command.Result{}, err
	}
	s := db.setupSQL(f, ai)
	var qs []string
	if begin {
		qs = append(qs, "BEGIN")
	}
	if db.hwPending != "" {
		// The previous statement's auto-increment high-water mark: it must
		// be taken before this statement can change the table.
		qs = append(qs, db.hwPending)
	}
	if s.use != "" {
		qs = append(qs, s.use)
	}
	qs = append(qs, s.set, f.stmt.SQL)
	var rs []*mysql.Result
	if f.stmt.LoadLocal {
		// The setup in one round trip, then the statement, which the
		// server answers by asking for the file.
		rs, err = cn.execMulti(ctx, qs[:len(qs)-1])
		if err == nil {
			var r *mysql.Result
			if r, err = cn.execLocalInfile(ctx, f.stmt.SQL, f.stmt.LocalData); err == nil {
				rs = append(rs, r)
			}
		}
	} else {
		rs, err = cn.execMulti(ctx, qs)
	}
	var me *mysql.MyError
	if err != nil && !errors.As(err, &me) {
		return command.Result{}, err
	}
	done := len(rs)       // statements of qs that succeeded
	prefix := len(qs) - 2 // BEGIN, the high-water mark, USE
	if s.use != "" {
		prefix--
	}
	if done < prefix {
		return command.Result{}, err // BEGIN or the high-water mark failed
	}
	db.hwPending = ""
	// qs ends with [USE,] SET, the statement.
	if s.use != "" {
		if done == len(qs)-3 {
			// Unknown database: the statement fails with USE's error, as
			// it would have in the client's session.
			return command.Result{Err: &command.Error{Code: me.Code, State: me.State, Message: me.Message}}, nil
		}
		cn.curDB = f.e.Ctx.DB
	}
	var r *mysql.Result
	switch {
	case done == len(qs)-2:
		// The SET failed: a bad value in the context. Set what can be set
		// one by one so the session state stays known, then run the
		// statement on its own.
		db.log.Warn("applier session setup failed", "err", me.Error())
		cn.vars = map[string]string{}
		if err := db.setupSlow(ctx, f, ai); err != nil {
			return command.Result{}, err
		}
		r, err = cn.exec(ctx, f.stmt.SQL)
	case done == len(qs):
		s.commit(cn)
		r = rs[len(rs)-1]
	default:
		s.commit(cn) // the SET took effect; the statement failed
	}
	if err != nil {
		if !errors.As(err, &me) {
			return command.Result{}, err
		}
		if me.Code == 1213 || me.Code == 1205 {
			// Deadlock or (row or metadata) lock wait timeout: caused by
			// another local session, not by the ordered history, so never
			// a result; the record is re-run.
			return command.Result{}, errRestart
		}
		if inTx {
			// Some errors roll back the whole transaction: detect it before
			// anything else runs in what would be autocommit mode.
			ok, err := cn.exec(ctx, "DO 0")
			if err != nil {
				return command.Result{}, err
			}
			if ok.Status&mysql.SERVER_STATUS_IN_TRANS == 0 {
				return command.Result{}, errRestart
			}
		}
		return command.Result{Err: &command.Error{Code: me.Code, State: me.State, Message: me.Message}}, nil
	}
	res := command.Result{
		AffectedRows: r.AffectedRows,
		LastInsertID: r.InsertId,
		Status:       r.Status &^ mysql.SERVER_STATUS_IN_TRANS,
		// The client's info string aliases a pooled read buffer: copy it
		// before the next read.
		Info: strings.Clone(r.StatusMessage),
	}
	if r.Warnings > 0 {
		if res.Warnings, err = showWarnings(ctx, cn); err != nil {
			return command.Result{}, err
		}
	}
	if ai.col != "" {
		// The counter row is brought up to date once per table at the end
		// of the local transaction (recordProgress); until then the
		// table's high-water mark is kept in a session variable, taken
		// right after the statement (before the next one runs).
		db.hwPending = db.noteInsert(ai)
	}
	return res, nil
}

// noteInsert marks ai's table as inserted into by a statement of the
// current record and returns the SET that records its high-water mark
// (MAX(col)+1, kept in a session variable: the pins of later inserts of the
// record include it, so an id a later statement deleted is not given out
// again). Server-side, so a record applied in one round trip (pipeline.go)
// and one applied statement by statement compute the same ids.
func (db *DB) noteInsert(ai autoInc) string {
	k := ai.key()
	d, seen := db.aiDirty[k]
	d.autoInc = ai
	v := db.hwVarFor(k)
	prev := "0"
	if seen && d.serverHW {
		prev = "COALESCE(" + v + ",0)"
	}
	d.serverHW = true
	db.aiDirty[k] = d
	return fmt.Sprintf("SET %s = GREATEST(%s, COALESCE((SELECT MAX(%s) FROM %s.%s),0)+1)", v, prev, quoteIdent(ai.col), quoteIdent(ai.db), quoteIdent(ai.tbl))
}

// hwVarFor names the session variable holding a table's high-water mark.
func (db *DB) hwVarFor(key string) string {
	v, ok := db.hwVars[key]
	if !ok {
		v = fmt.Sprintf("@lockstep_hw%d", len(db.hwVars))
		db.hwVars[key] = v
	}
	return v
}

// dirtyAutoInc is a table the current local transaction inserted into.
type dirtyAutoInc struct {
	autoInc
	hw uint64 // one past the highest id a transaction entry generated (its LAST_INSERT_ID)
	// serverHW: a statement entry inserted; its high-water mark is in the
	// session variable hwVarFor(key).
	serverHW bool
}

// hwExpr is the SQL of d's high-water marks for a pin.
func (db *DB) hwExpr(key string) string {
	d := db.aiDirty[key]
	if !d.serverHW {
		return strconv.FormatUint(d.hw, 10)
	}
	return fmt.Sprintf("GREATEST(%d, COALESCE(%s,0))", d.hw, db.hwVarFor(key))
}

// forgetTables drops what the applier knows of tables (auto-increment
// columns, triggers, counters) after the schema may have changed.
func (db *DB) forgetTables() {
	db.aiCols = map[string]string{}
	db.aiTrig = map[string]bool{}
	clear(db.aiKnown)
}

// recordProgress ends a stretch of the record's local transaction in one
// round trip: the auto-increment counters of the tables inserted into
// since the last flush (counterSQL), update (the lockstep.applied row) and,
// with commit, COMMIT.
// atCommit reports that the error came from the COMMIT itself (the server
// then ended the transaction).
func (db *DB) recordProgress(ctx context.Context, update string, commit bool) (atCommit bool, err error) {
	qs := db.counterSQL(make([]string, 0, len(db.aiDirty)+3))
	qs = append(qs, update)
	if commit {
		qs = append(qs, "COMMIT")
	}
	rs, err := db.cn.execMulti(ctx, qs)
	if err != nil {
		return commit && len(rs) == len(qs)-1, err
	}
	clear(db.aiDirty)
	db.hwPending = ""
	return false, nil
}

// counterSQL appends the statements that bring the auto-increment counters
// of the tables inserted into (aiDirty) up to date, after the pending
// high-water mark, in a fixed order: next = max(next, MAX(col)+1, the
// high-water marks).
func (db *DB) counterSQL(qs []string) []string {
	return db.counterSQLKnown(qs, nil)
}

// counterSQLKnown is counterSQL where known (pipeline.go) holds the exact
// next value of some tables: their counter row gets it as a literal.
func (db *DB) counterSQLKnown(qs []string, known map[string]uint64) []string {
	if db.hwPending != "" {
		qs = append(qs, db.hwPending)
	}
	keys := make([]string, 0, len(db.aiDirty))
	for k := range db.aiDirty {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d := db.aiDirty[k]
		if v, ok := known[k]; ok {
			qs = append(qs, fmt.Sprintf("INSERT INTO lockstep.autoinc (db, tbl, next) VALUES (%s, %s, %d) ON DUPLICATE KEY UPDATE next=GREATEST(next, VALUES(next))",
				quoteString(d.db), quoteString(d.tbl), v))
			continue
		}
		qs = append(qs, fmt.Sprintf("INSERT INTO lockstep.autoinc (db, tbl, next) SELECT %s, %s, GREATEST(COALESCE(MAX(%s),0)+1, %s) FROM %s.%s ON DUPLICATE KEY UPDATE next=GREATEST(next, VALUES(next))",
			quoteString(d.db), quoteString(d.tbl), quoteIdent(d.col), db.hwExpr(k), quoteIdent(d.db), quoteIdent(d.tbl)))
	}
	return qs
}

func showWarnings(ctx context.Context, cn *conn) ([]command.Warning, error) {
	r, err := cn.exec(ctx, "SHOW WARNINGS")
	if err != nil {
		return nil, err
	}
	var ws []command.Warning
	if r.Resultset == nil {
		return nil, nil
	}
	for i := 0; i < r.RowNumber(); i++ {
		lvl, _ := r.GetString(i, 0)
		code, _ := r.GetUint(i, 1)
		msg, _ := r.GetString(i, 2)
		ws = append(ws, command.Warning{Level: lvl, Code: uint16(code), Message: msg})
	}
	return ws, nil
}

// validVarName reports whether s is a plain system variable name
// ([A-Za-z_][A-Za-z0-9_]*). A loop, not a regexp: it runs for every
// session variable of every applied statement (a regexp was 10% of a
// leader's CPU under insert load).
func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// managedVars are session variables the applier sets itself; Ctx.Vars
// entries for them are ignored.
var managedVars = map[string]bool{
	"autocommit": true, "timestamp": true, "insert_id": true, "last_insert_id": true,
	"rand_seed1": true, "rand_seed2": true, "identity": true,
}

// sessionSetup is the SQL that brings the applier session to a
// statement's context: use (USE db, or "" when the session is there) and
// set (one SET of the pins, user variables and changed session
// variables). commit records in the session cache what set changed, once
// the server took it.
type sessionSetup struct {
	use, set string
	changed  map[string]string
	reset    []string
}

func (s sessionSetup) commit(cn *conn) {
	for k, v := range s.changed {
		cn.vars[k] = v
	}
	for _, k := range s.reset {
		delete(cn.vars, k)
	}
}

// setupSQL builds the session setup for f (see sessionSetup).
func (db *DB) setupSQL(f flatStmt, ai autoInc) sessionSetup {
	cn := db.cn
	c := &f.e.Ctx
	var s sessionSetup
	if c.DB != "" && c.DB != cn.curDB {
		s.use = "USE " + quoteIdent(c.DB)
	}
	var b strings.Builder
	b.WriteString("SET ")
	ts := f.e.Pinned.TimestampMicros
	if ts > 0 {
		fmt.Fprintf(&b, "timestamp=%d.%06d", ts/1e6, ts%1e6)
	} else {
		b.WriteString("timestamp=DEFAULT")
	}
	if f.stmt.UsesRand {
		fmt.Fprintf(&b, ", rand_seed1=%d, rand_seed2=%d", f.e.Pinned.RandSeed1, f.e.Pinned.RandSeed2)
	}
	fmt.Fprintf(&b, ", last_insert_id=%d", c.LastInsertID)
	switch {
	case ai.pin != 0:
		fmt.Fprintf(&b, ", insert_id=%d", ai.pin)
	case ai.col != "":
		fmt.Fprintf(&b, ", insert_id=%s", ai.expr(db.hwExpr(ai.key())))
	}
	for name, lit := range c.UserVars {
		fmt.Fprintf(&b, ", @%s=%s", quoteIdent(name), lit)
	}
	for name, lit := range c.Vars {
		lname := strings.ToLower(name)
		if !validVarName(name) || managedVars[lname] {
			continue
		}
		if cn.vars[lname] == lit {
			continue
		}
		fmt.Fprintf(&b, ", SESSION %s=%s", lname, lit)
		if s.changed == nil {
			s.changed = map[string]string{}
		}
		s.changed[lname] = lit
	}
	for lname := range cn.vars {
		if _, ok := lookupFold(c.Vars, lname); !ok {
			fmt.Fprintf(&b, ", SESSION %s=DEFAULT", lname)
			s.reset = append(s.reset, lname)
		}
	}
	s.set = b.String()
	return s
}

// setup brings the session to f's context in at most two round trips
// (USE, SET).
func (db *DB) setup(ctx context.Context, f flatStmt, ai autoInc) error {
	cn := db.cn
	s := db.setupSQL(f, ai)
	if s.use != "" {
		if _, err := cn.exec(ctx, s.use); err != nil {
			var me *mysql.MyError
			if !errors.As(err, &me) {
				return err
			}
			// Unknown database: the statement fails with USE's error, as
			// it would have in the client's session.
			return &stmtError{me}
		}
		cn.curDB = f.e.Ctx.DB
	}
	if _, err := cn.exec(ctx, s.set); err != nil {
		var me *mysql.MyError
		if !errors.As(err, &me) {
			return err
		}
		// A bad value in the context: set what can be set one by one so the
		// session state stays known, then let the statement run.
		db.log.Warn("applier session setup failed", "err", me.Error())
		cn.vars = map[string]string{}
		return db.setupSlow(ctx, f, ai)
	}
	s.commit(cn)
	return nil
}

// setupSlow is setup's fallback when the combined SET failed: every
// assignment separately, errors ignored (each node ignores the same ones).
func (db *DB) setupSlow(ctx context.Context, f flatStmt, ai autoInc) error {
	cn := db.cn
	c := &f.e.Ctx
	var qs []string
	ts := f.e.Pinned.TimestampMicros
	qs = append(qs, fmt.Sprintf("SET timestamp=%d.%06d", ts/1e6, ts%1e6))
	if f.stmt.UsesRand {
		qs = append(qs, fmt.Sprintf("SET rand_seed1=%d, rand_seed2=%d", f.e.Pinned.RandSeed1, f.e.Pinned.RandSeed2))
	}
	qs = append(qs, fmt.Sprintf("SET last_insert_id=%d", c.LastInsertID))
	if ai.col != "" {
		qs = append(qs, "SET insert_id="+ai.expr(db.hwExpr(ai.key())))
	}
	for name, lit := range c.UserVars {
		qs = append(qs, fmt.Sprintf("SET @%s=%s", quoteIdent(name), lit))
	}
	// Every variable the session may have changed goes back to its default
	// first, so that a rejected value leaves a known state.
	for name, lit := range c.Vars {
		lname := strings.ToLower(name)
		if !validVarName(name) || managedVars[lname] {
			continue
		}
		qs = append(qs, fmt.Sprintf("SET SESSION %s=DEFAULT", lname), fmt.Sprintf("SET SESSION %s=%s", lname, lit))
	}
	for _, q := range qs {
		if _, err := cn.exec(ctx, q); err != nil {
			var me *mysql.MyError
			if !errors.As(err, &me) {
				return err
			}
		}
	}
	// The cache is unknown now: force a full SET next time.
	cn.vars = map[string]string{}
	for name := range c.Vars {
		lname := strings.ToLower(name)
		if validVarName(name) && !managedVars[lname] {
			cn.vars[lname] = "\x00unknown"
		}
	}
	return nil
}

func lookupFold(m map[string]string, k string) (string, bool) {
	if v, ok := m[k]; ok {
		return v, true
	}
	for name, v := range m {
		if strings.EqualFold(name, k) {
			return v, true
		}
	}
	return "", false
}

// autoInc describes the insert_id pin for one INSERT: its table and, when
// col is set, the auto-increment column.
type autoInc struct {
	db, tbl, col string
	inc, off     uint64
	// pin, when not 0, is the insert_id itself, known in advance
	// (pipeline.go): the value expr would give.
	pin uint64
}

// align is the first id at or after b that auto_increment_increment and
// _offset allow (expr's alignment, in Go).
func (a autoInc) align(b uint64) uint64 {
	if a.inc <= 1 {
		return b
	}
	if b <= a.off {
		return a.off
	}
	return a.off + ((b-a.off+a.inc-1)/a.inc)*a.inc
}

func (a autoInc) key() string { return a.db + "\x00" + a.tbl }

// expr is the SQL expression of the pinned insert_id: the next value after
// the replicated counter, the table's current maximum, and ids generated
// earlier in the same local transaction (hw), aligned to
// auto_increment_increment/offset.
func (a autoInc) expr(hw string) string {
	base := a.base(hw)
	if a.inc <= 1 {
		return "(SELECT " + base + ")"
	}
	return fmt.Sprintf("(SELECT IF(b<=%[2]d, %[2]d, %[2]d+((b-%[2]d+%[1]d-1) DIV %[1]d)*%[1]d) FROM (SELECT %[3]s AS b) AS lockstep_ai)", a.inc, a.off, base)
}

// base is expr before alignment: the greatest of the replicated counter,
// MAX(col)+1 and hw.
func (a autoInc) base(hw string) string {
	return fmt.Sprintf("GREATEST(COALESCE((SELECT next FROM lockstep.autoinc WHERE db=%s AND tbl=%s),1), COALESCE((SELECT MAX(%s) FROM %s.%s),0)+1, %s)",
		quoteString(a.db), quoteString(a.tbl), quoteIdent(a.col), quoteIdent(a.db), quoteIdent(a.tbl), hw)
}

// autoIncFor resolves the table f inserts into and, when it has an
// AUTO_INCREMENT column, how to pin insert_id.
func (db *DB) autoIncFor(ctx context.Context, f flatStmt) (autoInc, error) {
	t := f.stmt.InsertTable
	if t == "" {
		return autoInc{}, nil
	}
	var a autoInc
	if i := splitQualified(t); i >= 0 {
		a.db, a.tbl = unquote(t[:i]), unquote(t[i+1:])
	} else {
		a.db, a.tbl = f.e.Ctx.DB, unquote(t)
	}
	if a.db == "" {
		return autoInc{}, nil
	}
	key := a.key()
	col, ok := db.aiCols[key]
	if !ok {
		q := fmt.Sprintf("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s AND EXTRA LIKE '%%auto_increment%%'", quoteString(a.db), quoteString(a.tbl))
		r, err := db.cn.exec(ctx, q)
		if err != nil {
			return autoInc{}, err
		}
		if r.Resultset != nil && r.RowNumber() > 0 {
			col, _ = r.GetString(0, 0)
		}
		db.aiCols[key] = col
	}
	if col == "" {
		return a, nil // the table, without an auto-increment column
	}
	a.col = col
	a.inc, a.off = 1, 1
	if v, ok := lookupFold(f.e.Ctx.Vars, "auto_increment_increment"); ok {
		if n, err := strconv.ParseUint(strings.Trim(v, "'"), 10, 64); err == nil && n > 0 {
			a.inc = n
		}
	}
	if v, ok := lookupFold(f.e.Ctx.Vars, "auto_increment_offset"); ok {
		if n, err := strconv.ParseUint(strings.Trim(v, "'"), 10, 64); err == nil && n > 0 {
			a.off = n
		}
	}
	if a.off > a.inc {
		a.off = 1 // MariaDB ignores an offset larger than the increment
	}
	return a, nil
}

// splitQualified returns the index of the dot separating db and table in a
// possibly backquoted name, or -1.
func splitQualified(s string) int {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '`':
			inQuote = !inQuote
		case '.':
			if !inQuote {
				return i
			}
		}
	}
	return -1
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '`' && s[len(s)-1] == '`' {
		return strings.ReplaceAll(s[1:len(s)-1], "``", "`")
	}
	return s
}

// foldHash chains one statement outcome into the running outcome hash:
// h = sha256(h || index || pos || error code || affected rows || last insert id).
// DDL folds only its error code: its counts are not recoverable when a
// crash hides whether it ran (see the DDL exactly-once rule).
func foldHash(prev string, index uint64, pos int, r command.Result, ddl bool) string {
	h := sha256.New()
	pb, err := hex.DecodeString(prev)
	if err != nil || len(pb) != sha256.Size {
		pb = make([]byte, sha256.Size)
	}
	h.Write(pb)
	var buf [8 + 4 + 2 + 8 + 8]byte
	binary.BigEndian.PutUint64(buf[0:], index)
	binary.BigEndian.PutUint32(buf[8:], uint32(pos))
	if r.Err != nil {
		binary.BigEndian.PutUint16(buf[12:], r.Err.Code)
	}
	if !ddl && r.Err == nil {
		binary.BigEndian.PutUint64(buf[14:], r.AffectedRows)
		binary.BigEndian.PutUint64(buf[22:], r.LastInsertID)
	}
	h.Write(buf[:])
	return hex.EncodeToString(h.Sum(nil))
}
