package localdb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// Blockers is what the watchdog needs from whoever runs the client
// transactions that can block the applier (the SQL proxy's optimistic
// transactions; cmd/lockstepd wires it with SetBlockers). Its methods are
// called from the watchdog goroutine and from the Apply goroutine (before a
// record is re-run after a deadlock); they must not block on the applier.
type Blockers interface {
	// AbortBlockers aborts the optimistic client transactions that hold
	// locks the applier waits for: those of the given backend connection
	// ids, or every one when all is set (a metadata-lock wait, whose holder
	// the server does not name) — with rowLocks, only those that may hold
	// row locks (they wrote, or read with FOR UPDATE/SHARE): after a
	// row-lock deadlock, a transaction of plain consistent reads cannot
	// have been in the cycle. It returns how many transactions it aborted
	// and the ids whose sessions are in the middle of a statement; the
	// watchdog interrupts those statements (KILL QUERY).
	AbortBlockers(ids []uint64, all, rowLocks bool) (aborted int, busy []uint64)
	// WaitAborted waits (at most timeout) until the transactions of the
	// given backend connection ids, aborted by AbortBlockers while they
	// were in the middle of a statement, have been rolled back.
	WaitAborted(ids []uint64, timeout time.Duration)
	// OptimisticOpen reports whether any client transaction is open that
	// AbortBlockers could abort. While none is, the watchdog does not ask
	// the server who blocks the applier (those queries cost the server and
	// this process a round trip every watchInterval of a long apply). Must
	// be cheap.
	OptimisticOpen() bool
}

// abortWait bounds how long a re-run after a deadlock waits for the
// interrupted holders to roll back.
const abortWait = 500 * time.Millisecond

// watchInterval is how long an apply may wait before the watchdog looks for
// blockers, and how often it looks again.
const watchInterval = 5 * time.Millisecond

// watchdog is the applier-always-wins rule: while an Apply runs longer than
// watchInterval, it asks the server whether the applier session waits for a
// lock held by another session, and has the holders aborted.
type watchdog struct {
	blockers atomic.Pointer[Blockers] // nil until SetBlockers
	start    atomic.Int64             // unix nanos of the running Apply's start, 0 when idle
	connID   atomic.Uint64            // the applier session's connection id
	stop     chan struct{}
	started  atomic.Bool
	// lastLockRead is when INNODB_LOCK_WAITS was last read (unix nanos).
	// The server refreshes that table's cache only when it has not been
	// read for 100ms, so reading it more often would keep it stale.
	lastLockRead atomic.Int64
	// lastStallLog is when a stalled apply was last reported (unix nanos).
	lastStallLog atomic.Int64
}

// stallReport is how long an apply may run before the watchdog logs what
// the applier session is doing and which other sessions are open, and how
// often it repeats that.
const stallReport = 5 * time.Second

// lockCacheIdle is how long INNODB_TRX/INNODB_LOCK_WAITS must go unread for
// the server to refresh them (InnoDB's CACHE_MIN_IDLE_TIME_US, plus margin).
const lockCacheIdle = 110 * time.Millisecond

// SetBlockers installs b (replacing any earlier one; nil removes it) and
// starts the watchdog: from then on the applier always wins against b's
// transactions.
func (db *DB) SetBlockers(b Blockers) {
	if b == nil {
		db.wd.blockers.Store(nil)
		return
	}
	db.wd.blockers.Store(&b)
	if db.wd.started.CompareAndSwap(false, true) {
		go db.watch()
	}
}

func (db *DB) watch() {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		select {
		case <-db.wd.stop:
			return
		case <-t.C:
		}
		st := db.wd.start.Load()
		if st == 0 || time.Since(time.Unix(0, st)) < watchInterval {
			continue
		}
		if b := db.wd.blockers.Load(); b != nil && (*b).OptimisticOpen() {
			if err := db.releaseBlockers(context.Background(), false, false); err != nil {
				db.log.Debug("watchdog: could not look for blockers", "err", err)
			}
		}
		if since := time.Since(time.Unix(0, st)); since >= stallReport && time.Since(time.Unix(0, db.wd.lastStallLog.Load())) >= stallReport {
			db.wd.lastStallLog.Store(time.Now().UnixNano())
			db.reportStall(since)
		}
	}
}

// reportStall logs, for an apply that has run for since, the server's
// process list: what the applier session waits for and who else is there
// (the operator's lead when the node is stuck catching up).
func (db *DB) reportStall(since time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	rows, err := db.admin.QueryContext(ctx, "SELECT ID, USER, COMMAND, TIME, COALESCE(STATE, ''), LEFT(COALESCE(INFO, ''), 120) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() ORDER BY ID")
	if err != nil {
		db.log.Warn("apply stalled; could not read the process list", "running_for", since.Round(time.Second), "err", err)
		return
	}
	defer rows.Close()
	var sessions []string
	for rows.Next() {
		var id, t uint64
		var user, cmd, state, info string
		if rows.Scan(&id, &user, &cmd, &t, &state, &info) == nil {
			sessions = append(sessions, fmt.Sprintf("%d %s %s %ds %q %q", id, user, cmd, t, state, info))
		}
	}
	db.log.Warn("apply stalled: the applier session has run one record for a long time; the server's sessions follow (id user command time state query)",
		"running_for", since.Round(time.Second), "applier_conn", db.wd.connID.Load(), "sessions", strings.Join(sessions, "; "))
}

// releaseBlockers finds the sessions the applier waits for and has them
// aborted. force aborts every optimistic transaction that may hold row
// locks (after the server rolled back the applier's own transaction in a
// deadlock), forceAll every one (after repeated rollbacks of the same record).
func (db *DB) releaseBlockers(ctx context.Context, force, forceAll bool) error {
	bp := db.wd.blockers.Load()
	if bp == nil {
		return nil
	}
	b := *bp
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var ids []uint64
	all := force || forceAll
	rowLocks := force && !forceAll
	if !all {
		id := db.wd.connID.Load()
		if id == 0 {
			return nil
		}
		// A metadata-lock wait shows in the (uncached) process list.
		var state sql.NullString
		// Literal ids (here and below): with a placeholder the driver
		// would prepare, execute and close, three round trips per look.
		err := db.admin.QueryRowContext(ctx, fmt.Sprintf("SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = %d", id)).Scan(&state)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		all = strings.Contains(strings.ToLower(state.String), "metadata lock")
		if !all && time.Since(time.Unix(0, db.wd.lastLockRead.Load())) < lockCacheIdle {
			return nil // the lock tables would show a stale picture: look again later
		}
	}
	if !all {
		id := db.wd.connID.Load()
		defer db.wd.lastLockRead.Store(time.Now().UnixNano())
		rows, err := db.admin.QueryContext(ctx, fmt.Sprintf(`SELECT DISTINCT b.trx_mysql_thread_id
FROM information_schema.INNODB_LOCK_WAITS w
JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id
JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id
WHERE r.trx_mysql_thread_id = %d`, id))
		if err != nil {
			return err
		}
		for rows.Next() {
			var b uint64
			if err := rows.Scan(&b); err == nil && b != id {
				ids = append(ids, b)
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
	}
	n, busy := b.AbortBlockers(ids, all, rowLocks)
	if n > 0 {
		db.log.Info("applier blocked by client transactions; aborted them", "sessions", ids, "all", all, "row_locks_only", rowLocks, "aborted", n, "interrupted", busy)
	}
	for _, b := range busy {
		db.interrupt(ctx, b)
	}
	if force && len(busy) > 0 {
		// The record is about to run again: if the interrupted holders
		// have not rolled back yet, it would meet their locks (and lose
		// the next deadlock) again.
		b.WaitAborted(busy, abortWait)
	}
	return nil
}

// interrupt stops the statement connection id is running, by its query
// id: a plain KILL QUERY <connection> that arrives after the statement
// ended would interrupt the session's next statement instead (MariaDB
// keeps the kill pending), which may belong to another transaction.
func (db *DB) interrupt(ctx context.Context, id uint64) {
	var qid uint64
	var command string
	err := db.admin.QueryRowContext(ctx, "SELECT QUERY_ID, COMMAND FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&qid, &command)
	if err != nil {
		db.log.Debug("watchdog: no statement to interrupt", "conn", id, "err", err)
		return
	}
	if command != "Query" && command != "Execute" {
		return // between statements: the session rolls back on its own
	}
	if _, err := db.admin.ExecContext(ctx, fmt.Sprintf("KILL QUERY ID %d", qid)); err != nil {
		db.log.Debug("watchdog: KILL QUERY ID failed (the statement ended first?)", "conn", id, "query_id", qid, "err", err)
	}
}
