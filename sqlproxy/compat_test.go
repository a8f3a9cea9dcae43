package sqlproxy_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// Client compatibility cases found by running go-sql-driver's own
// integration tests through a node (e2e TestDriverSuite); each is answered
// here as MariaDB answers it.

// TestCommentOnlyQuery: a query of nothing but a comment is not an error
// (MariaDB answers it with an empty OK); an empty one is 1065.
func TestCommentOnlyQuery(t *testing.T) {
	srv, name := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	for _, q := range []string{"--", "-- nothing", "/* nothing */", "# nothing"} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		if rows.Next() {
			t.Fatalf("%q returned a row", q)
		}
		rows.Close()
	}
	_, err := db.Exec(" ")
	wantCode(t, err, 1065)
}

// TestNoBackslashEscapesInterpolated: with sql_mode NO_BACKSLASH_ESCAPES
// the driver's interpolateParams escapes only quotes; a value holding a
// backslash, quotes and control bytes is written and read back unchanged,
// through the text protocol and through prepared statements.
func TestNoBackslashEscapesInterpolated(t *testing.T) {
	srv, name := newProxy(t)
	v := "foo \x00\n\r\x1a\"'\\"
	for i, params := range []string{"sql_mode='NO_BACKSLASH_ESCAPES'&interpolateParams=true", "sql_mode='NO_BACKSLASH_ESCAPES'"} {
		db := open(t, srv.DSN("app", "apppw", name, params))
		if i == 0 {
			mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(255))")
		}
		mustExec(t, db, "INSERT INTO t VALUES (?, ?)", i, v)
		var out string
		if err := db.QueryRow("SELECT v FROM t WHERE id = ? AND v = ?", i, v).Scan(&out); err != nil {
			t.Fatalf("%s: %v", params, err)
		}
		if out != v {
			t.Fatalf("%s: read back %q, want %q", params, out, v)
		}
	}
}

// TestReadOnlySession: after SET SESSION TRANSACTION READ ONLY a write is
// refused with MariaDB's 1792 (SQLSTATE 25006), which go-sql-driver's
// rejectReadOnly turns into a reconnect; READ WRITE allows writes again.
func TestReadOnlySession(t *testing.T) {
	srv, name := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	db.SetMaxOpenConns(1)
	mustExec(t, db, "CREATE TABLE t (v INT)")
	mustExec(t, db, "SET SESSION TRANSACTION READ ONLY")
	for _, q := range []string{"INSERT INTO t VALUES (1)", "DROP TABLE t"} {
		_, err := db.Exec(q)
		if me := wantCode(t, err, 1792); string(me.SQLState[:]) != "25006" {
			t.Fatalf("%s: SQLSTATE %s, want 25006", q, me.SQLState)
		}
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("read in a read-only session: %d, %v", n, err)
	}
	mustExec(t, db, "SET SESSION TRANSACTION READ WRITE")
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	// rejectReadOnly: the driver drops the connection on 1792 and retries
	// on a new one, which is not read-only.
	rr := open(t, srv.DSN("app", "apppw", name, "rejectReadOnly=true"))
	rr.SetMaxOpenConns(1)
	mustExec(t, rr, "SET SESSION TRANSACTION READ ONLY")
	mustExec(t, rr, "INSERT INTO t VALUES (2)")
}

// TestWaitTimeoutClosesIdleClient: a session that sets a short wait_timeout
// is closed by the proxy once idle that long, as MariaDB closes it, so a
// driver's stale-connection check sees the closed socket before it sends
// anything (go-sql-driver's TestStaleConnectionChecks).
func TestWaitTimeoutClosesIdleClient(t *testing.T) {
	srv, name := newProxy(t)
	c, err := client.Connect(srv.Addr(), "app", "apppw", name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Execute("SET @@SESSION.wait_timeout = 1"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	nc := c.Conn.Conn
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := nc.Read(make([]byte, 64))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("idle client after wait_timeout=1: read %d bytes, %v; want the connection closed (EOF)", n, err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("closed after %s, before the wait_timeout of 1 s", d)
	}
}

// TestStatementTooLargeToReplicate: a prepared INSERT whose parameter,
// sent as long data, makes its text larger than the backends'
// max_allowed_packet is refused with 1153 before it reaches the backend
// or the log (replicated as text, it would stall every applier), and the
// connection stays usable.
func TestStatementTooLargeToReplicate(t *testing.T) {
	srv, name := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", name, "maxAllowedPacket=0"))
	db.SetMaxOpenConns(1)
	var max int
	if err := db.QueryRow("SELECT @@max_allowed_packet").Scan(&max); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "CREATE TABLE t (v LONGBLOB)")
	_, err := db.Exec("INSERT INTO t VALUES (?)", strings.Repeat("a", max))
	if me := wantCode(t, err, 1153); !strings.Contains(me.Message, "raise max_allowed_packet on every node") {
		t.Fatalf("message %q does not say what to do", me.Message)
	}
	mustExec(t, db, "INSERT INTO t VALUES (?)", strings.Repeat("b", 2<<20)) // large, but it fits
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after the refusal: %d rows, %v", n, err)
	}
}

// TestSleepInInsert: INSERT ... VALUES (SLEEP(n)) waits n seconds at the
// origin and inserts SLEEP()'s result, 0, autocommit and in a transaction.
func TestSleepInInsert(t *testing.T) {
	srv, name := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	mustExec(t, db, "CREATE TABLE t (v INT)")
	start := time.Now()
	mustExec(t, db, "INSERT INTO t VALUES (SLEEP(0.3))")
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("INSERT ... SLEEP(0.3) returned after %s", d)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if _, err := tx.Exec("INSERT INTO t VALUES (SLEEP(0.2) + 1)"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("INSERT ... SLEEP(0.2) in a transaction returned after %s", d)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := db.QueryRow("SELECT GROUP_CONCAT(v ORDER BY v) FROM t").Scan(&got); err != nil || got != "0,1" {
		t.Fatalf("rows %q (%v), want 0,1", got, err)
	}
}
