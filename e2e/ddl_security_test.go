package e2e_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/e2e"
)

func tableExists(db *sql.DB, schema, table string) error {
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", schema, table).Scan(&n); err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("%s.%s does not exist", schema, table)
	}
	return nil
}

func mysqlErr(err error) *mysql.MySQLError {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me
	}
	return nil
}

// TestDDLAndErrors: DDL through one node appears on every backend; a
// duplicate key gives the same error through every node as MariaDB gives
// directly; unsafe statements are refused with 1235 and never ordered.
func TestDDLAndErrors(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	db2 := n2.Open(t, "")
	mustExec(t, db2, "CREATE DATABASE d")
	mustExec(t, db2, "CREATE TABLE d.t (id INT PRIMARY KEY, a INT NOT NULL)")
	for _, n := range []*e2e.Node{n1, n3} {
		e2e.Eventually(t, 30*time.Second, n.ID+": table created through n2", func() error { return tableExists(n.BackendDB(), "d", "t") })
	}
	// DDL through another node, too.
	mustExec(t, n3.Open(t, ""), "ALTER TABLE d.t ADD COLUMN b VARCHAR(20) NOT NULL DEFAULT 'x'")
	e2e.Eventually(t, 30*time.Second, "column added through n3 visible on n1's backend", func() error {
		var n int
		n1.BackendDB().QueryRow("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema='d' AND table_name='t' AND column_name='b'").Scan(&n)
		if n != 1 {
			return errors.New("column d.t.b missing")
		}
		return nil
	})
	mustExec(t, n1.Open(t, ""), "INSERT INTO d.t (id, a) VALUES (1, 10), (2, 20)")
	c.WaitConverged()

	// Duplicate key: the error MariaDB itself gives, through every node.
	_, direct := n1.BackendDB().Exec("INSERT INTO d.t (id, a) VALUES (1, 99)")
	want := mysqlErr(direct)
	if want == nil || want.Number != 1062 {
		t.Fatalf("directly on MariaDB, duplicate key gave %v; want error 1062", direct)
	}
	for _, n := range c.Nodes {
		for _, params := range []string{"d?interpolateParams=true", "d"} {
			db := n.Open(t, params)
			_, err := db.Exec("INSERT INTO d.t (id, a) VALUES (?, ?)", 1, 99)
			got := mysqlErr(err)
			if got == nil || got.Number != want.Number || got.Message != want.Message || string(got.SQLState[:]) != string(want.SQLState[:]) {
				t.Errorf("%s (%s): duplicate key gave %v; want %v (as MariaDB gives it)", n.ID, params, err, want)
			}
			_, err = db.Exec("INSERT INTO d.t (id, a) VALUES (1, 99)")
			if got := mysqlErr(err); got == nil || got.Number != want.Number || got.Message != want.Message {
				t.Errorf("%s (text, no args): duplicate key gave %v; want %v", n.ID, err, want)
			}
		}
	}
	c.WaitConverged()

	// Unsafe statements are refused before ordering: no client entry is
	// ordered and the data does not change.
	before := c.ClientEntries()
	unsafe := []string{
		"UPDATE d.t SET a = 1 LIMIT 1",
		"DELETE FROM d.t LIMIT 1",
		"INSERT INTO d.t (id, a, b) VALUES (3, 1, LOAD_FILE('/etc/passwd'))",
		"INSERT INTO d.t (id, a, b) VALUES (4, 1, @@hostname)",
	}
	for _, n := range c.Nodes {
		db := n.Open(t, "d")
		db.SetMaxOpenConns(1)
		for _, q := range unsafe {
			_, err := db.Exec(q)
			me := mysqlErr(err)
			if me == nil || me.Number != 1235 || !strings.Contains(me.Message, "Lockstep") {
				t.Errorf("%s: %q gave %v; want error 1235 with a Lockstep message", n.ID, q, err)
			} else {
				t.Logf("%s: %q → %d %s", n.ID, q, me.Number, me.Message)
			}
		}
	}
	for _, n := range c.Nodes {
		if after := n.MustStatus(t).ClientEntries; after != before[n.ID] {
			t.Errorf("%s: client entries went from %d to %d although every statement was refused", n.ID, before[n.ID], after)
		}
		if sum := queryInt(t, n.BackendDB(), "SELECT SUM(a) + COUNT(*) FROM d.t"); sum != 32 {
			t.Errorf("%s: d.t changed: SUM(a)+COUNT(*) = %d, want 32", n.ID, sum)
		}
	}
	c.AssertIdentical(t)
}

// TestSecurity: account management through the cluster reaches every
// backend; a SELECT-only user cannot write through any node and gets the
// error MariaDB gives it; wrong credentials are refused.
func TestSecurity(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	db := c.Nodes[0].Open(t, "")
	mustExec(t, db, "CREATE DATABASE db")
	mustExec(t, db, "CREATE TABLE db.t (id INT PRIMARY KEY, v INT)")
	mustExec(t, db, "INSERT INTO db.t VALUES (1, 1)")
	mustExec(t, db, "CREATE USER 'ro'@'%' IDENTIFIED BY 'x'")
	mustExec(t, db, "GRANT SELECT ON db.* TO 'ro'@'%'")
	for _, n := range c.Nodes {
		e2e.Eventually(t, 30*time.Second, n.ID+": grant for ro on the backend", func() error {
			rows, err := n.BackendDB().Query("SHOW GRANTS FOR 'ro'@'%'")
			if err != nil {
				return err
			}
			defer rows.Close()
			var all []string
			for rows.Next() {
				var g string
				rows.Scan(&g)
				all = append(all, g)
			}
			for _, g := range all {
				if strings.HasPrefix(g, "GRANT SELECT ON `db`.* TO `ro`@`%`") {
					return nil
				}
			}
			return fmt.Errorf("grants: %q", all)
		})
	}
	c.WaitConverged()

	// What MariaDB itself says to ro.
	directDB := e2e.OpenDB(t, c.Nodes[0].BackendDSN("ro", "x", "db"))
	writes := []string{"INSERT INTO t VALUES (2, 2)", "UPDATE t SET v = 5 WHERE id = 1", "DELETE FROM t", "CREATE TABLE t2 (a INT)", "DROP TABLE t"}
	wantErr := map[string]*mysql.MySQLError{}
	for _, q := range writes {
		_, err := directDB.Exec(q)
		me := mysqlErr(err)
		if me == nil || me.Number != 1142 {
			t.Fatalf("directly on MariaDB as ro: %q gave %v; want 1142", q, err)
		}
		wantErr[q] = me
	}
	for _, n := range c.Nodes {
		for _, params := range []string{"db", "db?interpolateParams=true"} {
			ro := e2e.OpenDB(t, n.DSN("ro", "x", params))
			var v int
			if err := ro.QueryRow("SELECT v FROM t WHERE id = ?", 1).Scan(&v); err != nil || v != 1 {
				t.Errorf("%s: SELECT as ro: v=%d err=%v", n.ID, v, err)
			}
			for _, q := range writes {
				_, err := ro.Exec(q)
				me := mysqlErr(err)
				if me == nil || me.Number != wantErr[q].Number || me.Message != wantErr[q].Message {
					t.Errorf("%s (%s): %q as ro gave %v; want %v (as MariaDB gives it)", n.ID, params, q, err, wantErr[q])
				}
			}
			// A prepared statement with parameters (binary protocol).
			_, err := ro.Exec("INSERT INTO t VALUES (?, ?)", 7, 7)
			if me := mysqlErr(err); me == nil || me.Number != 1142 {
				t.Errorf("%s (%s): parameterised INSERT as ro gave %v; want 1142", n.ID, params, err)
			}
		}
		for _, cred := range [][2]string{{"app", "wrong-password"}, {"ro", "y"}, {"nosuchuser", "x"}} {
			bad := e2e.OpenDB(t, n.DSN(cred[0], cred[1], ""))
			err := bad.Ping()
			if me := mysqlErr(err); me == nil || me.Number != 1045 {
				t.Errorf("%s: login as %s with a wrong password gave %v; want 1045", n.ID, cred[0], err)
			}
		}
	}
	for _, n := range c.Nodes {
		if got := queryInt(t, n.BackendDB(), "SELECT COUNT(*) * 100 + SUM(v) FROM db.t"); got != 101 {
			t.Errorf("%s: db.t changed by a SELECT-only user: COUNT*100+SUM = %d, want 101", n.ID, got)
		}
		if got := queryInt(t, n.BackendDB(), "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='db'"); got != 1 {
			t.Errorf("%s: db has %d tables, want 1", n.ID, got)
		}
	}

	// A session's cached privilege check (one PREPARE per statement shape)
	// goes stale when a REVOKE, ordered through another node, is applied
	// on the session's node.
	mustExec(t, db, "CREATE TABLE db.p (id INT PRIMARY KEY)")
	mustExec(t, db, "GRANT INSERT ON db.p TO 'ro'@'%'")
	c.WaitConverged()
	ctx := context.Background()
	ro, err := e2e.OpenDB(t, c.Nodes[2].DSN("ro", "x", "db")).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for i := 1; i <= 3; i++ { // the same shape: checked once, then cached
		if _, err := ro.ExecContext(ctx, fmt.Sprintf("INSERT INTO p VALUES (%d)", i)); err != nil {
			t.Fatalf("INSERT as ro with INSERT granted: %v", err)
		}
	}
	mustExec(t, c.Nodes[1].Open(t, ""), "REVOKE INSERT ON db.p FROM 'ro'@'%'")
	c.WaitConverged()
	_, err = ro.ExecContext(ctx, "INSERT INTO p VALUES (4)")
	if me := mysqlErr(err); me == nil || me.Number != 1142 {
		t.Fatalf("%s: INSERT of a cached shape after REVOKE through %s gave %v; want 1142", c.Nodes[2].ID, c.Nodes[1].ID, err)
	}
	for _, n := range c.Nodes {
		if got := queryInt(t, n.BackendDB(), "SELECT COUNT(*) FROM db.p"); got != 3 {
			t.Errorf("%s: db.p has %d rows, want 3", n.ID, got)
		}
	}
	c.AssertIdentical(t)
}

// TestDivergenceDetected: a row deleted behind Lockstep's back on one
// backend makes a later UPDATE affect different rows there; that node must
// notice it has diverged, and the others must not think they have.
func TestDivergenceDetected(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	n1, n3 := c.Nodes[0], c.Nodes[2]
	db := n1.Open(t, "")
	mustExec(t, db, "CREATE DATABASE dv")
	mustExec(t, db, "CREATE TABLE dv.t (id INT PRIMARY KEY, v INT NOT NULL)")
	mustExec(t, db, "CREATE TABLE dv.tick (id INT AUTO_INCREMENT PRIMARY KEY)")
	mustExec(t, db, "INSERT INTO dv.t VALUES (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)")
	c.WaitConverged()
	for _, n := range c.Nodes {
		if st := n.MustStatus(t); st.Diverged {
			t.Fatalf("%s diverged before anything was done: %+v", n.ID, st)
		}
	}

	if _, err := n3.BackendDB().Exec("DELETE FROM dv.t WHERE id = 3"); err != nil {
		t.Fatal(err)
	}
	res := mustExec(t, db, "UPDATE dv.t SET v = v + 10 WHERE id = 3")
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("UPDATE through n1 affected %d rows, want 1", n)
	}
	// Hashes may be compared through later log entries: keep writing.
	e2e.Eventually(t, 60*time.Second, "n3 reports diverged", func() error {
		db.Exec("INSERT INTO dv.tick VALUES ()")
		st, err := n3.Status()
		if err != nil {
			return err
		}
		if !st.Diverged {
			return fmt.Errorf("n3 status: %+v", st)
		}
		t.Logf("n3: diverged, state %q, detail %q", st.State, st.DivergedDetail)
		return nil
	})
	for _, n := range c.Nodes[:2] {
		if st := n.MustStatus(t); st.Diverged {
			t.Errorf("%s reports diverged, but only n3 was tampered with: %+v", n.ID, st)
		}
	}
}
