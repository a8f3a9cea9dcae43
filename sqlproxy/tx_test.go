package sqlproxy_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/internal/localdb"
	"github.com/lockstepdb/lockstep/sqlproxy"
	"github.com/lockstepdb/lockstep/sqlproxy/sqlproxytest"
)

// localOrderer orders entries by applying them with the real applier
// (internal/localdb) on the test backend: a one-node cluster without Raft,
// so transactions are validated exactly as on a real node.
type localOrderer struct {
	db  *localdb.DB
	mu  sync.Mutex
	idx uint64
	log []*command.Entry
}

func (o *localOrderer) Submit(ctx context.Context, e *command.Entry) ([]command.Result, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b, err := command.Encode([]*command.Entry{e})
	if err != nil {
		return nil, err
	}
	dec, err := command.Decode(b)
	if err != nil {
		return nil, err
	}
	o.idx++
	res, err := o.db.Apply(ctx, o.idx, dec)
	if err != nil {
		return nil, err
	}
	o.log = append(o.log, dec[0])
	return res[0], nil
}

func (o *localOrderer) entries() []*command.Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*command.Entry(nil), o.log...)
}

var (
	txOnce sync.Once
	txOrd  *localOrderer
	txErr  error
)

// newTxProxy starts a proxy whose orderer is the real applier, with the
// applier's watchdog wired to this proxy.
func newTxProxy(t *testing.T, cfg func(*sqlproxy.Config)) (*sqlproxytest.Server, *localOrderer, string) {
	t.Helper()
	txOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		db, err := localdb.Open(ctx, localdb.Config{DSN: backend.RootDSN()}, testLogger())
		if err != nil {
			txErr = err
			return
		}
		idx, err := db.AppliedIndex(ctx)
		txOrd, txErr = &localOrderer{db: db, idx: idx}, err
	})
	if txErr != nil {
		t.Fatal(txErr)
	}
	opts := []sqlproxytest.Option{sqlproxytest.WithBackend(backend), sqlproxytest.WithOrderer(txOrd), sqlproxytest.WithAutoInc(txOrd.db)}
	if cfg != nil {
		opts = append(opts, sqlproxytest.WithConfig(cfg))
	}
	srv := sqlproxytest.NewServer(t, opts...)
	txOrd.db.SetBlockers(srv.Proxy)
	name := "t_" + strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	root := open(t, backend.RootDSN())
	mustExec(t, root, "DROP DATABASE IF EXISTS "+name)
	mustExec(t, root, "CREATE DATABASE "+name)
	return srv, txOrd, name
}

func isCode(err error, code uint16) bool {
	var me *gomysql.MySQLError
	return errors.As(err, &me) && me.Number == code
}

func count(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestTxCommitRollbackReadOnly(t *testing.T) {
	srv, ord, name := newTxProxy(t, nil)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	root := open(t, backend.RootDSN()+name)
	mustExec(t, db, "CREATE TABLE a (id INT AUTO_INCREMENT PRIMARY KEY, v INT, ts DATETIME(6) DEFAULT NOW(6))")
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	exec := func(q string) {
		t.Helper()
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	before := len(ord.entries())
	exec("BEGIN")
	exec("INSERT INTO a (v) VALUES (1), (2)")
	var n int
	if err := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM a").Scan(&n); err != nil || n != 2 {
		t.Fatalf("own writes: %d %v", n, err)
	}
	if got := count(t, root, "SELECT COUNT(*) FROM a"); got != 0 {
		t.Fatalf("uncommitted rows visible to others: %d", got)
	}
	exec("COMMIT")
	es := ord.entries()[before:]
	if len(es) != 1 || es[0].Kind != command.KindTransaction || len(es[0].Stmts) != 2 {
		t.Fatalf("ordered %+v", es)
	}
	if got := count(t, root, "SELECT COUNT(*) FROM a"); got != 2 {
		t.Fatalf("after COMMIT: %d rows", got)
	}
	// ROLLBACK leaves nothing and orders nothing.
	exec("START TRANSACTION")
	exec("INSERT INTO a (v) VALUES (3)")
	exec("ROLLBACK")
	// A read-only transaction is never ordered.
	exec("START TRANSACTION READ ONLY")
	if err := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM a").Scan(&n); err != nil || n != 2 {
		t.Fatalf("read-only: %d %v", n, err)
	}
	if _, err := c.ExecContext(ctx, "INSERT INTO a (v) VALUES (4)"); !isCode(err, 1792) {
		t.Fatalf("write in READ ONLY transaction: %v", err)
	}
	exec("COMMIT")
	if got := len(ord.entries()) - before; got != 1 {
		t.Fatalf("%d entries ordered, want 1", got)
	}
	if got := count(t, root, "SELECT COUNT(*) FROM a"); got != 2 {
		t.Fatalf("after ROLLBACK: %d rows", got)
	}
	// NOW() inside the transaction is the pinned transaction time on both sides.
	exec("BEGIN")
	exec("INSERT INTO a (v) VALUES (5)")
	var ts string
	if err := c.QueryRowContext(ctx, "SELECT ts FROM a WHERE v = 5").Scan(&ts); err != nil {
		t.Fatal(err)
	}
	exec("COMMIT")
	var ts2 string
	if err := root.QueryRow("SELECT ts FROM a WHERE v = 5").Scan(&ts2); err != nil || ts != ts2 {
		t.Fatalf("timestamp seen %q, stored %q (%v)", ts, ts2, err)
	}
}

func TestTxConflictAndRetry(t *testing.T) {
	srv, _, name := newTxProxy(t, nil)
	a := open(t, srv.DSN("app", "apppw", name, ""))
	b := open(t, srv.DSN("app", "apppw", name, ""))
	mustExec(t, a, "CREATE TABLE c (id INT PRIMARY KEY, n INT)")
	mustExec(t, a, "INSERT INTO c VALUES (1, 0)")
	ta, err := a.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var na int
	if err := ta.QueryRow("SELECT n FROM c WHERE id = 1").Scan(&na); err != nil {
		t.Fatal(err)
	}
	// b increments and commits first (a's read is not locking).
	tb, err := b.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var nb int
	if err := tb.QueryRow("SELECT n FROM c WHERE id = 1").Scan(&nb); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Exec("UPDATE c SET n = ? WHERE id = 1", nb+1); err != nil {
		t.Fatal(err)
	}
	if err := tb.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := ta.Exec("UPDATE c SET n = ? WHERE id = 1", na+1); err != nil {
		t.Fatal(err)
	}
	err = ta.Commit()
	if !isCode(err, 1213) {
		t.Fatalf("lost update committed: %v", err)
	}
	var me *gomysql.MySQLError
	if errors.As(err, &me) && string(me.SQLState[:]) != "40001" {
		t.Fatalf("SQLSTATE %s", me.SQLState)
	}
	// The retry reads the new value and commits.
	for {
		tx, err := a.Begin()
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := tx.QueryRow("SELECT n FROM c WHERE id = 1").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("UPDATE c SET n = ? WHERE id = 1", n+1); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err == nil {
			break
		} else if !isCode(err, 1213) {
			t.Fatal(err)
		}
	}
	if got := count(t, a, "SELECT n FROM c WHERE id = 1"); got != 2 {
		t.Fatalf("counter %d, want 2", got)
	}
}

func TestTxSavepointsAutocommitDDL(t *testing.T) {
	srv, _, name := newTxProxy(t, nil)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	root := open(t, backend.RootDSN()+name)
	mustExec(t, db, "CREATE TABLE s (id INT PRIMARY KEY)")
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	run := func(qs ...string) {
		t.Helper()
		for _, q := range qs {
			if _, err := c.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	run("BEGIN", "INSERT INTO s VALUES (1)", "SAVEPOINT sp", "INSERT INTO s VALUES (2)",
		"ROLLBACK TO SAVEPOINT sp", "INSERT INTO s VALUES (3)", "RELEASE SAVEPOINT sp", "COMMIT")
	if got := count(t, root, "SELECT GROUP_CONCAT(id ORDER BY id) = '1,3' FROM s"); got != 1 {
		t.Fatalf("savepoints: rows %v", got)
	}
	if _, err := c.ExecContext(ctx, "SAVEPOINT lockstep_tx"); !isCode(err, 1235) {
		t.Fatalf("reserved savepoint name: %v", err)
	}
	// autocommit=0: statements open a transaction; COMMIT orders it.
	run("SET autocommit = 0", "INSERT INTO s VALUES (4)", "COMMIT", "INSERT INTO s VALUES (5)", "ROLLBACK")
	if got := count(t, root, "SELECT GROUP_CONCAT(id ORDER BY id) = '1,3,4' FROM s"); got != 1 {
		t.Fatal("autocommit=0 commit/rollback")
	}
	// DDL commits the open transaction implicitly.
	run("INSERT INTO s VALUES (6)", "CREATE TABLE s2 (id INT)", "SET autocommit = 1")
	if got := count(t, root, "SELECT COUNT(*) FROM s WHERE id = 6"); got != 1 {
		t.Fatal("DDL did not commit the transaction")
	}
	// A transaction left open at disconnect leaves nothing.
	run("BEGIN", "INSERT INTO s VALUES (7)")
	c.Raw(func(dc any) error { return errors.New("drop") }) //nolint:errcheck
	c.Close()
	if got := count(t, root, "SELECT COUNT(*) FROM s WHERE id = 7"); got != 0 {
		t.Fatal("open transaction survived its client")
	}
}

func TestTxPreparedAndAutoInc(t *testing.T) {
	srv, _, name := newTxProxy(t, nil)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	mustExec(t, db, "CREATE TABLE p (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10))")
	// A rolled-back inserting transaction does not make the next one conflict.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO p (v) VALUES (?)", "gone"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		r, err := tx.Exec("INSERT INTO p (v) VALUES (?)", "x")
		if err != nil {
			t.Fatal(err)
		}
		id, _ := r.LastInsertId()
		var v string
		if err := tx.QueryRow("SELECT v FROM p WHERE id = ?", id).Scan(&v); err != nil || v != "x" {
			t.Fatalf("read own prepared insert: %q %v", v, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
	}
	if got := count(t, db, "SELECT COUNT(*) FROM p"); got != 3 {
		t.Fatalf("%d rows", got)
	}
}

func TestTxSizeLimit(t *testing.T) {
	srv, _, name := newTxProxy(t, func(c *sqlproxy.Config) { c.MaxTxStatements = 3 })
	db := open(t, srv.DSN("app", "apppw", name, ""))
	mustExec(t, db, "CREATE TABLE l (id INT PRIMARY KEY)")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := tx.Exec("INSERT INTO l VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.Exec("INSERT INTO l VALUES (4)"); !isCode(err, 1197) {
		t.Fatalf("4th statement: %v", err)
	}
	_ = tx.Rollback()
	if got := count(t, db, "SELECT COUNT(*) FROM l"); got != 0 {
		t.Fatalf("%d rows after an oversized transaction", got)
	}
}

func TestTxApplierAlwaysWins(t *testing.T) {
	srv, _, name := newTxProxy(t, nil)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	mustExec(t, db, "CREATE TABLE w (id INT PRIMARY KEY, v INT)")
	mustExec(t, db, "INSERT INTO w VALUES (1, 0)")
	holder, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec("UPDATE w SET v = 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	// An autocommit write to the locked row is applied: the holder is aborted.
	done := make(chan error, 1)
	go func() {
		_, err := db.Exec("UPDATE w SET v = 2 WHERE id = 1")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the applier stayed blocked behind a client transaction")
	}
	if _, err := holder.Exec("UPDATE w SET v = 3 WHERE id = 1"); !isCode(err, 1213) {
		t.Fatalf("aborted holder's next statement: %v", err)
	}
	_ = holder.Rollback()
	if got := count(t, db, "SELECT v FROM w WHERE id = 1"); got != 2 {
		t.Fatalf("v = %d", got)
	}
}

// TestTxAbortRowLockHolders: after the server rolls back the applier in a
// deadlock, only transactions that may hold row locks are aborted; a
// transaction of plain consistent reads carries on and commits.
func TestTxAbortRowLockHolders(t *testing.T) {
	srv, _, name := newTxProxy(t, nil)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	mustExec(t, db, "CREATE TABLE r (id INT PRIMARY KEY, v INT)")
	mustExec(t, db, "INSERT INTO r VALUES (1, 0), (2, 0), (3, 0)")
	begin := func(q string) *sql.Tx {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return tx
	}
	reader := begin("SELECT v FROM r WHERE id = 1")
	writer := begin("UPDATE r SET v = 1 WHERE id = 2")
	locker := begin("SELECT v FROM r WHERE id = 3 FOR UPDATE")
	if n, busy := srv.Proxy.AbortBlockers(nil, true, true); n != 2 || len(busy) != 0 {
		t.Fatalf("AbortBlockers(row locks only) aborted %d (busy %v), want the writer and the locking reader", n, busy)
	}
	if _, err := reader.Exec("SELECT v FROM r WHERE id = 2"); err != nil {
		t.Fatalf("reader after the abort: %v", err)
	}
	if err := reader.Commit(); err != nil {
		t.Fatalf("reader's COMMIT: %v", err)
	}
	for name, tx := range map[string]*sql.Tx{"writer": writer, "locking reader": locker} {
		if err := tx.Commit(); !isCode(err, 1213) {
			t.Errorf("%s's COMMIT after the abort: %v, want 1213", name, err)
		}
	}
	// A reader the lock tables name (a snapshot that may show its previous
	// transaction) is aborted only when it is named twice in a row.
	rc, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var id uint64
	if err := rc.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"BEGIN", "SELECT v FROM r WHERE id = 1"} {
		if _, err := rc.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if n, _ := srv.Proxy.AbortBlockers([]uint64{id}, false, false); n != 0 {
		t.Fatalf("a reader named once was aborted (%d)", n)
	}
	if n, _ := srv.Proxy.AbortBlockers([]uint64{id}, false, false); n != 1 {
		t.Fatalf("a reader named twice in a row: %d aborted, want 1", n)
	}
	if _, err := rc.ExecContext(context.Background(), "COMMIT"); !isCode(err, 1213) {
		t.Errorf("twice-named reader's COMMIT: %v, want 1213", err)
	}
	// At SERIALIZABLE plain reads lock: such a reader is aborted too.
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE", "BEGIN", "SELECT v FROM r WHERE id = 1"} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if n, _ := srv.Proxy.AbortBlockers(nil, true, true); n != 1 {
		t.Fatalf("AbortBlockers(row locks only) with a SERIALIZABLE reader aborted %d, want 1", n)
	}
	if _, err := conn.ExecContext(context.Background(), "COMMIT"); !isCode(err, 1213) {
		t.Errorf("SERIALIZABLE reader's COMMIT after the abort: %v, want 1213", err)
	}
}

// testLogger logs to stderr when LOCKSTEP_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("LOCKSTEP_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestTxValidateReadsSwitch(t *testing.T) {
	srv, _, name := newTxProxy(t, nil)
	root := open(t, backend.RootDSN()+name)
	mustExec(t, root, "CREATE TABLE c (id INT PRIMARY KEY, n INT)")
	mustExec(t, root, "INSERT INTO c VALUES (1, 0)")
	a := open(t, srv.DSN("app", "apppw", name, ""))
	a.SetMaxOpenConns(1)
	b := open(t, srv.DSN("app", "apppw", name, ""))
	mustExec(t, a, "SET SESSION lockstep_validate_reads = OFF")
	if got := count(t, a, "SELECT @@lockstep_validate_reads"); got != 0 {
		t.Fatalf("@@lockstep_validate_reads = %d", got)
	}
	// A plain read is no longer checked: the InnoDB REPEATABLE READ lost update.
	lostUpdate := func(lock string) error {
		ta, err := a.Begin()
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := ta.QueryRow("SELECT n FROM c WHERE id = 1" + lock).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Exec("UPDATE c SET n = n + 1 WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
		if _, err := ta.Exec("UPDATE c SET n = ? WHERE id = 1", n+10); err != nil {
			_ = ta.Rollback()
			return err // the applier aborted the holder of the row lock
		}
		return ta.Commit()
	}
	if err := lostUpdate(""); err != nil {
		t.Fatalf("plain read with validation off: %v", err)
	}
	// A locking read still is: b's write aborts the holder or changes what it read.
	if err := lostUpdate(" FOR UPDATE"); !isCode(err, 1213) {
		t.Fatalf("locking read with validation off: %v", err)
	}
}

// TestTxWaitAborted: WaitAborted waits while a named session's transaction
// is open and returns as soon as it ends (ROLLBACK, or the session closes),
// not at its timeout.
func TestTxWaitAborted(t *testing.T) {
	srv, _, name := newTxProxy(t, nil)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	mustExec(t, db, "CREATE TABLE w (id INT PRIMARY KEY, v INT)")
	ctx := context.Background()
	openTx := func() (*sql.Conn, uint64) {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var id uint64
		if err := c.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"BEGIN", "INSERT INTO w VALUES (1, 1)"} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		return c, id
	}
	c, id := openTx()
	defer c.Close()
	start := time.Now()
	srv.Proxy.WaitAborted([]uint64{id}, 100*time.Millisecond)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("WaitAborted returned after %s with the transaction open, want its timeout", d)
	}
	start = time.Now()
	srv.Proxy.WaitAborted([]uint64{id + 1000}, time.Minute)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("WaitAborted for a session without a transaction took %s", d)
	}
	for _, end := range []string{"ROLLBACK", "close"} {
		if end == "close" {
			c, id = openTx()
		}
		done := make(chan time.Duration, 1)
		go func() {
			start := time.Now()
			srv.Proxy.WaitAborted([]uint64{id}, time.Minute)
			done <- time.Since(start)
		}()
		if end == "ROLLBACK" {
			if _, err := c.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Fatal(err)
			}
		} else {
			_ = c.Raw(func(any) error { return driver.ErrBadConn }) // drop the connection
			c.Close()
		}
		select {
		case d := <-done:
			t.Logf("%s: WaitAborted returned after %s", end, d)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: WaitAborted still waiting 30s after the transaction ended", end)
		}
	}
}

// TestTxAbortDuringDigest: the applier aborts a transaction while the
// second run of a prepared read (as text, for the commit's digest) runs,
// after the client already has its rows. The client must hear of it at
// its next statement or COMMIT (1213): the transaction must not carry on
// in autocommit mode with its COMMIT answered OK and its write gone (the
// list-append torture test found this: an acknowledged append lost).
func TestTxAbortDuringDigest(t *testing.T) {
	srv, _, name := newTxProxy(t, nil)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	root := open(t, backend.RootDSN()+name)
	mustExec(t, db, "CREATE TABLE d (id INT PRIMARY KEY, v INT)")
	mustExec(t, db, "INSERT INTO d VALUES (1, 0), (2, 0)")
	ctx := context.Background()
	for _, next := range []string{"COMMIT", "SELECT"} {
		t.Run(next, func(t *testing.T) {
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var id uint64
			if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
				t.Fatal(err)
			}
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := tx.Exec("UPDATE d SET v = v + 1 WHERE id = 1"); err != nil {
				t.Fatal(err)
			}
			// A prepared read (arguments, no interpolation) that takes a
			// while: the client's run answers, then the digest run takes
			// as long, and the abort lands in it.
			var n int
			if err := tx.QueryRow("SELECT COUNT(*) FROM seq_1_to_40000000 WHERE seq > ?", 1).Scan(&n); err != nil {
				t.Fatal(err)
			}
			aborted, busy := srv.Proxy.AbortBlockers([]uint64{id}, false, true)
			if aborted != 1 || len(busy) != 1 {
				t.Fatalf("AbortBlockers: %d aborted, busy %v; want the session, busy in its digest run", aborted, busy)
			}
			mustExec(t, root, fmt.Sprintf("KILL QUERY %d", id))
			if next == "SELECT" {
				var got int
				err := tx.QueryRow("SELECT v FROM d WHERE id = 2").Scan(&got)
				if !isCode(err, 1213) {
					t.Fatalf("the next statement after an abort the client was not told of: %v, want 1213", err)
				}
			}
			if err := tx.Commit(); !isCode(err, 1213) && next == "COMMIT" {
				t.Fatalf("COMMIT after an abort the client was not told of: %v, want 1213", err)
			}
			if got := count(t, root, "SELECT v FROM d WHERE id = 1"); got != 0 {
				t.Fatalf("the aborted transaction's write is in the table (v = %d)", got)
			}
		})
	}
}
