package e2e_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/e2e"
)

// TestCallCheckedProcedure: a procedure created through one node, whose
// body Lockstep checked as deterministic, is CALLed through another with
// literal, user-variable and prepared-statement arguments; every node holds
// the same rows (pinned NOW() and RAND() inside the body too). CALLs of
// procedures that return a result set, insert into an AUTO_INCREMENT
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
	mustExec(t, cdb, "CREATE PROCEDURE showrows() SELECT * FROM t")
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
