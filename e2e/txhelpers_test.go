package e2e_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/e2e"
)

// Helpers for the transaction tests (tx_test.go).

// stmtTimeout bounds every single statement the transaction tests send, so
// a product hang fails the test with the statement instead of the suite's
// global timeout.
const stmtTimeout = 30 * time.Second

// isConflict reports whether err is the error a client retries a whole
// transaction on: 1213 (ER_LOCK_DEADLOCK).
func isConflict(err error) bool { return e2e.ErrNumber(err) == 1213 }

// sqlState is the SQLSTATE of a MySQL error, or "".
func sqlState(err error) string {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return string(me.SQLState[:])
	}
	return ""
}

// checkConflict returns nil when err is 1213 with SQLSTATE 40001, else an
// error describing what err is instead.
func checkConflict(err error) error {
	if err == nil {
		return errors.New("succeeded, want error 1213 (40001)")
	}
	if !isConflict(err) || sqlState(err) != "40001" {
		return fmt.Errorf("got %v (number %d, SQLSTATE %q), want error 1213 (40001)", err, e2e.ErrNumber(err), sqlState(err))
	}
	return nil
}

// outcomeUnknown reports whether a COMMIT error leaves it open whether the
// transaction committed: Lockstep's outcome-unknown error (1180), or a
// connection that broke while the COMMIT was in flight.
func outcomeUnknown(err error) bool {
	return e2e.ErrNumber(err) == 1180 || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, context.DeadlineExceeded)
}

// commitError is an error COMMIT returned other than 1213: the transaction
// may or may not have committed.
type commitError struct{ err error }

func (e *commitError) Error() string { return "COMMIT: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// atCommit reports whether err came from COMMIT (and was not 1213).
func atCommit(err error) bool {
	var ce *commitError
	return errors.As(err, &ce)
}

// tryTx runs fn in one transaction and commits it. An error from fn rolls
// the transaction back and is returned as is; an error from COMMIT other
// than 1213 is returned as a *commitError.
// Cancelling ctx does not interrupt the attempt (an interrupted COMMIT would
// leave its outcome unknown); each attempt is bounded by stmtTimeout.
func tryTx(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(ctx context.Context, tx *sql.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stmtTimeout)
	defer cancel()
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("BEGIN: %w", err)
	}
	if err := fn(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		if isConflict(err) {
			return err
		}
		return &commitError{err}
	}
	return nil
}

// errGaveUp wraps the last 1213 when runTx ran out of attempts.
var errGaveUp = errors.New("gave up retrying")

// runTx runs fn in a transaction and commits it, and retries the whole
// transaction while any statement or the COMMIT fails with 1213, as a
// client of a MySQL server is told to. It returns the number of retries and
// the last error (nil when a commit was acknowledged). Every 1213 must carry
// SQLSTATE 40001; one that does not ends the loop with an error. ctx ends
// the retrying (errGaveUp), never an attempt in flight.
func runTx(ctx context.Context, db *sql.DB, opts *sql.TxOptions, maxAttempts int, fn func(ctx context.Context, tx *sql.Tx) error) (retries int, err error) {
	for attempt := 1; ; attempt++ {
		err = tryTx(ctx, db, opts, fn)
		if !isConflict(err) {
			return attempt - 1, err
		}
		if st := sqlState(err); st != "40001" {
			return attempt - 1, fmt.Errorf("error 1213 with SQLSTATE %q, want 40001: %w", st, err)
		}
		if attempt >= maxAttempts || ctx.Err() != nil {
			return attempt - 1, fmt.Errorf("%w after %d attempts: %w", errGaveUp, attempt, err)
		}
	}
}

// session is one client connection (one MySQL session) driven statement by
// statement with explicit transaction control, for the semantic tests.
type session struct {
	t    testing.TB
	name string
	conn *sql.Conn
}

// openSession pins one connection of db for the rest of the test.
func openSession(t testing.TB, db *sql.DB, name string) *session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatalf("%s: connect: %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &session{t: t, name: name, conn: conn}
}

// try runs one statement and returns its error.
func (s *session) try(q string, args ...any) (sql.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
	defer cancel()
	return s.conn.ExecContext(ctx, q, args...)
}

// exec runs one statement and fails the test on error.
func (s *session) exec(q string, args ...any) sql.Result {
	s.t.Helper()
	res, err := s.try(q, args...)
	if err != nil {
		s.t.Fatalf("%s: %s: %v", s.name, q, err)
	}
	return res
}

// execAffected runs one statement and checks its affected-row count.
func (s *session) execAffected(want int64, q string, args ...any) {
	s.t.Helper()
	res := s.exec(q, args...)
	if n, err := res.RowsAffected(); err != nil || n != want {
		s.t.Fatalf("%s: %s: %d rows affected (%v), want %d", s.name, q, n, err, want)
	}
}

// mustFail runs one statement and checks that it fails with the given error
// number; it returns the error.
func (s *session) mustFail(number uint16, q string, args ...any) error {
	s.t.Helper()
	_, err := s.try(q, args...)
	if got := e2e.ErrNumber(err); got != number {
		s.t.Fatalf("%s: %s: got %v (error %d), want error %d", s.name, q, err, got, number)
	}
	return err
}

// strings runs a query and returns its rows, each row's columns joined
// with "|", in the order the server sent them.
func (s *session) strings(q string, args ...any) []string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
	defer cancel()
	rows, err := s.conn.QueryContext(ctx, q, args...)
	if err != nil {
		s.t.Fatalf("%s: %s: %v", s.name, q, err)
	}
	out, err := scanStrings(rows)
	if err != nil {
		s.t.Fatalf("%s: %s: %v", s.name, q, err)
	}
	return out
}

// int runs a query returning one integer.
func (s *session) int(q string, args ...any) int64 {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
	defer cancel()
	var v int64
	if err := s.conn.QueryRowContext(ctx, q, args...).Scan(&v); err != nil {
		s.t.Fatalf("%s: %s: %v", s.name, q, err)
	}
	return v
}

// close ends the session the way a client that disconnects does: the
// driver connection is discarded, not returned to the pool (the driver sends
// COM_QUIT and closes the socket).
func (s *session) close() {
	s.t.Helper()
	err := s.conn.Raw(func(any) error { return driver.ErrBadConn })
	if !errors.Is(err, driver.ErrBadConn) {
		s.t.Fatalf("%s: discarding the connection: %v", s.name, err)
	}
	s.conn.Close()
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		parts := make([]string, len(cols))
		for i, v := range vals {
			parts[i] = v.String
			if !v.Valid {
				parts[i] = "NULL"
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out, rows.Err()
}

// backendStrings runs a query directly on a node's MariaDB (bypassing
// Lockstep) and returns its rows as scanStrings does.
func backendStrings(n *e2e.Node, q string, args ...any) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
	defer cancel()
	rows, err := n.BackendDB().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s backend: %s: %w", n.ID, q, err)
	}
	out, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("%s backend: %s: %w", n.ID, q, err)
	}
	return out, nil
}

// assertEverywhere waits until the cluster has converged, then checks that
// q returns exactly want (as sorted rows) on every node's backend.
func assertEverywhere(t *testing.T, c *e2e.Cluster, q string, want ...string) {
	t.Helper()
	c.WaitConverged()
	want = slices.Clone(want)
	slices.Sort(want)
	for _, n := range c.Nodes {
		got, err := backendStrings(n, q)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %s = %q, want %q", n.ID, q, got, want)
		}
	}
}

// setup runs DDL and seed writes through the first node, then waits until
// every node has applied them (a node that has not applied a CREATE TABLE
// yet answers 1146).
func setup(t *testing.T, c *e2e.Cluster, stmts ...string) {
	t.Helper()
	db := c.Nodes[0].Open(t, "")
	for _, q := range stmts {
		mustExec(t, db, q)
	}
	c.WaitConverged()
}

// barrier releases its parties once all of them arrived. A party that
// fails before arriving breaks it, so nobody waits forever.
type barrier struct {
	mu     sync.Mutex
	left   int
	closed bool
	broken bool
	ch     chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{left: n, ch: make(chan struct{})} }

// wait arrives and waits for the others; false when the barrier was broken
// or the timeout passed first.
func (b *barrier) wait(timeout time.Duration) bool {
	b.mu.Lock()
	b.left--
	if b.left == 0 && !b.closed {
		b.closed = true
		close(b.ch)
	}
	b.mu.Unlock()
	select {
	case <-b.ch:
		b.mu.Lock()
		defer b.mu.Unlock()
		return !b.broken
	case <-time.After(timeout):
		return false
	}
}

// breakBarrier releases every waiter with false.
func (b *barrier) breakBarrier() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed, b.broken = true, true
		close(b.ch)
	}
}

// abruptDialer is a go-sql-driver network ("txabrupt") whose connections the
// test can reset (RST, no COM_QUIT): a client that vanishes, as when its
// host dies.
var abruptDialer = struct {
	once  sync.Once
	mu    sync.Mutex
	conns map[string][]*net.TCPConn // by address
}{conns: map[string][]*net.TCPConn{}}

func registerAbruptDialer() {
	abruptDialer.once.Do(func() {
		mysql.RegisterDialContext("txabrupt", func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			abruptDialer.mu.Lock()
			abruptDialer.conns[addr] = append(abruptDialer.conns[addr], c.(*net.TCPConn))
			abruptDialer.mu.Unlock()
			return c, nil
		})
	})
}

// resetAbruptConns resets every connection dialled to addr through the
// txabrupt network and returns how many there were.
func resetAbruptConns(addr string) int {
	abruptDialer.mu.Lock()
	defer abruptDialer.mu.Unlock()
	cs := abruptDialer.conns[addr]
	for _, c := range cs {
		_ = c.SetLinger(0) // RST instead of FIN
		_ = c.Close()
	}
	delete(abruptDialer.conns, addr)
	return len(cs)
}

// errorLog keeps the first few unexpected errors of concurrent workers and
// counts all of them, so a broken run reports examples without flooding.
type errorLog struct {
	mu    sync.Mutex
	n     int
	first []string
}

func (l *errorLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if len(l.first) < 10 {
		l.first = append(l.first, fmt.Sprintf(format, args...))
	}
}

// report fails t when any error was added.
func (l *errorLog) report(t *testing.T, what string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n > 0 {
		t.Errorf("%s: %d unexpected errors; first ones:\n  %s", what, l.n, strings.Join(l.first, "\n  "))
	}
}
