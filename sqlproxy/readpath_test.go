package sqlproxy_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/quorum"
	"github.com/lockstepdb/lockstep/sqlproxy"
	"github.com/lockstepdb/lockstep/sqlproxy/sqlproxytest"
)

// countingGate admits everything and counts the admissions.
type countingGate struct {
	gate
	reads, writes atomic.Int64
}

func (g *countingGate) Admit(write bool) error {
	if write {
		g.writes.Add(1)
	} else {
		g.reads.Add(1)
	}
	return g.gate.Admit(write)
}

// A prepared read is classified once, at PREPARE; each COM_STMT_EXECUTE is
// relayed as it came (binary parameters untouched) after the admission
// check, and answers exactly what MariaDB answers directly, for every
// parameter type the driver sends.
func TestPreparedReadRelayedUnparsed(t *testing.T) {
	g := &countingGate{}
	srv := sqlproxytest.NewServer(t, sqlproxytest.WithBackend(backend), sqlproxytest.WithGate(g))
	classified := sqlproxy.CountClassify(srv.Proxy)
	name := "t_prepared_read_relayed"
	root := open(t, backend.RootDSN())
	mustExec(t, root, "DROP DATABASE IF EXISTS "+name)
	mustExec(t, root, "CREATE DATABASE "+name)
	const params = "parseTime=false&maxAllowedPacket=0"
	proxy := open(t, srv.DSN("app", "apppw", name, params))
	direct := open(t, "app:apppw@tcp("+backend.Addr()+")/"+name+"?"+params)
	proxy.SetMaxOpenConns(1)
	mustExec(t, proxy, "CREATE TABLE r (id INT PRIMARY KEY, s VARCHAR(40), b BLOB, d DATETIME(6), f DOUBLE)")
	mustExec(t, proxy, "INSERT INTO r VALUES (1, 'one', x'00ff27', '2024-02-29 13:14:15.123456', 1.5), (2, NULL, NULL, NULL, NULL)")

	ctx := context.Background()
	pconn, err := proxy.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer pconn.Close()
	q := "SELECT ? AS v, CAST(? AS CHAR) AS t, (SELECT COUNT(*) FROM r WHERE id = ? OR s = ? OR d = ?) AS n"
	ps, err := pconn.PrepareContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	dps, err := direct.PrepareContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer dps.Close()

	ts := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC)
	args := []any{
		nil, true, false, int64(0), int64(-1) << 62, int64(127), int64(-32768), int64(1) << 40,
		uint64(1) << 63, uint64(18446744073709551615), 3.25, -2.5e-300, 1e300, float32(0.5),
		"", "it's \\ ünïcode ? -- x", strings.Repeat("x", 70000), []byte{0, 1, 0xff, '\'', '"'},
		[]byte{}, ts, time.Time{}, json.RawMessage(`{"a":[1,2]}`), sql.NullString{String: "one", Valid: true},
	}
	before := classified.Load()
	admits := g.reads.Load()
	for _, a := range args {
		var pv, pt, dv, dt sql.NullString
		var pn, dn int64
		if err := ps.QueryRowContext(ctx, a, a, a, a, a).Scan(&pv, &pt, &pn); err != nil {
			t.Fatalf("%T %v through the proxy: %v", a, shortArg(a), err)
		}
		if err := dps.QueryRowContext(ctx, a, a, a, a, a).Scan(&dv, &dt, &dn); err != nil {
			t.Fatalf("%T %v directly: %v", a, shortArg(a), err)
		}
		if pv != dv || pt != dt || pn != dn {
			t.Errorf("%T %v: proxy (%q, %q, %d), direct (%q, %q, %d)", a, shortArg(a), shortArg(pv.String), shortArg(pt.String), pn, shortArg(dv.String), shortArg(dt.String), dn)
		}
	}
	if n := classified.Load() - before; n != 0 {
		t.Errorf("%d statements classified while executing a prepared read", n)
	}
	if n := g.reads.Load() - admits; n < int64(len(args)) {
		t.Errorf("%d admission checks for %d executes", n, len(args))
	}

	// The admission check still refuses a prepared read (fenced: 1047).
	var e error = &quorum.Error{State: quorum.NoQuorum, Detail: "fenced"}
	g.err.Store(&e)
	var v sql.NullString
	var tt sql.NullString
	var n int64
	wantCode(t, ps.QueryRowContext(ctx, 1, 1, 1, 1, 1).Scan(&v, &tt, &n), 1047)
	g.err.Store(nil)
	if err := ps.QueryRowContext(ctx, 1, 1, 1, 1, 1).Scan(&v, &tt, &n); err != nil || n != 1 {
		t.Fatalf("after the fence lifted: %d, %v", n, err)
	}
}

// A prepared read inside a transaction is still recorded (and digested) for
// the commit: a conflicting change made meanwhile fails the commit.
func TestTxPreparedReadRecorded(t *testing.T) {
	srv, ord, name := newTxProxy(t, nil)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	mustExec(t, db, "CREATE TABLE k (id INT PRIMARY KEY, v INT)")
	mustExec(t, db, "INSERT INTO k VALUES (1, 10)")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := tx.QueryRow("SELECT v FROM k WHERE id = ?", 1).Scan(&v); err != nil || v != 10 {
		t.Fatalf("prepared read: %d, %v", v, err)
	}
	if _, err := tx.Exec("UPDATE k SET v = ? WHERE id = ?", v+1, 2); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	es := ord.entries()
	last := es[len(es)-1]
	found := false
	for _, s := range last.Stmts {
		if s.Read && strings.Contains(s.SQL, "SELECT v FROM k WHERE id = 1") && s.Expect != nil {
			found = true // with what the client saw (the rows' digest)
		}
	}
	if !found {
		b, _ := json.Marshal(last.Stmts)
		t.Fatalf("the prepared read is not in the transaction entry: %s", b)
	}
}

func shortArg(a any) any {
	if s, ok := a.(string); ok && len(s) > 40 {
		return s[:40] + "..."
	}
	return a
}
