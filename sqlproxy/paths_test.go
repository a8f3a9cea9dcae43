package sqlproxy_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/internal/testutil"
	"github.com/lockstepdb/lockstep/quorum"
	"github.com/lockstepdb/lockstep/sqlproxy/sqlproxytest"
)

// COM_STMT_SEND_LONG_DATA: go-sql-driver sends a []byte parameter as long
// data when it is larger than maxAllowedPacket/(params+1).
func TestPreparedLongData(t *testing.T) {
	srv, name := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", name, "maxAllowedPacket=300000"))
	mustExec(t, db, "CREATE TABLE l (id INT PRIMARY KEY, b LONGBLOB, s LONGTEXT)")
	before := len(srv.Orderer.Entries())
	big := bytes.Repeat([]byte{0, 0xff, 'a', '\''}, 100000) // 400 kB > 300000/3
	text := strings.Repeat("ü'\\", 40000)
	if _, err := db.Exec("INSERT INTO l VALUES (?, ?, ?)", 1, big, []byte(text)); err != nil {
		t.Fatal(err)
	}
	var b []byte
	var s string
	if err := db.QueryRow("SELECT b, s FROM l WHERE id = ?", 1).Scan(&b, &s); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, big) || s != text {
		t.Fatalf("long data round trip: %d/%d bytes, text equal %v", len(b), len(big), s == text)
	}
	es := srv.Orderer.Entries()[before:]
	if len(es) != 1 || !strings.HasPrefix(es[0].Stmts[0].SQL, "INSERT INTO l VALUES (1, _binary X'00ff6127") {
		t.Fatalf("ordered: %d entries", len(es))
	}
}

func TestSessionContextTravels(t *testing.T) {
	srv, name := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mustExec(t, conn, "CREATE TABLE c (id INT PRIMARY KEY, ts VARCHAR(40))")
	mustExec(t, conn, "SET time_zone = '+05:30', sql_mode = 'STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES'")
	mustExec(t, conn, `INSERT INTO c VALUES (1, 'a\b')`)
	es := srv.Orderer.Entries()
	e := es[len(es)-1]
	if e.Ctx.Vars["time_zone"] != "'+05:30'" || !strings.Contains(e.Ctx.Vars["sql_mode"], "NO_BACKSLASH_ESCAPES") || e.Ctx.DB != name {
		t.Fatalf("context: db=%q vars=%v", e.Ctx.DB, e.Ctx.Vars)
	}
	var v string
	if err := conn.QueryRowContext(context.Background(), "SELECT ts FROM c WHERE id = 1").Scan(&v); err != nil || v != `a\b` {
		t.Fatalf("value %q, %v", v, err)
	}
	if e.Pinned.TimestampMicros == 0 || e.User != "'app'@'127.0.0.1'" {
		t.Fatalf("entry: %+v", e)
	}
}

type gate struct{ err atomic.Pointer[error] }

func (g *gate) Admit(write bool) error {
	if p := g.err.Load(); p != nil {
		return *p
	}
	return nil
}

func TestGateAndOrdererErrors(t *testing.T) {
	g := &gate{}
	srv := sqlproxytest.NewServer(t, sqlproxytest.WithBackend(backend), sqlproxytest.WithGate(g))
	db := open(t, srv.DSN("app", "apppw", "app", ""))
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS app.g (id INT PRIMARY KEY)")
	var e error = &quorum.Error{State: quorum.NoQuorum, Detail: "fenced"}
	g.err.Store(&e)
	_, err := db.Exec("INSERT INTO app.g VALUES (1)")
	if me := wantCode(t, err, 1047); me.Message != "Lockstep: this node has no quorum (fenced); it serves no reads or writes until it rejoins the majority. Connect to another node." {
		t.Fatal(me.Message)
	}
	var one int
	wantCode(t, db.QueryRow("SELECT 1").Scan(&one), 1047)
	e = errors.New("something odd")
	g.err.Store(&e)
	_, err = db.Exec("INSERT INTO app.g VALUES (1)")
	wantCode(t, err, 1105)
	g.err.Store(nil)

	for _, c := range []struct {
		err  error
		code uint16
	}{
		{command.ErrNoLeader, 1047},
		{command.ErrOutcomeUnknown, 1180},
		{command.ErrShuttingDown, 1053},
		{context.DeadlineExceeded, 1180},
	} {
		srv.Orderer.SetFail(c.err)
		_, err := db.Exec("INSERT INTO app.g VALUES (2)")
		me := wantCode(t, err, c.code)
		if !strings.HasPrefix(me.Message, "Lockstep: ") {
			t.Errorf("%v: message %q", c.err, me.Message)
		}
	}
	srv.Orderer.SetFail(nil)
	mustExec(t, db, "INSERT INTO app.g VALUES (3) ON DUPLICATE KEY UPDATE id = id")
}

type reads struct{ barriers, waits atomic.Int64 }

func (r *reads) Barrier(context.Context) (uint64, error) { r.barriers.Add(1); return 7, nil }
func (r *reads) WaitApplied(_ context.Context, i uint64) error {
	if i == 7 {
		r.waits.Add(1)
	}
	return nil
}

func TestLinearizableReads(t *testing.T) {
	r := &reads{}
	srv := sqlproxytest.NewServer(t, sqlproxytest.WithBackend(backend), sqlproxytest.WithReads(r))
	db := open(t, srv.DSN("app", "apppw", "app", ""))
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var one int
	_ = conn.QueryRowContext(context.Background(), "SELECT 1").Scan(&one)
	if r.barriers.Load() != 0 {
		t.Fatal("barrier without the switch")
	}
	mustExec(t, conn, "SET SESSION lockstep_linearizable_reads = ON")
	var on int
	if err := conn.QueryRowContext(context.Background(), "SELECT @@lockstep_linearizable_reads").Scan(&on); err != nil || on != 1 {
		t.Fatalf("switch = %d, %v", on, err)
	}
	if err := conn.QueryRowContext(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	if r.barriers.Load() != 1 || r.waits.Load() != 1 {
		t.Fatalf("barriers=%d waits=%d", r.barriers.Load(), r.waits.Load())
	}
	// Without a Reads provider the switch is refused.
	plain := sqlproxytest.NewServer(t, sqlproxytest.WithBackend(backend))
	_, err = open(t, plain.DSN("app", "apppw", "app", "")).Exec("SET lockstep_linearizable_reads = 1")
	wantCode(t, err, 1235)
}

// Server-side prepared writes are ordered (not executed on the backend
// session), and prepared reads are relayed.
func TestPreparedWritesAreOrdered(t *testing.T) {
	srv, name := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	mustExec(t, db, "CREATE TABLE w (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10))")
	before := len(srv.Orderer.Entries())
	stmt, err := db.Prepare("INSERT INTO w (v) VALUES (?)")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	for i, v := range []any{"x", nil, "z"} {
		r, err := stmt.Exec(v)
		if err != nil {
			t.Fatal(err)
		}
		if id, _ := r.LastInsertId(); id != int64(i+1) {
			t.Fatalf("insert id %d", id)
		}
	}
	es := srv.Orderer.Entries()[before:]
	if len(es) != 3 || es[1].Stmts[0].SQL != "INSERT INTO w (v) VALUES (NULL)" {
		t.Fatalf("ordered %d entries: %+v", len(es), es)
	}
	_, err = db.Prepare("XA START 'x'")
	wantCode(t, err, 1235)
}

func TestConcurrentSessionsAndClose(t *testing.T) {
	srv, name := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	db.SetMaxOpenConns(16)
	mustExec(t, db, "CREATE TABLE k (id INT AUTO_INCREMENT PRIMARY KEY, w INT)")
	errc := make(chan error, 16)
	for w := 0; w < 16; w++ {
		go func() {
			for i := 0; i < 20; i++ {
				if _, err := db.Exec("INSERT INTO k (w) VALUES (?)", w); err != nil {
					errc <- err
					return
				}
				var n int
				if err := db.QueryRow("SELECT COUNT(*) FROM k WHERE w = ?", w).Scan(&n); err != nil || n != i+1 {
					errc <- errors.New("read-your-writes violated")
					return
				}
			}
			errc <- nil
		}()
	}
	for w := 0; w < 16; w++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	// Close ends a session blocked in a long read and waits for it.
	slow := make(chan error, 1)
	go func() {
		_, err := db.Exec("SELECT SLEEP(60)")
		slow <- err
	}()
	root := open(t, backend.RootDSN())
	testutil.Eventually(t, 10*time.Second, "the slow query to start", func() bool {
		var n int
		if err := root.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(60)'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	start := time.Now()
	if err := srv.Proxy.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if err := <-slow; err == nil {
		t.Fatal("query survived Close")
	}
}
