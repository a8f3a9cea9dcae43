package e2e_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/e2e"
)

// TestCallCheckedProcedure: a procedure created through one node, whose
// body Lockstep checked as deterministic, is CALLed through another with
// literal, user-variable and prepared-statement arguments; every node holds
// the same rows (pinned NOW() and RAND() inside the body too). CALLs of
// procedures that write and return a result set, insert into an AUTO_INCREMENT
// table, do not exist, were changed outside Lockstep, or run inside a
// transaction are refused, and a body calling
// UUID() is refused at CREATE.
func TestCallCheckedProcedure(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c, "CREATE DATABASE cp", "CREATE TABLE cp.t (id INT PRIMARY KEY, v VARCHAR(40), at DATETIME(6), r DOUBLE)")
	leader := c.WaitForLeader()
	creator, caller := c.Other(leader)[0], leader
	cdb := creator.Open(t, "cp")
	mustExec(t, cdb, `CREATE PROCEDURE addrow(IN a INT, b VARCHAR(40))
BEGIN
  DECLARE x INT DEFAULT 0;
  SET x = a * 10;
  INSERT INTO t VALUES (x, b, NOW(6), RAND());
  IF a > 1 THEN
    UPDATE t SET v = CONCAT(v, '+') WHERE id < x;
  END IF;
END`)
	// It writes too: a read-only one is a local read (TestCallReadOnlyProcedure).
	mustExec(t, cdb, "CREATE PROCEDURE showrows() BEGIN UPDATE t SET r = r WHERE id < 0; SELECT * FROM t; END")
	mustExec(t, cdb, "CREATE TABLE ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
	mustExec(t, cdb, "CREATE PROCEDURE addai(a INT) INSERT INTO ai (v) VALUES (a)")
	refused := func(err error, code uint16, want string) {
		t.Helper()
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != code || !strings.Contains(me.Message, want) {
			t.Fatalf("got %v, want error %d with %q", err, code, want)
		}
	}
	_, err := cdb.Exec("CREATE PROCEDURE withuuid() INSERT INTO t VALUES (99, UUID(), NOW(), 0)")
	refused(err, 1235, "UUID")
	c.WaitConverged()

	ctx := context.Background()
	conn, err := caller.Open(t, "cp").Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "CALL addrow(1, 'one')"); err != nil {
		t.Fatalf("CALL addrow(1): %v", err)
	}
	if _, err := conn.ExecContext(ctx, "SET @b = 'two'"); err != nil {
		t.Fatal(err)
	}
	r, err := conn.ExecContext(ctx, "CALL cp.addrow(2, @b)")
	if err != nil {
		t.Fatalf("CALL addrow(2, @b): %v", err)
	}
	if n, _ := r.RowsAffected(); n < 1 {
		t.Errorf("CALL addrow(2, @b): %d rows affected", n)
	}
	if _, err := conn.ExecContext(ctx, "CALL addrow(?, ?)", 3, "three"); err != nil { // COM_STMT_PREPARE/EXECUTE
		t.Fatalf("prepared CALL addrow(3): %v", err)
	}

	_, err = conn.ExecContext(ctx, "CALL showrows()")
	refused(err, 1235, "returns a result set")
	_, err = conn.ExecContext(ctx, "CALL addai(1)")
	refused(err, 1235, "AUTO_INCREMENT")
	_, err = conn.ExecContext(ctx, "CALL nosuch(1)")
	refused(err, 1305, "does not exist")
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec("CALL addrow(4, 'four')")
	refused(err, 1235, "inside a transaction")
	_ = tx.Rollback()

	c.AssertIdentical(t)
	for _, n := range c.Nodes {
		b := n.BackendDB()
		if got := queryInt(t, b, "SELECT COUNT(*) FROM cp.t"); got != 3 {
			t.Errorf("%s: %d rows, want 3", n.ID, got)
		}
		if got := queryInt(t, b, "SELECT COUNT(*) FROM cp.t WHERE v = 'one++' AND id = 10"); got != 1 {
			t.Errorf("%s: row 10 is not 'one++'", n.ID)
		}
	}

	// A body changed outside Lockstep is not the one checked.
	b := caller.BackendDB()
	mustExec(t, b, "DROP PROCEDURE cp.addrow")
	mustExec(t, b, "CREATE PROCEDURE cp.addrow(IN a INT, b VARCHAR(40)) INSERT INTO cp.t VALUES (a, UUID(), NOW(), 0)")
	_, err = conn.ExecContext(ctx, "CALL addrow(5, 'five')")
	refused(err, 1235, "body changed")
	// So is one created outside Lockstep.
	mustExec(t, b, "CREATE PROCEDURE cp.outside(a INT) INSERT INTO cp.t VALUES (a, 'x', NOW(), 0)")
	_, err = conn.ExecContext(ctx, "CALL outside(6)")
	refused(err, 1235, "not checked when it was created")
}

// TestCallReadOnlyProcedure: a procedure whose body only reads and returns
// result sets, created through one node, is CALLed through another as a
// local read: as text and prepared, outside and inside a transaction, the
// client gets exactly what the same CALL gives directly on MariaDB (every
// result set, then the final OK, or the SIGNAL's error after the rows).
// A body changed outside Lockstep is refused as for ordered CALLs.
func TestCallReadOnlyProcedure(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c, "CREATE DATABASE rp", "CREATE TABLE rp.t (id INT PRIMARY KEY, v VARCHAR(40))", "INSERT INTO rp.t VALUES (1, 'one'), (2, 'two')")
	leader := c.WaitForLeader()
	creator, caller := c.Other(leader)[0], leader
	cdb := creator.Open(t, "rp")
	mustExec(t, cdb, "CREATE PROCEDURE mrss(a INT) BEGIN SELECT 1 AS value UNION SELECT 2 AS value; SELECT id, v FROM t WHERE id >= a ORDER BY id; SELECT a + 1 AS next; END")
	mustExec(t, cdb, `CREATE PROCEDURE sig(ret INT) BEGIN SELECT ret; SIGNAL SQLSTATE '45001' SET MESSAGE_TEXT = "an error", MYSQL_ERRNO = 45001; END`)
	c.WaitConverged()

	ctx := context.Background()
	node := caller.Open(t, "rp")
	direct := e2e.OpenDB(t, caller.BackendDSN(e2e.AppUser, c.Password, "rp"))
	before := c.ClientEntries()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"CALL mrss(2)", nil},
		{"CALL rp.mrss(?)", []any{1}}, // COM_STMT_PREPARE/EXECUTE: binary rows
		{"CALL sig(7)", nil},
		{"CALL sig(?)", []any{8}},
	} {
		want := callResults(t, ctx, direct, false, q.sql, q.args...)
		if got := callResults(t, ctx, node, false, q.sql, q.args...); got != want {
			t.Errorf("%s %v through the node:\n got %s\nwant %s", q.sql, q.args, got, want)
		}
		if got := callResults(t, ctx, node, true, q.sql, q.args...); got != want {
			t.Errorf("%s %v inside a transaction through the node:\n got %s\nwant %s", q.sql, q.args, got, want)
		}
		if !strings.Contains(want, "value") && !strings.Contains(want, "45001") {
			t.Errorf("%s: unexpected direct answer %s", q.sql, want)
		}
	}
	if after := c.ClientEntries(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("read-only CALLs were ordered: entries %v, then %v", before, after)
	}

	// In a transaction a read-only CALL's reads are not recorded for the
	// commit's validation: a write may not follow it, and it may not follow
	// a write.
	txRefused := func(first, second, why string) {
		t.Helper()
		conn, err := node.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		mustConnExec(t, ctx, conn, "BEGIN")
		defer conn.ExecContext(ctx, "ROLLBACK")
		if _, err := conn.ExecContext(ctx, first); err != nil {
			t.Fatalf("%s: %v", first, err)
		}
		_, err = conn.ExecContext(ctx, second)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1235 || !strings.Contains(me.Message, why) {
			t.Errorf("BEGIN; %s; %s: got %v, want 1235 saying %q", first, second, err, why)
		}
	}
	txRefused("CALL mrss(1)", "INSERT INTO t VALUES (3, 'three')", "cannot write")
	txRefused("INSERT INTO t VALUES (3, 'three')", "CALL mrss(1)", "transaction")

	// A body changed outside Lockstep is not the one checked.
	mustExec(t, caller.BackendDB(), "DROP PROCEDURE rp.mrss")
	mustExec(t, caller.BackendDB(), "CREATE PROCEDURE rp.mrss(a INT) SELECT a")
	_, err := node.ExecContext(ctx, "CALL mrss(1)")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1235 || !strings.Contains(me.Message, "body changed") {
		t.Fatalf("CALL of a changed body: got %v, want 1235 saying the body changed", err)
	}
}

// callResults runs q on one connection of db (in a transaction, committed
// after, when tx is set) and renders every result set it returns and the
// error that ends it.
func callResults(t *testing.T, ctx context.Context, db *sql.DB, tx bool, q string, args ...any) string {
	t.Helper()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tx {
		mustConnExec(t, ctx, conn, "BEGIN")
		defer mustConnExec(t, ctx, conn, "COMMIT")
	}
	var b strings.Builder
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return "error: " + err.Error()
	}
	defer rows.Close()
	for {
		cols, _ := rows.Columns()
		fmt.Fprintf(&b, "%v:", cols)
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				fmt.Fprintf(&b, " %q", v)
			}
			b.WriteString(";")
		}
		b.WriteString("\n")
		if !rows.NextResultSet() {
			break
		}
	}
	if err := rows.Err(); err != nil {
		b.WriteString("error: " + err.Error())
	}
	return b.String()
}

func mustConnExec(t *testing.T, ctx context.Context, conn *sql.Conn, q string) {
	t.Helper()
	if _, err := conn.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
