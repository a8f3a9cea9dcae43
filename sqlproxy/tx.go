package sqlproxy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// AutoIncs tells the origin which insert id the applier would pin for the
// next insert into a table, from this node's applied state (the replicated
// counter and the table's committed maximum). Optional: without it the
// origin lets the local server choose, and inserting transactions conflict
// more often. Called concurrently from sessions.
type AutoIncs interface {
	// NextInsertID returns the table's AUTO_INCREMENT column ("" when it
	// has none) and the next id the applier's rule gives.
	NextInsertID(ctx context.Context, db, table string) (column string, next uint64, err error)
}

// optimisticTx is a session's open explicit transaction: it runs
// optimistically on the session's backend connection while every statement
// and what the client saw of it is recorded in entry. It owns that record:
// the statements and their outcomes (record), the size limits (fits,
// tooLarge), the starting values of the user variables the statements
// reference (newVars, addVars), the insert ids it used (insertGuess,
// noteInsert), and the ordering of the entry at commit (order). The session
// runs the statements on its backend connection and passes in what a step
// needs from it. Only the session goroutine touches it; the applier's
// watchdog sees the session's txWatch instead.
type optimisticTx struct {
	entry    *command.Entry
	maxStmts int // Config.MaxTxStatements
	maxBytes int // Config.MaxTxBytes
	bytes    int
	writes   bool              // a write succeeded: the transaction must be ordered
	overflow bool              // the size limit was passed while read-only: no write may follow
	called   bool              // a read-only CALL ran unrecorded (localCall): no write may follow
	vars     map[string]bool   // user variables whose starting value is in entry.Ctx.UserVars
	aiNext   map[string]uint64 // "db\x00tbl" -> one past the highest id this transaction inserted
}

// newOptimisticTx starts the record of a transaction of the account user in
// the session context c (LastInsertID included), with its statement time
// (now) and RAND() seeds pinned, and the given size limits.
func newOptimisticTx(user string, c command.Context, now time.Time, maxStmts, maxBytes int) *optimisticTx {
	var seeds [8]byte
	_, _ = rand.Read(seeds[:])
	e := &command.Entry{
		Kind: command.KindTransaction,
		User: user,
		Ctx:  c,
		Pinned: command.Pinned{TimestampMicros: now.UnixMicro(),
			RandSeed1: binary.LittleEndian.Uint32(seeds[:4]) & 0x3fffffff,
			RandSeed2: binary.LittleEndian.Uint32(seeds[4:]) & 0x3fffffff},
	}
	return &optimisticTx{entry: e, maxStmts: maxStmts, maxBytes: maxBytes,
		vars: map[string]bool{}, aiNext: map[string]uint64{}}
}

// pinning is the SET that pins the transaction's statement time, RAND()
// seeds and starting LAST_INSERT_ID() on the backend session, as the
// applier re-executes it.
func (tx *optimisticTx) pinning() string {
	e := tx.entry
	ts := e.Pinned.TimestampMicros
	return fmt.Sprintf("SET timestamp=%d.%06d, rand_seed1=%d, rand_seed2=%d, last_insert_id=%d",
		ts/1e6, ts%1e6, e.Pinned.RandSeed1, e.Pinned.RandSeed2, e.Ctx.LastInsertID)
}

// fits checks the size limits before st runs and is recorded. Passing them
// in a transaction that wrote, or with a write, does not fit (false: the
// transaction must be rolled back, tooLarge); passing them while read-only
// so far only sets overflow: fine unless a write follows.
func (tx *optimisticTx) fits(st classify.Statement) bool {
	if len(tx.entry.Stmts)+1 > tx.maxStmts || tx.bytes+len(st.SQL) > tx.maxBytes {
		if tx.writes || st.Class == classify.Write {
			return false
		}
		tx.overflow = true
	}
	return true
}

// tooLarge is the client's error (1197) for a transaction past the size
// limits.
func (tx *optimisticTx) tooLarge() *mysql.MyError {
	return errTxTooLarge(fmt.Sprintf("%d statements or %d bytes", tx.maxStmts, tx.maxBytes), tx.maxStmts)
}

// newVars returns the user variables of names whose starting value the
// record does not hold yet (nil when there are none).
func (tx *optimisticTx) newVars(names []string) []string {
	var fresh []string
	for _, v := range names {
		if !tx.vars[v] {
			fresh = append(fresh, v)
		}
	}
	return fresh
}

// addVars records the starting values uv (SQL literals) of the user
// variables fresh, read from the backend session before the statement that
// first references them ran.
func (tx *optimisticTx) addVars(fresh []string, uv map[string]string) {
	if tx.entry.Ctx.UserVars == nil {
		tx.entry.Ctx.UserVars = map[string]string{}
	}
	for _, v := range fresh {
		tx.vars[v] = true
		tx.entry.Ctx.UserVars[v] = uv[v]
	}
}

// txFate is what a statement's outcome did to the transaction (record).
type txFate int

const (
	txGoesOn     txFate = iota // the transaction stays open
	txKilled                   // the applier aborted it while the statement ran: roll back and end it
	txRolledBack               // InnoDB rolled it back (a local deadlock, 1213): end it
)

// record records rec with the outcome out the client saw of it (killed: an
// error arrived after the applier aborted the transaction, capture.killed),
// and reports what the outcome did to the transaction. Not recorded: an
// outcome that ends the transaction, an error that depends on no data
// (txUnrecorded), and anything after the size limit was passed (overflow:
// the record is never ordered).
func (tx *optimisticTx) record(rec command.Stmt, out command.Outcome, killed bool) txFate {
	switch {
	case killed:
		return txKilled
	case out.ErrCode == 1213:
		return txRolledBack
	case txUnrecorded[out.ErrCode], tx.overflow:
		return txGoesOn
	}
	rec.Expect = &out
	tx.entry.Stmts = append(tx.entry.Stmts, rec)
	tx.bytes += len(rec.SQL)
	if out.ErrCode == 0 && !rec.Read && !rec.Session && rec.SQL != "" && isWriteRec(rec) {
		tx.writes = true
	}
	return txGoesOn
}

// insertGuess is the insert id to start from for the next insert into the
// table of key ("db\x00tbl"): next, the applier's rule on applied state, or
// past the ids this transaction inserted there.
func (tx *optimisticTx) insertGuess(key string, next uint64) uint64 {
	return max(next, tx.aiNext[key])
}

// noteInsert records the ids the last recorded statement, an insert into
// the table of key, inserted.
func (tx *optimisticTx) noteInsert(key string) {
	if len(tx.entry.Stmts) == 0 {
		return
	}
	if x := tx.entry.Stmts[len(tx.entry.Stmts)-1].Expect; x != nil && x.ErrCode == 0 && x.LastInsertID > 0 {
		tx.aiNext[key] = max(tx.aiNext[key], x.LastInsertID+max(x.AffectedRows, 1))
	}
}

// order submits the record, of a transaction that wrote and is already over
// on the backend session, to o as one entry and returns the client's error:
// nil when the applier committed it, its decision (1213) otherwise, or why
// the outcome is not known. log names the session.
func (tx *optimisticTx) order(ctx context.Context, o Orderer, log *slog.Logger) *mysql.MyError {
	e := tx.entry
	res, err := o.Submit(ctx, e)
	if err != nil {
		if !errors.Is(err, command.ErrNoLeader) {
			log.Warn("transaction not confirmed", "entry", e.ID.String(), "statements", len(e.Stmts), "err", err)
		}
		return toMyError(err)
	}
	if len(res) == 0 {
		return errTxNoResult
	}
	if r := res[0]; r.Err != nil {
		return commandError(r.Err)
	}
	return nil
}

// txSettable are the session variables a transaction may set: those every
// entry carries in its context (so the applier restores them afterwards).
var txSettable = func() map[string]bool {
	m := map[string]bool{"names": true, "character set": true, "charset": true}
	for _, v := range replicatedVars {
		m[v] = true
	}
	return m
}()

// txUnrecorded are errors a statement may raise at the origin without
// depending on the data: the statement had no effect, and the applier (which
// runs with its own privileges) would not reproduce them, so it is not
// recorded. 1205 (lock wait timeout) is a local artefact.
var txUnrecorded = map[uint16]bool{
	1064: true, 1205: true, 1142: true, 1143: true, 1044: true, 1227: true, 1370: true, 1290: true,
}

// inTx runs a non-transaction-control statement inside the open transaction.
func (s *session) inTx(st classify.Statement, now time.Time, last bool) (bool, error) {
	if s.aborted() {
		return false, s.writeErr(errAborted)
	}
	s.txw.noteLocks(st, s.serializable)
	switch st.Class {
	case classify.Read:
		return s.txRead(st, last)
	case classify.Write:
		return s.txWrite(st, last)
	case classify.Session:
		return s.txSession(st, last)
	case classify.DDL:
		// DDL commits the transaction implicitly, then runs on its own.
		if me, err := s.commitTx(); err != nil {
			return false, err
		} else if me != nil {
			return false, s.writeErr(me)
		}
		return s.write(st, now, last)
	case classify.Local:
		if st.Kind != "KILL" {
			// FLUSH, ANALYZE, OPTIMIZE ... commit implicitly in MySQL.
			if me, err := s.commitTx(); err != nil {
				return false, err
			} else if me != nil {
				return false, s.writeErr(me)
			}
		}
		if err := s.sendBackend(append([]byte{mysql.COM_QUERY}, st.SQL...)); err != nil {
			return false, err
		}
		return s.relayResponse(respGeneric, last)
	case classify.Refused:
		return s.refuse(st)
	}
	return false, s.writeErr(errUnclassified)
}

// aborted reports (and cleans up) a transaction the applier aborted because
// it held locks a replicated write needed.
func (s *session) aborted() bool {
	if s.tx == nil || !s.txw.abortReq.Load() {
		return false
	}
	_ = s.be.exec("ROLLBACK")
	s.endTx()
	return true
}

// beginTx starts an optimistic transaction: it pins the statement time and
// RAND() seeds for the whole transaction on the backend session (the
// applier re-executes with the same), then runs begin ("" when the backend
// opens the transaction implicitly, autocommit=0).
func (s *session) beginTx(begin string) (*mysql.MyError, error) {
	split := func(err error) (*mysql.MyError, error) {
		if me, ok := stmtError(err); ok {
			return me, nil
		}
		return nil, err
	}
	if err := s.refreshContext(); err != nil {
		return split(err)
	}
	var lastID uint64
	if s.sctx.lastIDKnown {
		lastID = s.sctx.lastID
	} else {
		id, _, err := s.be.fetchSessionValues(nil)
		if err != nil {
			return split(err)
		}
		lastID = id
	}
	tx := newOptimisticTx(s.currentUser, command.Context{DB: s.sctx.db, Vars: s.sctx.vars, LastInsertID: lastID},
		s.srv.now(), s.srv.cfg.MaxTxStatements, s.srv.cfg.MaxTxBytes)
	s.sctx.lastIDPending = false
	if err := s.be.exec(tx.pinning()); err != nil {
		return split(err)
	}
	s.tsPinned = true
	if begin != "" {
		if err := s.be.exec(begin); err != nil {
			return split(err)
		}
	}
	s.tx = tx
	s.txw.begin(s.serializable)
	s.sctx.lastIDKnown = false
	return nil, nil
}

// noteLocks records that st may take row locks in the open transaction
// (serializable: the session may run at SERIALIZABLE, where plain reads
// lock).
func (w *txWatch) noteLocks(st classify.Statement, serializable bool) {
	if st.Class == classify.Write || st.Locking || serializable {
		w.rowLocks.Store(true)
	}
}

// doomTx ends a transaction the applier aborted during a run the client
// does not see (captureErr): the backend's is rolled back and the applier
// no longer waits for it, but the session keeps it, marked aborted, until
// the client hears of it: its next statement or COMMIT gets 1213
// (session.aborted, commitTx).
func (s *session) doomTx() {
	_ = s.be.exec("ROLLBACK")
	s.txw.abortReq.Store(true)
	s.txw.rowLocks.Store(false)
	s.txw.optimistic.Store(false)
	s.srv.txEnd()
}

// endTx forgets the transaction (the backend's is already over).
func (s *session) endTx() {
	s.tx = nil
	s.txw.optimistic.Store(false)
	s.srv.txEnd()
	s.txw.rowLocks.Store(false)
	s.txw.abortReq.Store(false)
	s.sctx.lastIDKnown = false
}

// commitTx ends the open transaction: a read-only one commits locally; one
// that wrote is rolled back locally and ordered as one entry, and its
// result decides. me is the error for the client (1213 when the
// transaction was rolled back).
func (s *session) commitTx() (*mysql.MyError, error) {
	tx := s.tx
	if tx == nil {
		return nil, nil
	}
	aborted := s.txw.abortReq.Load()
	if !tx.writes && !aborted {
		err := s.be.exec("COMMIT")
		s.endTx()
		if me, ok := stmtError(err); ok {
			return me, nil
		}
		return nil, err
	}
	err := s.be.exec("ROLLBACK")
	s.endTx()
	if _, ok := stmtError(err); err != nil && !ok {
		return nil, err
	}
	if aborted {
		return errAborted, nil
	}
	if tx.overflow {
		return tx.tooLarge(), nil
	}
	if err := s.srv.admit(true); err != nil {
		return toMyError(err), nil
	}
	ctx, cancel := context.WithTimeout(s.srv.ctx, s.srv.cfg.WriteTimeout)
	defer cancel()
	me := tx.order(ctx, s.srv.deps.Orderer, s.log)
	if me == nil {
		s.srv.commits.Add(1)
	}
	return me, nil
}

// txControl runs BEGIN, COMMIT, ROLLBACK, savepoints and autocommit
// switches, with or without an open transaction.
func (s *session) txControl(st classify.Statement, last bool) (bool, error) {
	ok := func() (bool, error) { return true, s.writeOK(last) }
	fail := func(me *mysql.MyError, err error) (bool, error) {
		if err != nil {
			return false, err
		}
		return false, s.writeErr(me)
	}
	n := normalize(st.SQL)
	switch st.Tx {
	case classify.XA:
		return false, s.writeErr(errXA)
	case classify.LockTables:
		return false, s.writeErr(errLockTables)
	case classify.UnlockTables, classify.TxNone:
		return ok()
	case classify.Rollback:
		if s.tx != nil {
			err := s.be.exec("ROLLBACK")
			s.endTx()
			if _, isStmt := stmtError(err); err != nil && !isStmt {
				return false, err
			}
		}
		if strings.Contains(n, " release") && !strings.Contains(n, "no release") {
			_ = s.writeOK(last)
			_ = s.cl.flush()
			return false, errReleased
		}
		if strings.Contains(n, " chain") && !strings.Contains(n, "no chain") {
			if me, err := s.beginTx("BEGIN"); me != nil || err != nil {
				return fail(me, err)
			}
		}
		return ok()
	case classify.Commit, classify.Begin:
		if s.aborted() {
			return false, s.writeErr(errAborted)
		}
		if me, err := s.commitTx(); me != nil || err != nil {
			return fail(me, err)
		}
		if st.Tx == classify.Commit && strings.Contains(n, " release") && !strings.Contains(n, "no release") {
			_ = s.writeOK(last)
			_ = s.cl.flush()
			return false, errReleased
		}
		begin := ""
		switch {
		case st.Tx == classify.Begin:
			begin = st.SQL
		case strings.Contains(n, " chain") && !strings.Contains(n, "no chain"):
			begin = "BEGIN"
		default:
			return ok()
		}
		if err := s.srv.admit(false); err != nil {
			return false, s.sendErr(err, last)
		}
		if me, err := s.beginTx(begin); me != nil || err != nil {
			return fail(me, err)
		}
		return ok()
	case classify.SetAutocommit0:
		if err := s.be.exec("SET autocommit=0"); err != nil {
			return fail(stmtErrorOr(err))
		}
		s.autocommit = false
		return ok()
	case classify.SetAutocommit1:
		if s.aborted() {
			return false, s.writeErr(errAborted)
		}
		if me, err := s.commitTx(); me != nil || err != nil {
			return fail(me, err)
		}
		if err := s.be.exec("SET autocommit=1"); err != nil {
			return fail(stmtErrorOr(err))
		}
		s.autocommit = true
		return ok()
	case classify.Savepoint, classify.Release, classify.RollbackTo:
		if strings.Contains(n, "lockstep_") {
			return false, s.writeErr(errReservedSavepoint)
		}
		if s.tx == nil && !s.autocommit {
			if me, err := s.beginTx(""); me != nil || err != nil {
				return fail(me, err)
			}
		}
		if s.tx == nil {
			// Outside a transaction: the backend answers (a savepoint
			// there is gone at once; ROLLBACK TO one is error 1305).
			if err := s.sendBackend(append([]byte{mysql.COM_QUERY}, st.SQL...)); err != nil {
				return false, err
			}
			return s.relayResponse(respGeneric, last)
		}
		if s.aborted() {
			return false, s.writeErr(errAborted)
		}
		return s.txExec(st.SQL, command.Stmt{SQL: st.SQL}, last)
	}
	return false, s.writeErr(errUnknownTxStmt)
}

// errReleased ends the session after COMMIT/ROLLBACK ... RELEASE.
var errReleased = errors.New("session released by COMMIT/ROLLBACK RELEASE")

func stmtErrorOr(err error) (*mysql.MyError, error) {
	if me, ok := stmtError(err); ok {
		return me, nil
	}
	return nil, err
}

// txRead runs a read inside the transaction: relayed to the client, and,
// when it can be re-executed identically, recorded with a digest of its rows.
func (s *session) txRead(st classify.Statement, last bool) (bool, error) {
	if err := s.srv.admit(false); err != nil {
		return false, s.sendErr(err, last)
	}
	if s.linearizable {
		if err := s.srv.readBarrier(); err != nil {
			return false, s.sendErr(err, last)
		}
	}
	if !st.TxReplay || s.tx.overflow || s.unchecked(st) {
		if err := s.sendBackend(append([]byte{mysql.COM_QUERY}, st.SQL...)); err != nil {
			return false, err
		}
		return s.relayResponse(respGeneric, last)
	}
	if ok, err := s.txPrepare(st, last); !ok || err != nil {
		return ok, err
	}
	return s.txExec(st.SQL, command.Stmt{SQL: st.SQL, Read: true, UsesRand: st.UsesRand}, last)
}

// unchecked reports a read the session does not validate
// (lockstep_validate_reads=OFF: plain reads that assign nothing).
func (s *session) unchecked(st classify.Statement) bool {
	return !s.validateReads && !st.Locking && !st.Assigns
}

// txWrite runs a write inside the transaction on the backend session and
// records it.
func (s *session) txWrite(st classify.Statement, last bool) (bool, error) {
	if err := s.srv.admit(true); err != nil {
		return false, s.sendErr(err, last)
	}
	if safe, ok := utf8Safe(st.SQL, s.sctx.connCharset(), s.be.noBackslash()); ok {
		st.SQL = safe
	} else {
		return false, s.writeErr(errNotUTF8(st.Kind))
	}
	if s.tx.overflow {
		return s.txTooLarge(last)
	}
	if s.tx.called {
		return false, s.sendErr(errCallThenWrite, last)
	}
	if !s.sleepFor(st.Sleep) {
		return false, s.sendErr(errShuttingDown, last)
	}
	if ok, err := s.txPrepare(st, last); !ok || err != nil {
		return ok, err
	}
	rec := command.Stmt{SQL: st.SQL, UsesRand: st.UsesRand}
	if st.InsertTable != "" {
		table, key, err := s.pinInsertID(st.InsertTable)
		if err != nil {
			return false, err
		}
		rec.InsertTable = table
		ok, err := s.txExec(st.SQL, rec, last)
		if key != "" && s.tx != nil {
			s.tx.noteInsert(key)
		}
		return ok, err
	}
	return s.txExec(st.SQL, rec, last)
}

// txSession runs a session statement (SET, USE) inside the transaction; it
// is recorded when the applier must repeat it for the statements after it.
func (s *session) txSession(st classify.Statement, last bool) (bool, error) {
	if err := s.srv.admit(false); err != nil {
		return false, s.sendErr(err, last)
	}
	for _, v := range st.SysVars {
		if !txSettable[strings.TrimPrefix(strings.TrimPrefix(v, "session."), "local.")] {
			return false, s.writeErr(errTxVariable(v))
		}
	}
	s.sctx.dirty = true
	replay := st.TxReplay || st.Kind == "USE"
	if !replay {
		if err := s.sendBackend(append([]byte{mysql.COM_QUERY}, st.SQL...)); err != nil {
			return false, err
		}
		return s.relayResponse(respGeneric, last)
	}
	if ok, err := s.txPrepare(st, last); !ok || err != nil {
		return ok, err
	}
	return s.txExec(st.SQL, command.Stmt{SQL: st.SQL, Session: true, UsesRand: st.UsesRand}, last)
}

// txPrepare checks the size limits and records the starting values of the
// user variables st references for the first time. ok false means the
// client has been answered.
func (s *session) txPrepare(st classify.Statement, last bool) (bool, error) {
	tx := s.tx
	if !tx.fits(st) {
		return s.txTooLarge(last)
	}
	fresh := tx.newVars(st.UserVars)
	if len(fresh) == 0 {
		return true, nil
	}
	_, uv, err := s.be.fetchSessionValues(fresh)
	if err != nil {
		if me, ok := stmtError(err); ok {
			return false, s.writeErr(me)
		}
		return false, err
	}
	tx.addVars(fresh, uv)
	return true, nil
}

// txTooLarge rolls the transaction back and answers 1197.
func (s *session) txTooLarge(last bool) (bool, error) {
	me := s.tx.tooLarge()
	err := s.be.exec("ROLLBACK")
	s.endTx()
	if _, ok := stmtError(err); err != nil && !ok {
		return false, err
	}
	return false, s.writeErr(me)
}

// txExec sends sql to the backend session, relays the response to the
// client while capturing what the client sees, and records rec with that
// outcome.
func (s *session) txExec(sql string, rec command.Stmt, last bool) (bool, error) {
	if err := s.sendBackend(append([]byte{mysql.COM_QUERY}, sql...)); err != nil {
		return false, err
	}
	return s.txRecordResponse(rec, last, false)
}

// txRecordResponse relays (or, with discard, only reads) the backend's
// response to a statement sent inside the transaction and records rec with
// the outcome.
func (s *session) txRecordResponse(rec command.Stmt, last, discard bool) (bool, error) {
	c := &capture{discard: discard}
	s.capture = c
	ok, err := s.relayResponse(respGeneric, last)
	s.capture = nil
	if err != nil {
		return ok, err
	}
	if s.tx == nil {
		return ok, nil
	}
	out := c.outcome
	out.CheckAffected = s.caps&mysql.CLIENT_FOUND_ROWS == 0
	if c.killed && discard {
		s.doomTx()
		return ok, nil
	}
	s.txRecord(rec, out, c.killed)
	return ok, nil
}

// txRecord records rec with its outcome in the open transaction
// (optimisticTx.record) and ends the transaction when the outcome ended it.
func (s *session) txRecord(rec command.Stmt, out command.Outcome, killed bool) {
	switch s.tx.record(rec, out, killed) {
	case txKilled:
		// The applier aborted the transaction while this statement ran;
		// the client got 1213 for it (captureErr).
		_ = s.be.exec("ROLLBACK")
		s.endTx()
	case txRolledBack:
		// InnoDB rolled the whole transaction back (a local deadlock).
		s.endTx()
	}
}

// isWriteRec reports whether a recorded statement may change data (not a
// savepoint statement).
func isWriteRec(rec command.Stmt) bool {
	w := leadingWords(rec.SQL, 1, false) // a string before the first word ends the list either way
	if len(w) == 0 {
		return false
	}
	switch w[0] {
	case "SAVEPOINT", "RELEASE", "ROLLBACK":
		return false
	}
	return true
}

// capture is what relayResponse records of a response inside a transaction.
type capture struct {
	discard bool // read the response without relaying it
	outcome command.Outcome
	seen    bool // the first result has been captured
	killed  bool // an error arrived after the applier aborted the transaction
}

// pinInsertID sets the backend session's insert_id for an insert into
// table inside the transaction, as the applier will pin it (the applied
// counter and maximum, and ids this transaction inserted). It returns the
// qualified table name to record and the key of the table ("" when it has
// no AUTO_INCREMENT column).
func (s *session) pinInsertID(table string) (string, string, error) {
	if err := s.refreshContext(); err != nil {
		if _, ok := stmtError(err); ok {
			return table, "", nil
		}
		return table, "", err
	}
	db, tbl := splitTableName(table)
	if db == "" {
		db = s.sctx.db
	}
	if db == "" {
		return table, "", nil
	}
	qualified := quoteIdentifier(db) + "." + quoteIdentifier(tbl)
	ai := s.srv.deps.AutoInc
	if ai == nil {
		return qualified, "", nil
	}
	ctx, cancel := context.WithTimeout(s.srv.ctx, s.srv.cfg.ReadTimeout)
	col, next, err := ai.NextInsertID(ctx, db, tbl)
	cancel()
	if err != nil || col == "" {
		return qualified, "", nil
	}
	key := db + "\x00" + tbl
	guess := s.tx.insertGuess(key, next)
	inc, off := s.sctx.autoIncrement()
	align := func(b string) string {
		if inc <= 1 {
			return b
		}
		return fmt.Sprintf("IF(%[3]s<=%[2]d, %[2]d, %[2]d+((%[3]s-%[2]d+%[1]d-1) DIV %[1]d)*%[1]d)", inc, off, b)
	}
	// The transaction's own view counts too (rows it inserted with
	// explicit ids): the guess and its MAX() in one round trip.
	set := fmt.Sprintf("SET insert_id=(SELECT %s FROM (SELECT GREATEST(%d, COALESCE(MAX(%s),0)+1) AS b FROM %s) AS lockstep_ai)",
		align("b"), guess, quoteIdentifier(col), qualified)
	err = s.be.exec(set)
	if _, ok := stmtError(err); ok {
		// The table cannot be read (no SELECT privilege on it, say): the
		// guess alone.
		err = s.be.exec("SET insert_id=(SELECT " + align(strconv.FormatUint(guess, 10)) + ")")
	}
	if err != nil {
		if _, ok := stmtError(err); !ok {
			return qualified, key, err
		}
	}
	return qualified, key, nil
}

// splitTableName splits "db.tbl" (either part possibly backquoted) into
// unquoted parts; db is "" for an unqualified name.
func splitTableName(t string) (string, string) {
	inQuote := false
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case '`':
			inQuote = !inQuote
		case '.':
			if !inQuote {
				return unquoteIdentifier(t[:i]), unquoteIdentifier(t[i+1:])
			}
		}
	}
	return "", unquoteIdentifier(t)
}

func unquoteIdentifier(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '`' && s[len(s)-1] == '`' {
		return strings.ReplaceAll(s[1:len(s)-1], "``", "`")
	}
	return s
}

func quoteIdentifier(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// WaitAborted waits, at most timeout, until the sessions of the given
// backend connection ids no longer have an open optimistic transaction (an
// interrupted session rolls back on its own goroutine). It looks again
// each time a session's transaction ends or a session closes while it
// waits (txEnded). localdb.Blockers; called on the applier's path.
func (srv *Server) WaitAborted(ids []uint64, timeout time.Duration) {
	want := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	srv.abortWaiters.Add(1)
	defer srv.abortWaiters.Add(-1)
	for {
		open := false
		srv.mu.Lock()
		if srv.txEnded == nil {
			srv.txEnded = make(chan struct{})
		}
		ended := srv.txEnded
		for sess := range srv.sessions {
			if want[sess.connID] && sess.txw.optimistic.Load() {
				open = true
				break
			}
		}
		srv.mu.Unlock()
		if !open {
			return
		}
		select {
		case <-ended:
		case <-t.C:
			return
		}
	}
}

// txEnd wakes WaitAborted: a session's transaction ended (optimistic is
// already false) or a session left srv.sessions. Cheap while nobody waits.
func (srv *Server) txEnd() {
	if srv.abortWaiters.Load() == 0 {
		return
	}
	srv.mu.Lock()
	srv.txEndedLocked()
	srv.mu.Unlock()
}

// txEndedLocked is txEnd with srv.mu held.
func (srv *Server) txEndedLocked() {
	if srv.txEnded != nil {
		close(srv.txEnded)
		srv.txEnded = nil
	}
}

// OptimisticOpen reports whether any session has an optimistic transaction
// open: only those can block the applier in a way AbortBlockers can end
// (localdb.Blockers). Called from the applier's watchdog goroutine.
func (srv *Server) OptimisticOpen() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for sess := range srv.sessions {
		if sess.txw.optimistic.Load() {
			return true
		}
	}
	return false
}

// AbortBlockers aborts the optimistic transactions of the sessions whose
// backend connection ids are given (all: every open optimistic
// transaction; with rowLocks, every one that may hold row locks), because
// they hold locks the applier needs. A named session whose transaction ran
// no write or locking read is aborted only when it is named by two calls
// in a row during the same transaction: the server's lock tables are a
// snapshot and may show the session's previous transaction. A session that
// is waiting for its client is rolled back at once; one that is running a
// statement is marked, and its id is returned so the caller can interrupt
// the statement (KILL QUERY); the session then rolls back itself.
// localdb.Blockers; called from the applier's watchdog goroutine and before
// the applier re-runs a record after a deadlock.
func (srv *Server) AbortBlockers(ids []uint64, all, rowLocks bool) (aborted int, busy []uint64) {
	want := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	srv.mu.Lock()
	type target struct {
		sess *session
		why  string
	}
	var targets []target
	suspects := map[*session]uint64{}
	for sess := range srv.sessions {
		if !sess.txw.optimistic.Load() {
			continue
		}
		locks := sess.txw.rowLocks.Load()
		seq := sess.txw.txSeq.Load()
		switch {
		case want[sess.connID] && locks:
			targets = append(targets, target{sess, "named by the lock tables; it may hold row locks"})
		case want[sess.connID] && srv.suspects[sess] == seq:
			targets = append(targets, target{sess, "named by the lock tables twice during this transaction"})
		case want[sess.connID]:
			// Named, but its transaction ran nothing that takes row locks:
			// the lock tables (a snapshot) may show an earlier
			// transaction of this session. Aborted if named again while
			// this transaction is open.
			suspects[sess] = seq
		case all && locks:
			targets = append(targets, target{sess, "it may hold row locks"})
		case all && !rowLocks:
			targets = append(targets, target{sess, "every open transaction is aborted"})
		}
	}
	if !all {
		srv.suspects = suspects
	}
	srv.mu.Unlock()
	aborted = len(targets)
	for _, tg := range targets {
		sess := tg.sess
		sess.log.Info("aborting this client's transaction: it blocks the applier", "backend_conn", sess.connID, "why", tg.why)
		sess.txw.abortReq.Store(true)
		if !sess.txw.beMu.TryLock() {
			sess.txw.killSent.Store(true)
			busy = append(busy, sess.connID)
			continue
		}
		// Idle: release its locks now. The session goroutine sees abortReq
		// on its next statement and answers 1213.
		if sess.txw.optimistic.Load() && sess.be != nil {
			if err := sess.be.exec("ROLLBACK"); err != nil {
				srv.log.Warn("could not roll back a blocking transaction", "backend_conn", sess.connID, "err", err)
			}
			sess.be.idle()
		}
		sess.txw.beMu.Unlock()
	}
	return aborted, busy
}
