package localdb

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/internal/mysqld"
)

func testLogger() *slog.Logger {
	if os.Getenv("LOCALDB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func startServer(t testing.TB, args ...string) *mysqld.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := mysqld.Start(ctx, mysqld.Options{Dir: t.TempDir(), Args: args})
	if err != nil {
		t.Fatalf("start mariadbd: %v", err)
	}
	t.Cleanup(func() { s.Kill() })
	return s
}

func openDB(t testing.TB, s *mysqld.Server, cfg Config) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg.DSN = s.RootDSN()
	db, err := Open(ctx, cfg, testLogger())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var seq uint64

// ent builds an entry with pinned time ts (seconds) and the given statements.
func ent(dbName string, ts int64, stmts ...command.Stmt) *command.Entry {
	seq++
	return &command.Entry{
		ID:     command.EntryID{Node: "n1", Seq: seq},
		Kind:   command.KindStatements,
		User:   "'root'@'127.0.0.1'",
		Stmts:  stmts,
		Ctx:    command.Context{DB: dbName},
		Pinned: command.Pinned{TimestampMicros: ts*1e6 + 123456, RandSeed1: 11, RandSeed2: 22},
	}
}

func ddl(q string) command.Stmt { return command.Stmt{SQL: q, DDL: true} }
func dml(q string) command.Stmt { return command.Stmt{SQL: q} }
func ins(table, q string) command.Stmt {
	return command.Stmt{SQL: q, InsertTable: table}
}

// ins1 is a one-row INSERT (the proxy's classify.Statement.InsertOne).
func ins1(table, q string) command.Stmt {
	return command.Stmt{SQL: q, InsertTable: table, InsertOne: true}
}

func mustApply(t testing.TB, db *DB, index uint64, entries ...*command.Entry) [][]command.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := db.Apply(ctx, index, entries)
	if err != nil {
		t.Fatalf("Apply(%d): %v", index, err)
	}
	return res
}

func noErr(t testing.TB, res [][]command.Result) {
	t.Helper()
	for i, er := range res {
		for j, r := range er {
			if r.Err != nil {
				t.Fatalf("entry %d stmt %d: unexpected error %v", i, j, r.Err)
			}
		}
	}
}

func sqlDB(t testing.TB, s *mysqld.Server) *sql.DB {
	t.Helper()
	d, err := sql.Open("mysql", s.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func checksum(t testing.TB, db *DB) map[string]string {
	t.Helper()
	m, err := db.Checksum(context.Background())
	if err != nil {
		t.Fatalf("Checksum: %v", err)
	}
	return m
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// workload is a sequence of records exercising pinned time, RAND, user
// variables, LAST_INSERT_ID, auto-increment and a mix of entries.
func workload() [][]*command.Entry {
	seq = 0
	e := func(ts int64, s ...command.Stmt) *command.Entry { return ent("app", ts, s...) }
	uv := e(1700000005, ins("t", "INSERT INTO t (v, r, ts) VALUES (@name, 0, NOW(6))"))
	uv.Ctx.UserVars = map[string]string{"name": "'from-a-user-var'"}
	li := e(1700000006, dml("UPDATE t SET v = CONCAT(v, '-', LAST_INSERT_ID()) WHERE id = 1"))
	li.Ctx.LastInsertID = 4242
	rnd := e(1700000004, command.Stmt{SQL: "INSERT INTO t (v, r, ts) VALUES ('rand', RAND(), NOW(6)), ('rand2', RAND(), SYSDATE(6))", InsertTable: "t", UsesRand: true})
	return [][]*command.Entry{
		{ent("", 1700000000, ddl("CREATE DATABASE app"))},
		{e(1700000001, ddl("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100) NOT NULL, r DOUBLE, ts DATETIME(6), UNIQUE KEY (v))"))},
		{e(1700000002, ins("t", "INSERT INTO t (v, r, ts) VALUES ('a', 0, NOW(6))")),
			e(1700000003, ins("app.t", "INSERT INTO t (v, r, ts) VALUES ('b', 0, CURRENT_TIMESTAMP(6)), ('c', 0, UTC_TIMESTAMP(6))"))},
		{rnd},
		{uv, li},
		{e(1700000007, dml("DELETE FROM t WHERE v = 'rand2'")), e(1700000008, ins("t", "INSERT INTO t (v) VALUES ('after-delete')"))},
		{e(1700000009, ins("t", "INSERT INTO t (v) VALUES ('x'), ('b')"))}, // duplicate key
		{}, // an empty record
		{e(1700000010, ddl("CREATE TABLE u (id BIGINT AUTO_INCREMENT PRIMARY KEY, t_id INT, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))")),
			e(1700000011, ins("u", "INSERT INTO u (t_id) SELECT id FROM t ORDER BY id"))},
	}
}

func TestApplyIdenticalOnTwoServers(t *testing.T) {
	sa, sb := startServer(t), startServer(t)
	a, b := openDB(t, sa, Config{}), openDB(t, sb, Config{})
	// Make b's local counters and session differ from a's.
	if _, err := sqlDB(t, sb).Exec("SET GLOBAL auto_increment_increment = 1"); err != nil {
		t.Fatal(err)
	}
	var resA, resB [][][]command.Result
	for i, rec := range workload() {
		resA = append(resA, mustApply(t, a, uint64(i+1), rec...))
	}
	for i, rec := range workload() {
		resB = append(resB, mustApply(t, b, uint64(i+1), rec...))
	}
	if fmt.Sprint(resA) != fmt.Sprint(resB) {
		t.Fatalf("results differ:\n a=%v\n b=%v", resA, resB)
	}
	ia, ha := a.OutcomeHash()
	ib, hb := b.OutcomeHash()
	if ia != 9 || ia != ib || ha != hb || ha == zeroHash {
		t.Fatalf("outcome hashes: a=%d/%s b=%d/%s", ia, ha, ib, hb)
	}
	ca, cb := checksum(t, a), checksum(t, b)
	if len(ca) != 2 || !sameMap(ca, cb) {
		t.Fatalf("checksums differ or wrong tables: a=%v b=%v", ca, cb)
	}
	// Duplicate key is a result, with MariaDB's code, state and message.
	dup := resA[6][0][0]
	if dup.Err == nil || dup.Err.Code != 1062 || dup.Err.State != "23000" || !strings.Contains(dup.Err.Message, "Duplicate entry 'b'") {
		t.Fatalf("duplicate insert result = %+v", dup)
	}
	var n int
	if err := sqlDB(t, sa).QueryRow("SELECT COUNT(*) FROM app.t WHERE v = 'x'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("failed multi-row insert left %d rows (err %v); want statement rollback", n, err)
	}
	// Ids: a=1, b=2, c=3, rand=4, rand2=5, user var=6, after-delete=7 (5 not reused).
	if got := resA[5][1][0].LastInsertID; got != 7 {
		t.Fatalf("insert after deleting the max row got id %d, want 7", got)
	}
	if got := resA[2][1][0]; got.LastInsertID != 2 || got.AffectedRows != 2 || !strings.Contains(got.Info, "Records: 2") {
		t.Fatalf("multi-row insert result = %+v", got)
	}
	// Pinned time, user variable and LAST_INSERT_ID took effect.
	var v, ts string
	if err := sqlDB(t, sa).QueryRow("SELECT v, ts FROM app.t WHERE id = 1").Scan(&v, &ts); err != nil {
		t.Fatal(err)
	}
	if v != "a-4242" || !strings.HasPrefix(ts, "2023-11-14") {
		t.Fatalf("row 1 = %q %q", v, ts)
	}
	if err := sqlDB(t, sb).QueryRow("SELECT v FROM app.t WHERE id = 6").Scan(&v); err != nil || v != "from-a-user-var" {
		t.Fatalf("user var row = %q, %v", v, err)
	}
}
