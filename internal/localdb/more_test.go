package localdb

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/command"
)

func TestReplayOfAppliedIndexIsSkipped(t *testing.T) {
	s := startServer(t)
	db := openDB(t, s, Config{})
	mustApply(t, db, 1, ent("", 1700000000, ddl("CREATE DATABASE app")))
	mustApply(t, db, 2, ent("app", 1700000001, ddl("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")))
	res := mustApply(t, db, 5, ent("app", 1700000002, ins("t", "INSERT INTO t (v) VALUES (1)")))
	noErr(t, res)
	_, h := db.OutcomeHash()
	if res := mustApply(t, db, 5, ent("app", 1700000002, ins("t", "INSERT INTO t (v) VALUES (1)"))); res != nil {
		t.Fatalf("replay of applied index returned %v", res)
	}
	if res := mustApply(t, db, 3, ent("app", 1700000002, ins("t", "INSERT INTO t (v) VALUES (1)"))); res != nil {
		t.Fatalf("replay of an older index returned %v", res)
	}
	db.Close()
	db2 := openDB(t, s, Config{})
	if idx, _ := db2.AppliedIndex(context.Background()); idx != 5 {
		t.Fatalf("AppliedIndex after reopen = %d, want 5", idx)
	}
	if i, h2 := db2.OutcomeHash(); i != 5 || h2 != h {
		t.Fatalf("OutcomeHash after reopen = %d/%s, want 5/%s", i, h2, h)
	}
	if res := mustApply(t, db2, 5, ent("app", 1700000002, ins("t", "INSERT INTO t (v) VALUES (1)"))); res != nil {
		t.Fatalf("replay after reopen returned %v", res)
	}
	var n int
	if err := sqlDB(t, s).QueryRow("SELECT COUNT(*) FROM app.t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows = %d (%v), want 1", n, err)
	}
	// An empty record just advances the index.
	if res := mustApply(t, db2, 6); len(res) != 0 {
		t.Fatalf("empty record returned %v", res)
	}
	if idx, _ := db2.AppliedIndex(context.Background()); idx != 6 {
		t.Fatalf("AppliedIndex = %d, want 6", idx)
	}
}

// ddlRecords has DDL in the middle of records, so a crash right after a DDL
// leaves a record half applied.
func ddlRecords() [][]*command.Entry {
	seq = 0
	e := func(ts int64, s ...command.Stmt) *command.Entry { return ent("app", ts, s...) }
	return [][]*command.Entry{
		{ent("", 1700000000, ddl("CREATE DATABASE app"))},
		{e(1700000001, ddl("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"))},
		{e(1700000002, ins("t", "INSERT INTO t (v) VALUES (1)")),
			e(1700000003, ddl("CREATE TABLE u (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")),
			e(1700000004, ins("u", "INSERT INTO u (v) VALUES (2)"), ddl("ALTER TABLE t ADD COLUMN w INT NOT NULL DEFAULT 7"), ins("t", "INSERT INTO t (v) VALUES (3)"))},
		{e(1700000005, ddl("CREATE USER 'bob'@'%' IDENTIFIED BY 'x'")), e(1700000006, ddl("GRANT SELECT ON app.* TO 'bob'@'%'"))},
		{e(1700000007, ddl("DROP TABLE u")), e(1700000008, ddl("CREATE TABLE IF NOT EXISTS t (id INT)"))},
	}
}

func TestDDLExactlyOnceAcrossCrashWindow(t *testing.T) {
	sref, s := startServer(t), startServer(t)
	ref, db := openDB(t, sref, Config{}), openDB(t, s, Config{})
	var want [][][]command.Result
	for i, rec := range ddlRecords() {
		want = append(want, mustApply(t, ref, uint64(i+1), rec...))
	}
	// On db, every DDL "crashes" right after it ran, before its completion is
	// recorded: Apply fails, and the next Apply of the same index must not run
	// that DDL again.
	var crashes atomic.Int32
	crashed := map[[2]uint64]bool{}
	hooks(db).afterDDL = func() error {
		at := [2]uint64{db.st.ddlIdx, uint64(db.st.ddlPos)}
		if !crashed[at] {
			crashed[at] = true
			crashes.Add(1)
			return errors.New("simulated crash after DDL")
		}
		return nil
	}
	ctx := context.Background()
	var got [][][]command.Result
	for i, rec := range ddlRecords() {
		idx := uint64(i + 1)
		var res [][]command.Result
		for attempt := 0; ; attempt++ {
			if attempt > 10 {
				t.Fatalf("index %d did not apply", idx)
			}
			var err error
			res, err = db.Apply(ctx, idx, rec)
			if err == nil {
				break
			}
			if !strings.Contains(err.Error(), "simulated crash") {
				t.Fatalf("Apply(%d): %v", idx, err)
			}
		}
		got = append(got, res)
	}
	if crashes.Load() < 8 {
		t.Fatalf("only %d simulated crashes", crashes.Load())
	}
	for i := range want {
		for j := range want[i] {
			for k := range want[i][j] {
				w, g := want[i][j][k], got[i][j][k]
				if (w.Err == nil) != (g.Err == nil) || w.LastInsertID != g.LastInsertID {
					t.Fatalf("record %d entry %d stmt %d: reference %+v, crashed node %+v", i+1, j, k, w, g)
				}
			}
		}
	}
	ir, hr := ref.OutcomeHash()
	id, hd := db.OutcomeHash()
	if ir != id || hr != hd {
		t.Fatalf("outcome hash: reference %d/%s, crashed node %d/%s", ir, hr, id, hd)
	}
	if a, b := checksum(t, ref), checksum(t, db); !sameMap(a, b) {
		t.Fatalf("checksums differ: %v vs %v", a, b)
	}
	var cols int
	if err := sqlDB(t, s).QueryRow("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='app' AND TABLE_NAME='t'").Scan(&cols); err != nil || cols != 3 {
		t.Fatalf("app.t has %d columns (%v), want 3", cols, err)
	}
	// The same after a real reconnect: reopen and replay everything.
	db.Close()
	db2 := openDB(t, s, Config{})
	for i, rec := range ddlRecords() {
		if res := mustApply(t, db2, uint64(i+1), rec...); res != nil {
			t.Fatalf("replay of %d ran: %v", i+1, res)
		}
	}
}

func TestDDLPendingAfterReopen(t *testing.T) {
	// The crash window with a real reopen: the DDL ran, the process "died"
	// (Apply failed, DB closed), a new DB on the same server must skip it.
	s := startServer(t)
	db := openDB(t, s, Config{})
	mustApply(t, db, 1, ent("", 1700000000, ddl("CREATE DATABASE app")))
	hooks(db).afterDDL = func() error { return errors.New("simulated crash after DDL") }
	create := ent("app", 1700000001, ddl("CREATE TABLE t (id INT PRIMARY KEY)"), ins("t", "INSERT INTO t VALUES (1)"))
	if _, err := db.Apply(context.Background(), 2, []*command.Entry{create}); err == nil {
		t.Fatal("Apply did not fail")
	}
	db.Close()
	db2 := openDB(t, s, Config{})
	if idx, _ := db2.AppliedIndex(context.Background()); idx != 1 {
		t.Fatalf("AppliedIndex = %d, want 1", idx)
	}
	res := mustApply(t, db2, 2, create)
	if res[0][0].Err != nil || res[0][1].Err != nil {
		t.Fatalf("results after reopen: %+v (CREATE TABLE must not run twice)", res)
	}
}

func TestCheckSettingsRefusesAutoincLockMode2(t *testing.T) {
	s := startServer(t, "--innodb-autoinc-lock-mode=2")
	db := openDB(t, s, Config{})
	err := db.CheckSettings(context.Background())
	if err == nil || !strings.Contains(err.Error(), "set innodb_autoinc_lock_mode=1 in the server config") {
		t.Fatalf("CheckSettings = %v", err)
	}
	st, err := db.Settings(context.Background())
	if err != nil || st.AutoincLockMode != 2 || st.CharacterSetServer != "utf8mb4" {
		t.Fatalf("Settings = %+v, %v", st, err)
	}
}

func TestCheckSettingsAcceptsDefaults(t *testing.T) {
	s := startServer(t)
	db := openDB(t, s, Config{})
	if err := db.CheckSettings(context.Background()); err != nil {
		t.Fatalf("CheckSettings = %v", err)
	}
}

func TestAutoIncPinnedFromReplicatedState(t *testing.T) {
	sa, sb := startServer(t), startServer(t)
	a, b := openDB(t, sa, Config{}), openDB(t, sb, Config{})
	setup := [][]*command.Entry{
		{ent("", 1700000000, ddl("CREATE DATABASE app"))},
		{ent("app", 1700000001, ddl("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"))},
		{ent("app", 1700000002, ins("t", "INSERT INTO t (v) VALUES (1), (2)"))},
	}
	for i, rec := range setup {
		mustApply(t, a, uint64(i+1), rec...)
		mustApply(t, b, uint64(i+1), rec...)
	}
	// An optimistic transaction on a's origin takes ids and rolls back: a's
	// InnoDB counter runs ahead.
	raw := sqlDB(t, sa)
	tx, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO app.t (v) VALUES (9), (9), (9), (9), (9)"); err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	var next int
	raw.QueryRow("SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA='app' AND TABLE_NAME='t'").Scan(&next)
	if next < 8 {
		t.Fatalf("InnoDB counter on a is %d; the test needs it ahead", next)
	}
	inc := ent("app", 1700000003, ins("t", "INSERT INTO t (v) VALUES (3), (4)"))
	inc2 := ent("app", 1700000004, ins("t", "INSERT INTO t (v) VALUES (5)"))
	inc2.Ctx.Vars = map[string]string{"auto_increment_increment": "10", "auto_increment_offset": "3"}
	recs := [][]*command.Entry{{inc}, {inc2}, {ent("app", 1700000005, ins("t", "INSERT INTO t (v) VALUES (6)"))}}
	for i, rec := range recs {
		ra := mustApply(t, a, uint64(10+i), rec...)
		rb := mustApply(t, b, uint64(10+i), rec...)
		if ra[0][0].LastInsertID != rb[0][0].LastInsertID {
			t.Fatalf("record %d: ids differ: a=%d b=%d", i, ra[0][0].LastInsertID, rb[0][0].LastInsertID)
		}
		want := []uint64{3, 13, 14}[i]
		if ra[0][0].LastInsertID != want {
			t.Fatalf("record %d: id %d, want %d", i, ra[0][0].LastInsertID, want)
		}
	}
	if ca, cb := checksum(t, a), checksum(t, b); !sameMap(ca, cb) {
		t.Fatalf("checksums differ: %v vs %v", ca, cb)
	}
	if _, ha := a.OutcomeHash(); true {
		if _, hb := b.OutcomeHash(); ha != hb {
			t.Fatalf("outcome hashes differ")
		}
	}
}

func TestNoDefaultDatabaseAfterOne(t *testing.T) {
	s := startServer(t)
	db := openDB(t, s, Config{})
	mustApply(t, db, 1, ent("", 1700000000, ddl("CREATE DATABASE app")))
	mustApply(t, db, 2, ent("app", 1700000001, ddl("CREATE TABLE t (id INT PRIMARY KEY)")))
	res := mustApply(t, db, 3,
		ent("app", 1700000002, ins("t", "INSERT INTO t VALUES (1)")),
		ent("", 1700000003, ins("t", "INSERT INTO t VALUES (2)")),
		ent("", 1700000004, ins("app.t", "INSERT INTO app.t VALUES (3)")))
	if res[0][0].Err != nil || res[2][0].Err != nil {
		t.Fatalf("results %+v", res)
	}
	if e := res[1][0].Err; e == nil || e.Code != 1046 {
		t.Fatalf("unqualified insert without a default database: %+v, want error 1046", res[1][0])
	}
}

func TestWarningsAndUnknownDatabase(t *testing.T) {
	s := startServer(t)
	db := openDB(t, s, Config{})
	mustApply(t, db, 1, ent("", 1700000000, ddl("CREATE DATABASE app")))
	mustApply(t, db, 2, ent("app", 1700000001, ddl("CREATE TABLE t (id INT PRIMARY KEY, c CHAR(2))")))
	e := ent("app", 1700000002, ins("t", "INSERT INTO t VALUES (1, 'abcdef')"))
	e.Ctx.Vars = map[string]string{"sql_mode": "''"}
	res := mustApply(t, db, 3, e, ent("nosuchdb", 1700000003, dml("DELETE FROM t")))
	if w := res[0][0].Warnings; len(w) != 1 || w[0].Code != 1265 || w[0].Level != "Warning" {
		t.Fatalf("warnings = %+v", res[0][0])
	}
	if e := res[1][0].Err; e == nil || e.Code != 1049 {
		t.Fatalf("statement in an unknown database: %+v, want 1049", res[1][0])
	}
	// sql_mode goes back to the server default for an entry without it:
	// strict mode refuses the long value.
	res = mustApply(t, db, 4, ent("app", 1700000004, ins("t", "INSERT INTO t VALUES (2, 'abcdef')")))
	if e := res[0][0].Err; e == nil || e.Code != 1406 {
		t.Fatalf("strict insert: %+v, want 1406", res[0][0])
	}
}

func TestLockWaitTimeoutReRunsRecord(t *testing.T) {
	// Another session holds a row lock the applier needs longer than
	// innodb_lock_wait_timeout: the 1205 is not a result; the record is
	// re-run and applied exactly once.
	s := startServer(t, "--innodb-lock-wait-timeout=2")
	db := openDB(t, s, Config{})
	mustApply(t, db, 1, ent("", 1700000000, ddl("CREATE DATABASE app")))
	mustApply(t, db, 2, ent("app", 1700000001, ddl("CREATE TABLE t (id INT PRIMARY KEY, v INT)")))
	mustApply(t, db, 3, ent("app", 1700000002, dml("INSERT INTO t VALUES (1, 0), (2, 0)")))
	raw := sqlDB(t, s)
	conn, err := raw.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "UPDATE app.t SET v = 100 WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	// Release the lock once the applier's first attempt timed out (1205)
	// and the record is being re-run.
	restarted := make(chan struct{})
	var once sync.Once
	hooks(db).onRestart = func() { once.Do(func() { close(restarted) }) }
	go func() {
		select {
		case <-restarted:
		case <-time.After(60 * time.Second):
		}
		conn.ExecContext(context.Background(), "ROLLBACK")
	}()
	res := mustApply(t, db, 4, ent("app", 1700000003, dml("UPDATE t SET v = v + 1 WHERE id = 1")), ent("app", 1700000004, dml("UPDATE t SET v = v + 1 WHERE id = 2")))
	noErr(t, res)
	var v1, v2 int
	if err := raw.QueryRow("SELECT (SELECT v FROM app.t WHERE id=1), (SELECT v FROM app.t WHERE id=2)").Scan(&v1, &v2); err != nil {
		t.Fatal(err)
	}
	if v1 != 1 || v2 != 1 {
		t.Fatalf("v = %d, %d; want 1, 1 (record applied exactly once)", v1, v2)
	}
}

func TestRetryAfterLostCommitReturnsResults(t *testing.T) {
	s := startServer(t)
	db := openDB(t, s, Config{})
	mustApply(t, db, 1, ent("", 1700000000, ddl("CREATE DATABASE app")))
	mustApply(t, db, 2, ent("app", 1700000001, ddl("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")))
	rec := []*command.Entry{ent("app", 1700000002, ins("t", "INSERT INTO t (v) VALUES (1), (2)")), ent("app", 1700000003, ins("t", "INSERT INTO t (v) VALUES (3)"))}
	hooks(db).afterCommit = func() error { return errors.New("connection lost after COMMIT") }
	if _, err := db.Apply(context.Background(), 3, rec); err == nil {
		t.Fatal("Apply did not fail")
	}
	hooks(db).afterCommit = nil
	res := mustApply(t, db, 3, rec...)
	if len(res) != 2 || res[0][0].LastInsertID != 1 || res[0][0].AffectedRows != 2 || res[1][0].LastInsertID != 3 {
		t.Fatalf("retry returned %+v, want the recorded results", res)
	}
	var n int
	if err := sqlDB(t, s).QueryRow("SELECT COUNT(*) FROM app.t").Scan(&n); err != nil || n != 3 {
		t.Fatalf("rows = %d (%v), want 3: the record must not run twice", n, err)
	}
	if res := mustApply(t, db, 3, rec...); res != nil {
		t.Fatalf("a later replay returned %v", res)
	}
}

func TestDropOfTheDefaultDatabase(t *testing.T) {
	// After DROP DATABASE of the session's default database, a statement in
	// that database fails with 1049 exactly as on a node whose applier
	// session is fresh (not with 1046).
	s := startServer(t)
	db := openDB(t, s, Config{})
	mustApply(t, db, 1, ent("", 1700000000, ddl("CREATE DATABASE app")))
	mustApply(t, db, 2, ent("app", 1700000001, ddl("CREATE TABLE t (id INT PRIMARY KEY)")))
	res := mustApply(t, db, 3, ent("app", 1700000002, ddl("DROP DATABASE app")), ent("app", 1700000003, ins("t", "INSERT INTO t VALUES (1)")))
	if res[0][0].Err != nil {
		t.Fatalf("DROP DATABASE: %+v", res[0][0])
	}
	if e := res[1][0].Err; e == nil || e.Code != 1049 {
		t.Fatalf("insert into the dropped database: %+v, want 1049", res[1][0])
	}
}

// TestOneRoundTripSetupFailures: the session setup travels with the
// statement in one multi-statement round trip; a failing USE or SET in
// the middle of a record still gives each statement the result it had with
// separate round trips, and the record goes on.
func TestOneRoundTripSetupFailures(t *testing.T) {
	s := startServer(t)
	db := openDB(t, s, Config{})
	mustApply(t, db, 1, ent("", 1700000000, ddl("CREATE DATABASE app")))
	mustApply(t, db, 2, ent("app", 1700000001, ddl("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, tz VARCHAR(64))")))
	bad := ent("app", 1700000002, ins("t", "INSERT INTO t (tz) VALUES (@@time_zone)"))
	bad.Ctx.Vars = map[string]string{"time_zone": "'No/Such_Zone'"}
	res := mustApply(t, db, 3,
		bad,
		ent("nosuchdb", 1700000003, ins("t", "INSERT INTO t (tz) VALUES ('x')")),
		ent("app", 1700000004, ins("t", "INSERT INTO t (tz) VALUES (@@time_zone)")))
	if r := res[0][0]; r.Err != nil || r.LastInsertID != 1 || r.AffectedRows != 1 {
		t.Fatalf("insert after a rejected session variable: %+v, want id 1 (the variable is skipped, the statement runs)", r)
	}
	if e := res[1][0].Err; e == nil || e.Code != 1049 {
		t.Fatalf("statement in an unknown database: %+v, want 1049", res[1][0])
	}
	if r := res[2][0]; r.Err != nil || r.LastInsertID != 2 {
		t.Fatalf("insert after the failures: %+v, want id 2", r)
	}
	var n int
	if err := sqlDB(t, s).QueryRow("SELECT COUNT(*) FROM app.t WHERE tz = @@global.time_zone").Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows with the server's time zone: %d, %v; want 2", n, err)
	}
}
