package sqlproxy_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/internal/testutil"
	"github.com/lockstepdb/lockstep/sqlproxy"
)

// fakeCluster stands in for ordering + localdb for named locks: one lock
// table shared by several proxies ("nodes"), with the semantics of
// command.LockOp. Other entries are refused.
type fakeCluster struct {
	mu    sync.Mutex
	table map[string]*fakeLock
	ch    chan struct{}
	ops   []command.LockOp
	fail  error
	looks map[string]int // Holder calls per name
}

type fakeLock struct {
	owner string
	holds int
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{table: map[string]*fakeLock{}, looks: map[string]int{}}
}

func (f *fakeCluster) holderCalls(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.looks[name]
}

func (f *fakeCluster) held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.table)
}

func (f *fakeCluster) Holder(ctx context.Context, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.looks[name]++
	if l := f.table[name]; l != nil {
		return l.owner, nil
	}
	return "", nil
}

func (f *fakeCluster) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ch == nil {
		f.ch = make(chan struct{})
	}
	return f.ch
}

func (f *fakeCluster) Submit(ctx context.Context, e *command.Entry) ([]command.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	if e.Kind != command.KindLock || e.Lock == nil {
		return nil, errors.New("fake cluster: only lock entries")
	}
	op := *e.Lock
	f.ops = append(f.ops, op)
	var r command.Result
	l := f.table[op.Name]
	switch op.Op {
	case command.LockAcquire:
		switch {
		case l == nil:
			f.table[op.Name] = &fakeLock{owner: op.Owner, holds: 1}
			r.AffectedRows = 1
		case l.owner == op.Owner:
			l.holds++
			r.AffectedRows = 1
		}
	case command.LockRelease:
		switch {
		case l == nil:
			r.Info = "NULL"
		case l.owner == op.Owner:
			if l.holds--; l.holds == 0 {
				delete(f.table, op.Name)
			}
			r.AffectedRows = 1
		}
	case command.LockReleaseAll, command.LockReleaseNode:
		for n, l := range f.table {
			if op.Op == command.LockReleaseAll && l.owner == op.Owner ||
				op.Op == command.LockReleaseNode && strings.HasPrefix(l.owner, op.Node+"/") && !strings.HasPrefix(l.owner, op.Node+"/"+op.Keep+"/") {
				r.AffectedRows += uint64(l.holds)
				delete(f.table, n)
			}
		}
	}
	if f.ch != nil {
		close(f.ch)
		f.ch = nil
	}
	return []command.Result{r}, nil
}

func (f *fakeCluster) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

func (f *fakeCluster) countOps(k command.LockOpKind) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, op := range f.ops {
		if op.Op == k {
			n++
		}
	}
	return n
}

// switchGate refuses everything while closed is set.
type switchGate struct {
	mu     sync.Mutex
	closed bool
}

func (g *switchGate) Admit(bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return &gomysql.MySQLError{Number: 1047, Message: "no quorum"}
	}
	return nil
}

func (g *switchGate) set(closed bool) {
	g.mu.Lock()
	g.closed = closed
	g.mu.Unlock()
}

// lockNode starts a proxy over the shared backend with the fake cluster's
// lock table and returns a DSN for the app user.
func lockNode(t *testing.T, c *fakeCluster, node string, deps sqlproxy.Deps) string {
	t.Helper()
	cfg := sqlproxy.DefaultConfig()
	cfg.Backend = backend.Addr()
	cfg.NodeID = node
	cfg.Incarnation = "i1"
	cfg.WriteTimeout = 5 * time.Second
	deps.Orderer = c
	if c != nil && deps.Locks == nil {
		deps.Locks = c
	}
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("LOCKSTEP_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p, err := sqlproxy.NewServer(cfg, deps, logger)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(l) }()
	t.Cleanup(func() {
		_ = p.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "app:apppw@tcp(" + l.Addr().String() + ")/app"
}

// lockConn returns one client session: a connection of a pool of its
// own, which endSession closes for real.
func lockConn(t *testing.T, dsn string) *sql.Conn {
	t.Helper()
	db := open(t, dsn)
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pools.Store(c, db)
	t.Cleanup(func() { c.Close() })
	return c
}

var pools sync.Map // *sql.Conn -> *sql.DB

// endSession disconnects the client session c.
func endSession(c *sql.Conn) {
	c.Close()
	if db, ok := pools.LoadAndDelete(c); ok {
		db.(*sql.DB).Close()
	}
}

// val runs a one-column query and renders its value ("NULL" for NULL).
func val(t *testing.T, c *sql.Conn, q string, args ...any) string {
	t.Helper()
	var v sql.NullString
	if err := c.QueryRowContext(context.Background(), q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if !v.Valid {
		return "NULL"
	}
	return v.String
}

func TestNamedLockStatements(t *testing.T) {
	c := newFakeCluster()
	dsn := lockNode(t, c, "n1", sqlproxy.Deps{})
	s := lockConn(t, dsn)
	ctx := context.Background()
	var connID string
	if err := s.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&connID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q, want string
	}{
		{"SELECT IS_FREE_LOCK('m')", "1"},
		{"SELECT IS_USED_LOCK('m')", "NULL"},
		{"SELECT GET_LOCK('m', 0)", "1"},
		{"select  get_lock( 'm' , 10 ) /* again */", "1"}, // re-entrant
		{"SELECT IS_FREE_LOCK('m')", "0"},
		{"SELECT IS_FREE_LOCK('M')", "1"}, // names are case-sensitive
		{"SELECT IS_USED_LOCK('m')", connID},
		{"SELECT RELEASE_LOCK('m')", "1"},
		{"SELECT IS_FREE_LOCK('m')", "0"}, // one hold left
		{"SELECT GET_LOCK(CONCAT('c', 'ron'), 1.5) AS g", "1"},
		{"SELECT RELEASE_ALL_LOCKS()", "2"},
		{"SELECT RELEASE_LOCK('m')", "NULL"},
		{"SELECT RELEASE_ALL_LOCKS()", "0"},
		{"SELECT GET_LOCK(NULL, 0)", "NULL"},
		{"SELECT GET_LOCK('', 0)", "NULL"},
		{"SELECT GET_LOCK('x', NULL)", "NULL"},
		{"SELECT GET_LOCK('x', -1)", "NULL"},
		{"SELECT IS_FREE_LOCK(NULL)", "NULL"},
		{"SELECT (GET_LOCK('p', 0)) FROM DUAL", "1"},
		{"SELECT RELEASE_LOCK(_utf8mb4'p')", "1"},
	} {
		if got := val(t, s, tc.q); got != tc.want {
			t.Errorf("%s = %s, want %s", tc.q, got, tc.want)
		}
	}
	// Warnings of a negative timeout, as MariaDB reports them.
	if got := val(t, s, "SELECT GET_LOCK('x', -2.5)"); got != "NULL" {
		t.Fatalf("negative timeout: %s", got)
	}
	var lvl, msg string
	var code int
	if err := s.QueryRowContext(ctx, "SHOW WARNINGS").Scan(&lvl, &code, &msg); err != nil || code != 1411 || msg != "Incorrect timeout value: '-2' for function get_lock" {
		t.Fatalf("SHOW WARNINGS: %s %d %q %v", lvl, code, msg, err)
	}
	// User variables, DO, and several calls in one statement.
	if _, err := s.ExecContext(ctx, "SET @n = 'var-lock'"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExecContext(ctx, "DO GET_LOCK(@n, 0), GET_LOCK('other', 0)"); err != nil {
		t.Fatal(err)
	}
	var a, b, n int
	if err := s.QueryRowContext(ctx, "SELECT IS_FREE_LOCK('var-lock'), IS_FREE_LOCK('other'), RELEASE_ALL_LOCKS()").Scan(&a, &b, &n); err != nil || a != 0 || b != 0 || n != 2 {
		t.Fatalf("multi: %d %d %d %v", a, b, n, err)
	}
	// Column names are the calls as written (or the alias); types as MariaDB's.
	rows, err := s.QueryContext(ctx, "SELECT get_lock('m',0), IS_FREE_LOCK('m') AS `free`, RELEASE_ALL_LOCKS()")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.ColumnTypes()
	var names []string
	for _, c := range cols {
		names = append(names, c.Name()+":"+c.DatabaseTypeName())
	}
	rows.Close()
	if got := strings.Join(names, ","); got != "get_lock('m',0):INT,free:INT,RELEASE_ALL_LOCKS():UNSIGNED INT" {
		t.Fatalf("columns %s", got)
	}
	// Errors: MariaDB's own for bad arguments, Lockstep's for mixed statements.
	for _, tc := range []struct {
		q    string
		code uint16
	}{
		{"SELECT GET_LOCK(1, 0)", 4079},
		{"SELECT GET_LOCK(REPEAT('a', 193), 0)", 1059},
		{"SELECT GET_LOCK('a')", 1582},
		{"SELECT GET_LOCK(no_such_column, 0)", 1054},
		{"SELECT GET_LOCK('a', 0), 1", 1235},
		{"SELECT GET_LOCK('a', 0) FROM t", 1235},
		{"SELECT 1 FROM DUAL WHERE IS_FREE_LOCK('a')", 1235},
		{"SET @x = GET_LOCK('a', 0)", 1235},
		{"SELECT GET_LOCK(RELEASE_LOCK('a'), 0)", 1235},
		{"SELECT GET_LOCK('a', 0) UNION SELECT 1", 1235},
	} {
		_, err := s.ExecContext(ctx, tc.q)
		if me := wantCode(t, err, tc.code); tc.code == 4079 && me.Message != "Illegal parameter data type int for operation 'get_lock'" {
			t.Fatalf("%s: %q", tc.q, me.Message)
		}
	}
	// Spellings MariaDB accepts reach the cluster's table, not the backend's.
	for _, q := range []string{
		"SELECT GET_LOCK  ('f', 0)",
		"SELECT GET_LOCK/* c */('f', 0)",
		"SELECT `get_lock`('f', 0)",
		"DO\nGet_Lock(\n'f',\n0)",
	} {
		if _, err := s.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if h, _ := c.Holder(ctx, "f"); h == "" {
			t.Fatalf("%s did not take the cluster lock", q)
		}
		if got := val(t, s, "SELECT RELEASE_ALL_LOCKS()"); got != "1" {
			t.Fatalf("%s: RELEASE_ALL_LOCKS() = %s", q, got)
		}
	}
	// A string that merely mentions a lock function is an ordinary read.
	if got := val(t, s, "SELECT 'GET_LOCK(1)'"); got != "GET_LOCK(1)" {
		t.Fatalf("string literal: %s", got)
	}
	if n := c.held(); n != 0 {
		t.Fatalf("%d locks left", n)
	}
}

func TestNamedLockAcrossNodes(t *testing.T) {
	c := newFakeCluster()
	n1 := lockNode(t, c, "n1", sqlproxy.Deps{})
	n2 := lockNode(t, c, "n2", sqlproxy.Deps{})
	holder := lockConn(t, n1)
	other := lockConn(t, n2)
	ctx := context.Background()
	if got := val(t, holder, "SELECT GET_LOCK('migrate', 0)"); got != "1" {
		t.Fatalf("GET_LOCK on n1 = %s", got)
	}
	var holderID string
	if err := holder.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&holderID); err != nil {
		t.Fatal(err)
	}
	if got := val(t, other, "SELECT GET_LOCK('migrate', 0)"); got != "0" {
		t.Fatalf("GET_LOCK on n2 while n1 holds = %s", got)
	}
	if got := val(t, other, "SELECT IS_USED_LOCK('migrate')"); got != holderID {
		t.Fatalf("IS_USED_LOCK on n2 = %s, want %s", got, holderID)
	}
	// Not the holder: RELEASE_LOCK answers 0 and orders nothing.
	before := c.countOps(command.LockRelease)
	if got := val(t, other, "SELECT RELEASE_LOCK('migrate')"); got != "0" {
		t.Fatalf("RELEASE_LOCK by a non-holder = %s", got)
	}
	if c.countOps(command.LockRelease) != before {
		t.Fatal("a release by a non-holder was ordered")
	}
	// A timed wait expires with 0.
	start := time.Now()
	if got := val(t, other, "SELECT GET_LOCK('migrate', 0.3)"); got != "0" {
		t.Fatalf("timed GET_LOCK = %s", got)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("timed GET_LOCK returned after %s", d)
	}
	// A waiter gets the lock when the holder's session ends.
	looks := c.holderCalls("migrate")
	got := make(chan string, 1)
	go func() {
		var v sql.NullString
		err := other.QueryRowContext(ctx, "SELECT GET_LOCK('migrate', 60)").Scan(&v)
		got <- fmt.Sprint(v.String, err)
	}()
	testutil.Eventually(t, 10*time.Second, "the waiter to look at the lock", func() bool { return c.holderCalls("migrate") > looks })
	endSession(holder)
	select {
	case g := <-got:
		if g != "1<nil>" {
			t.Fatalf("waiter got %s", g)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("waiter did not get the lock after the holder's session ended")
	}
	if h, _ := c.Holder(ctx, "migrate"); !strings.HasPrefix(h, "n2/i1/") {
		t.Fatalf("holder %q", h)
	}
}

// TestNamedLockWaiterDisconnects: a client that disconnects while its
// GET_LOCK waits does not take the lock when it is released.
func TestNamedLockWaiterDisconnects(t *testing.T) {
	c := newFakeCluster()
	n1 := lockNode(t, c, "n1", sqlproxy.Deps{})
	n2 := lockNode(t, c, "n2", sqlproxy.Deps{})
	holder := lockConn(t, n1)
	waiter := lockConn(t, n2)
	ctx := context.Background()
	val(t, holder, "SELECT GET_LOCK('w', 0)")
	waiterOwner := "n2/i1/" + val(t, waiter, "SELECT CONNECTION_ID()")
	looks := c.holderCalls("w")
	done := make(chan error, 1)
	wctx, disconnect := context.WithCancel(ctx)
	go func() {
		_, err := waiter.ExecContext(wctx, "DO GET_LOCK('w', 600)")
		done <- err
	}()
	testutil.Eventually(t, 10*time.Second, "the waiter to look at the lock", func() bool { return c.holderCalls("w") > looks })
	disconnect() // the driver closes the connection of a cancelled query
	if err := <-done; err == nil {
		t.Fatal("the cancelled GET_LOCK succeeded")
	}
	endSession(waiter)
	val(t, holder, "SELECT RELEASE_LOCK('w')")
	third := lockConn(t, n1)
	if got := val(t, third, "SELECT GET_LOCK('w', 10)"); got != "1" {
		t.Fatalf("GET_LOCK after the release = %s", got)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, op := range c.ops {
		if op.Owner == waiterOwner {
			t.Fatalf("the disconnected waiter ordered %+v", op)
		}
	}
}

func TestNamedLockPrepared(t *testing.T) {
	c := newFakeCluster()
	db := open(t, lockNode(t, c, "n1", sqlproxy.Deps{}))
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	var got sql.NullInt64
	// database/sql prepares statements that have arguments.
	if err := db.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", "job", 5).Scan(&got); err != nil || got.Int64 != 1 {
		t.Fatalf("prepared GET_LOCK = %v, %v", got, err)
	}
	st, err := db.PrepareContext(ctx, "SELECT IS_USED_LOCK(?) AS u, IS_FREE_LOCK(?)")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.QueryContext(ctx, "job", "nothing")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	var used sql.NullInt64
	var free int
	if !rows.Next() {
		t.Fatal("no row")
	}
	if err := rows.Scan(&used, &free); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if !used.Valid || used.Int64 == 0 || free != 1 || strings.Join(cols, ",") != "u,IS_FREE_LOCK(?)" {
		t.Fatalf("used=%v free=%d cols=%v", used, free, cols)
	}
	if err := db.QueryRowContext(ctx, "SELECT RELEASE_LOCK(?)", "job").Scan(&got); err != nil || got.Int64 != 1 {
		t.Fatalf("prepared RELEASE_LOCK = %v, %v", got, err)
	}
	if err := db.QueryRowContext(ctx, "SELECT RELEASE_LOCK(?)", "job").Scan(&got); err != nil || got.Valid {
		t.Fatalf("second RELEASE_LOCK = %v, %v", got, err)
	}
	if _, err := db.ExecContext(ctx, "DO GET_LOCK(?, ?)", "d", 0); err != nil {
		t.Fatal(err)
	}
	if h, _ := c.Holder(ctx, "d"); h == "" {
		t.Fatal("prepared DO GET_LOCK did not take the lock")
	}
	// Mixed prepared statements are refused at PREPARE.
	_, err = db.PrepareContext(ctx, "SELECT GET_LOCK(?, 0), 1")
	wantCode(t, err, 1235)
}

// TestNamedLockNoBackslashEscapes: under NO_BACKSLASH_ESCAPES a backslash
// ends no string, so 'a\' is the name a\ and the call is the proxy's
// (cluster-wide), not relayed to the backend.
func TestNamedLockNoBackslashEscapes(t *testing.T) {
	c := newFakeCluster()
	s := lockConn(t, lockNode(t, c, "n1", sqlproxy.Deps{}))
	if _, err := s.ExecContext(context.Background(), "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ q, want string }{
		{`SELECT GET_LOCK('a\', 0)`, "1"},
		{`SELECT IS_FREE_LOCK('a\')`, "0"},
		{`SELECT RELEASE_LOCK('a\')`, "1"},
	} {
		if got := val(t, s, tc.q); got != tc.want {
			t.Errorf("%s = %s, want %s", tc.q, got, tc.want)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ops) != 2 || c.ops[0].Name != `a\` || c.ops[0].Op != command.LockAcquire {
		t.Fatalf("ordered %+v, want an acquire and a release of a\\", c.ops)
	}
}

func TestNamedLockWithoutLockTable(t *testing.T) {
	c := newFakeCluster()
	db := open(t, lockNode(t, nil, "n1", sqlproxy.Deps{Orderer: c}))
	_, err := db.Exec("SELECT GET_LOCK('a', 0)")
	if me := wantCode(t, err, 1235); !strings.Contains(me.Message, "named locks") {
		t.Fatalf("message %q", me.Message)
	}
	_, err = db.Exec("SELECT IS_FREE_LOCK(?)", "a")
	wantCode(t, err, 1235)
}

// TestNamedLockFenced: when the quorum gate refuses writes, a session
// holding named locks is closed; its locks are released once the node can
// order again.
func TestNamedLockFenced(t *testing.T) {
	c := newFakeCluster()
	g := &switchGate{}
	holder := lockConn(t, lockNode(t, c, "n1", sqlproxy.Deps{Gate: g}))
	idle := lockConn(t, lockNode(t, c, "n2", sqlproxy.Deps{Gate: g}))
	ctx := context.Background()
	if got := val(t, holder, "SELECT GET_LOCK('cron', 0)"); got != "1" {
		t.Fatal(got)
	}
	val(t, idle, "SELECT 1")
	c.setFail(command.ErrNoLeader)
	g.set(true)
	testutil.Eventually(t, 10*time.Second, "the fenced holder's connection to drop", func() bool {
		err := holder.PingContext(ctx)
		return err != nil && !isMySQLError(err)
	})
	// A session without locks stays open (it is refused statement by statement).
	g.set(false)
	if got := val(t, idle, "SELECT 1"); got != "1" {
		t.Fatal(got)
	}
	c.setFail(nil)
	testutil.Eventually(t, 10*time.Second, "the ended session's locks to be released", func() bool {
		h, _ := c.Holder(ctx, "cron")
		return h == ""
	})
}

// TestNamedLockLost: when the cluster releases the node's locks (it was
// considered out of the quorum), a session that believed it held one is
// closed.
func TestNamedLockLost(t *testing.T) {
	c := newFakeCluster()
	holder := lockConn(t, lockNode(t, c, "n1", sqlproxy.Deps{}))
	ctx := context.Background()
	if got := val(t, holder, "SELECT GET_LOCK('cron', 0)"); got != "1" {
		t.Fatal(got)
	}
	if _, err := c.Submit(ctx, &command.Entry{Kind: command.KindLock, Lock: &command.LockOp{Op: command.LockReleaseNode, Node: "n1"}}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the session whose lock was released to be closed", func() bool {
		err := holder.PingContext(ctx)
		return err != nil && !isMySQLError(err)
	})
}

// TestNamedLockSessionEndReleases: a session that ends while holding locks
// orders one RELEASE_ALL; one that holds none orders nothing.
func TestNamedLockSessionEndReleases(t *testing.T) {
	c := newFakeCluster()
	dsn := lockNode(t, c, "n1", sqlproxy.Deps{})
	s := lockConn(t, dsn)
	val(t, s, "SELECT GET_LOCK('a', 0)")
	val(t, s, "SELECT GET_LOCK('b', 0)")
	endSession(s)
	testutil.Eventually(t, 10*time.Second, "RELEASE_ALL at session end", func() bool { return c.countOps(command.LockReleaseAll) == 1 })
	if n := c.held(); n != 0 {
		t.Fatalf("%d locks left", n)
	}
	s2 := lockConn(t, dsn)
	val(t, s2, "SELECT IS_FREE_LOCK('a')")
	val(t, s2, "SELECT GET_LOCK('a', 0)")
	val(t, s2, "SELECT RELEASE_LOCK('a')")
	endSession(s2)
	s3 := lockConn(t, dsn)
	val(t, s3, "SELECT 1") // a later session proves s2's end was processed
	endSession(s3)
	if n := c.countOps(command.LockReleaseAll); n != 1 {
		t.Fatalf("%d RELEASE_ALL entries, want 1", n)
	}
}

func isMySQLError(err error) bool {
	var me *gomysql.MySQLError
	return errors.As(err, &me)
}
