package localdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/internal/testutil"
)

// txEnt is a transaction entry of db's statements, each with the outcome
// its client saw.
func txEnt(db string, stmts ...command.Stmt) *command.Entry {
	e := ent(db, 1700000200, stmts...)
	e.Kind = command.KindTransaction
	return e
}

func txStmt(table, q string, want command.Outcome) command.Stmt {
	return command.Stmt{SQL: q, InsertTable: table, Expect: &want}
}

// TestTxPipelinedSameAsOneByOne: transaction entries applied with all their
// statements in one round trip (applyTxPipelined) give the same results,
// data and outcome hash as statement by statement: kept; a mismatch in the
// first statement (the rest ran, and are undone); an expected error in the
// middle (the rest run after it); an unexpected error; a wrong insert id;
// two inserts into one table (not pipelined); and a record of several
// transactions (the second insert into a table in one record is not
// pipelined either); a database that does not exist; a session variable
// the server refuses; a read that sees what its client saw, and one that
// does not.
func TestTxPipelinedSameAsOneByOne(t *testing.T) {
	sa, sb := startServer(t, "--sql-mode="), startServer(t, "--sql-mode=")
	a, b := openDB(t, sa, Config{}), openDB(t, sb, Config{})
	hooks(a).noPipeline = true
	seq = 0
	setup := [][]*command.Entry{
		{ent("", 1700000000, ddl("CREATE DATABASE app"))},
		{ent("app", 1700000001, ddl("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT, c CHAR(4) UNIQUE)"))},
		{ent("app", 1700000002, ins("t", "INSERT INTO t (v, c) VALUES (1, 'a'), (2, 'b'), (3, 'c')"))},
	}
	for i, rec := range setup {
		mustApply(t, a, uint64(i+1), rec...)
		mustApply(t, b, uint64(i+1), rec...)
	}
	upd := func(q string, n uint64, info string) command.Stmt {
		return txStmt("", q, command.Outcome{AffectedRows: n, CheckAffected: true, Info: info})
	}
	one := "Rows matched: 1  Changed: 1  Warnings: 0"
	recs := [][]*command.Entry{
		{txEnt("app", upd("UPDATE t SET v = v + 1 WHERE id = 1", 1, one),
			txStmt("t", "INSERT INTO t (v, c) VALUES (4, 'd')", command.Outcome{LastInsertID: 4}))},
		{txEnt("app", upd("UPDATE t SET v = v + 1 WHERE id = 2", 0, one), // client saw 0 rows
			txStmt("t", "INSERT INTO t (v, c) VALUES (5, 'e')", command.Outcome{LastInsertID: 5}))},
		{txEnt("app", txStmt("t", "INSERT INTO t (v, c) VALUES (6, 'a')", command.Outcome{ErrCode: 1062}),
			upd("UPDATE t SET v = v + 100 WHERE id = 3", 1, one),
			upd("UPDATE t SET v = v + 1 WHERE id = 4", 1, one))},
		{txEnt("app", upd("DELETE FROM t WHERE id = 1", 1, ""),
			txStmt("t", "INSERT INTO t (v, c) VALUES (8, 'b')", command.Outcome{LastInsertID: 5}))}, // 1062 unexpected
		{txEnt("app", txStmt("t", "INSERT INTO t (v, c) VALUES (9, 'g')", command.Outcome{LastInsertID: 99}))},
		{txEnt("app", txStmt("t", "INSERT INTO t (v, c) VALUES (10, 'h')", command.Outcome{LastInsertID: 5}),
			txStmt("t", "INSERT INTO t (v, c) VALUES (11, 'i')", command.Outcome{LastInsertID: 6}))},
		{txEnt("app", upd("UPDATE t SET v = 0 WHERE id = 2", 1, one)),
			txEnt("app", txStmt("t", "INSERT INTO t (v, c) VALUES (12, 'j')", command.Outcome{LastInsertID: 7})),
			txEnt("app", txStmt("t", "INSERT INTO t (v, c) VALUES (13, 'k')", command.Outcome{LastInsertID: 8}))},
	}
	nodb := txEnt("nodb", upd("UPDATE t SET v = 1 WHERE id = 2", 1, one)) // USE fails: 1213
	badVar := txEnt("app", upd("UPDATE t SET v = v + 1 WHERE id = 2", 1, one))
	badVar.Ctx.Vars = map[string]string{"sql_mode": "'NO_SUCH_MODE'"} // SET fails: set one by one
	// read: a statement returning one row of one column (text protocol).
	read := func(q, v string) command.Stmt {
		var d command.RowsDigest
		d.Add(append([]byte{byte(len(v))}, v...))
		return command.Stmt{SQL: q, Read: true, Expect: &command.Outcome{Rows: d}}
	}
	recs = append(recs, []*command.Entry{nodb}, []*command.Entry{badVar},
		[]*command.Entry{txEnt("app", read("SELECT v FROM t WHERE id = 3", "103"), upd("UPDATE t SET v = v + 1 WHERE id = 3", 1, one))},
		[]*command.Entry{txEnt("app", read("SELECT v FROM t WHERE id = 3", "999"), upd("UPDATE t SET v = 0 WHERE id = 3", 1, one))})
	base := uint64(len(setup))
	var resA, resB [][][]command.Result
	for i, rec := range recs {
		resA = append(resA, mustApply(t, a, base+1+uint64(i), rec...))
		resB = append(resB, mustApply(t, b, base+1+uint64(i), rec...))
	}
	if a.txPipelined != 0 || b.txPipelined != 11 {
		t.Fatalf("transactions applied in one round trip: %d and %d, want 0 and 11 (not those inserting twice into t in one record)", a.txPipelined, b.txPipelined)
	}
	if fmt.Sprint(resA) != fmt.Sprint(resB) {
		t.Fatalf("results differ:\n one by one %v\n pipelined  %v", resA, resB)
	}
	ia, ha := a.OutcomeHash()
	ib, hb := b.OutcomeHash()
	if ia != ib || ha != hb {
		t.Fatalf("outcome hashes differ: one by one %d/%s, pipelined %d/%s", ia, ha, ib, hb)
	}
	if ca, cb := checksum(t, a), checksum(t, b); !sameMap(ca, cb) {
		t.Fatalf("databases differ: one by one %v, pipelined %v", ca, cb)
	}
	// Kept, conflict, kept, conflict, conflict, kept, kept x3.
	var got []string
	for _, r := range resB {
		for _, e := range r {
			code := 0
			if len(e) == 1 && e[0].Err != nil {
				code = int(e[0].Err.Code)
			}
			got = append(got, fmt.Sprint(code))
		}
	}
	if want := "[0 1213 0 1213 1213 0 0 0 0 1213 0 0 1213]"; fmt.Sprint(got) != want {
		t.Fatalf("transaction results %v, want %s", got, want)
	}
	var ids string
	if err := sqlDB(t, sb).QueryRow("SELECT GROUP_CONCAT(id, ':', v ORDER BY id) FROM app.t").Scan(&ids); err != nil {
		t.Fatal(err)
	}
	if want := "1:2,2:1,3:104,4:5,5:10,6:11,7:12,8:13"; ids != want {
		t.Fatalf("rows %s, want %s", ids, want)
	}
}

// TestTxPipelinedDeadlockAfterMismatch: in one round trip a read that
// differs from what its client saw, then a statement that deadlocks with
// another session, which rolls back the whole local transaction and its
// savepoint. The record is re-run (not failed on the missing savepoint) and
// its result is the read's conflict; nothing is kept.
func TestTxPipelinedDeadlockAfterMismatch(t *testing.T) {
	s := startServer(t)
	db := openDB(t, s, Config{})
	mustApply(t, db, 1, ent("", 1700000000, ddl("CREATE DATABASE app")))
	mustApply(t, db, 2, ent("app", 1700000001, ddl("CREATE TABLE t (id INT PRIMARY KEY, v INT)")))
	mustApply(t, db, 3, ent("app", 1700000002, dml("INSERT INTO t SELECT seq, 0 FROM seq_1_to_30")))
	ctx := context.Background()
	raw := sqlDB(t, s)
	other, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// The other session holds many rows, so InnoDB picks the applier as
	// the deadlock victim.
	if _, err := other.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.ExecContext(ctx, "UPDATE app.t SET v = 100 WHERE id >= 2"); err != nil {
		t.Fatal(err)
	}
	restarted := make(chan struct{})
	var once sync.Once
	hooks(db).onRestart = func() { once.Do(func() { close(restarted) }) }
	otherErr := make(chan error, 1)
	go func() {
		// Once the applier waits for row 2 (holding row 1), close the cycle.
		err := testutil.Until(30*time.Second, 10*time.Millisecond, func() error {
			var n int
			if err := raw.QueryRow("SELECT COUNT(*) FROM information_schema.INNODB_LOCK_WAITS").Scan(&n); err != nil {
				return testutil.Permanent(err)
			}
			if n == 0 {
				return errors.New("the applier never waited for a row lock")
			}
			return nil
		})
		if err == nil {
			_, err = other.ExecContext(ctx, "UPDATE app.t SET v = 100 WHERE id = 1")
		}
		select {
		case <-restarted:
		case <-time.After(60 * time.Second):
		}
		_, _ = other.ExecContext(ctx, "ROLLBACK")
		otherErr <- err
	}()
	var d command.RowsDigest
	d.Add([]byte{3, '9', '9', '9'}) // the client read 999; the row holds 0
	e := txEnt("app",
		command.Stmt{SQL: "SELECT v FROM t WHERE id = 1 FOR UPDATE", Read: true, Expect: &command.Outcome{Rows: d}},
		txStmt("", "UPDATE t SET v = v + 1 WHERE id = 2", command.Outcome{AffectedRows: 1, CheckAffected: true, Info: "Rows matched: 1  Changed: 1  Warnings: 0"}))
	res := mustApply(t, db, 4, e)
	if err := <-otherErr; err != nil {
		t.Fatalf("the other session (it should have won the deadlock): %v", err)
	}
	if db.txPipelined == 0 {
		t.Fatal("the transaction was not applied in one round trip")
	}
	if len(res[0]) != 1 || res[0][0].Err == nil || res[0][0].Err.Code != 1213 || !strings.Contains(res[0][0].Err.Message, "statement 1") {
		t.Fatalf("result %+v, want the conflict of statement 1", res[0])
	}
	var sum int
	if err := raw.QueryRow("SELECT SUM(v) FROM app.t").Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if sum != 0 {
		t.Fatalf("SUM(v) = %d after a rejected transaction, want 0", sum)
	}
}
