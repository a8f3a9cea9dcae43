package e2e_test

import (
	"database/sql"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/e2e"
)

// TestClientFoundRowsThroughNode: a client that connected with CLIENT_FOUND_ROWS
// (clientFoundRows=true) gets the rows an UPDATE matched, and 1 for a
// one-row upsert that left its row unchanged, as from MariaDB directly;
// without it, the rows changed.
func TestClientFoundRowsThroughNode(t *testing.T) {
	directAddr, pw := startDirect(t, "fr")
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c, "CREATE DATABASE fr", "CREATE TABLE fr.t (id INT PRIMARY KEY, data INT NOT NULL)")
	via := c.Other(c.WaitForLeader())[0]
	if _, err := e2e.OpenDB(t, fmt.Sprintf("%s:%s@tcp(%s)/fr", e2e.AppUser, pw, directAddr)).Exec("CREATE TABLE t (id INT PRIMARY KEY, data INT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	stmts := []string{
		"INSERT INTO %s VALUES (1, 0), (2, 0), (3, 0), (4, 0), (5, 1)",
		"UPDATE %s SET data = 1 WHERE id <= 2",                          // matched 2, changed 2
		"UPDATE %s SET data = 1 WHERE id >= 3",                          // matched 3, changed 2
		"UPDATE %s SET data = 1 WHERE id = 5",                           // matched 1, changed 0
		"INSERT INTO %s VALUES (5, 1) ON DUPLICATE KEY UPDATE data = 1", // unchanged
		"INSERT INTO %s VALUES (5, 2) ON DUPLICATE KEY UPDATE data = 2", // changed
		"INSERT INTO %s VALUES (6, 0) ON DUPLICATE KEY UPDATE data = 0", // inserted
		"DELETE FROM %s WHERE id = 6",
	}
	for _, found := range []bool{true, false} {
		params := fmt.Sprintf("clientFoundRows=%t", found)
		proxied := via.Open(t, "fr?"+params)
		direct := e2e.OpenDB(t, fmt.Sprintf("%s:%s@tcp(%s)/fr?%s", e2e.AppUser, pw, directAddr, params))
		for _, db := range []*sql.DB{proxied, direct} {
			if _, err := db.Exec("DELETE FROM t"); err != nil {
				t.Fatal(err)
			}
		}
		for _, q := range stmts {
			q = fmt.Sprintf(q, "t")
			var n [2]int64
			for i, db := range []*sql.DB{direct, proxied} {
				r, err := db.Exec(q)
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				if n[i], err = r.RowsAffected(); err != nil {
					t.Fatal(err)
				}
			}
			if n[0] != n[1] {
				t.Errorf("%s: %s: %d rows affected through %s, %d directly", params, q, n[1], via.ID, n[0])
			}
		}
	}
	c.AssertIdentical(t)
}

// TestLoadDataLocal: LOAD DATA LOCAL INFILE through a follower loads the
// client's file on every node: the same rows, auto-increment ids and
// affected rows and info string as from MariaDB directly, also with
// REPLACE and a SET clause. Outside LOCAL, or in a transaction, it is
// refused.
func TestLoadDataLocal(t *testing.T) {
	directAddr, pw := startDirect(t, "ld")
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	ddl := "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, k INT UNIQUE, v VARCHAR(40), w INT)"
	setup(t, c, "CREATE DATABASE ld", "CREATE TABLE ld."+ddl[len("CREATE TABLE "):])
	direct := e2e.OpenDB(t, fmt.Sprintf("%s:%s@tcp(%s)/ld", e2e.AppUser, pw, directAddr))
	if _, err := direct.Exec(ddl); err != nil {
		t.Fatal(err)
	}
	via := c.Other(c.WaitForLeader())[0]
	proxied := via.Open(t, "ld")
	files := map[string]string{
		"first":  "\\N\t1\tone\n\\N\t2\ttwo with a \\t tab\n\\N\t3\tthree\n",
		"second": "\\N\t2\tTWO\n\\N\t4\tfour\n",
	}
	for name, body := range files {
		mysql.RegisterReaderHandler("lockstep-"+name, func() io.Reader { return strings.NewReader(body) })
	}
	for _, q := range []string{
		"LOAD DATA LOCAL INFILE 'Reader::lockstep-first' INTO TABLE t (id, k, v) SET w = k * 10",
		"LOAD DATA LOCAL INFILE 'Reader::lockstep-second' REPLACE INTO TABLE t (id, k, v)",
		"LOAD DATA LOCAL INFILE 'Reader::lockstep-second' IGNORE INTO TABLE t (id, k, v)",
	} {
		var n [2]int64
		for i, db := range []*sql.DB{direct, proxied} {
			r, err := db.Exec(q)
			if err != nil {
				t.Fatalf("%s (%s): %v", q, []string{"directly", "through " + via.ID}[i], err)
			}
			n[i], _ = r.RowsAffected()
		}
		if n[0] != n[1] {
			t.Errorf("%s: %d rows affected through %s, %d directly", q, n[1], via.ID, n[0])
		}
	}
	dump := func(db *sql.DB) string {
		var s string
		if err := db.QueryRow("SELECT GROUP_CONCAT(CONCAT_WS(':', id, k, v, IFNULL(w, '-')) ORDER BY id SEPARATOR '|') FROM t").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if want, got := dump(direct), dump(proxied); got != want {
		t.Errorf("rows through %s:\n %s\nwant (MariaDB directly):\n %s", via.ID, got, want)
	}
	_, err := proxied.Exec("LOAD DATA INFILE '/etc/hostname' INTO TABLE t")
	if me := mysqlErr(err); me == nil || me.Number != 1235 {
		t.Fatalf("LOAD DATA INFILE (not LOCAL): %v, want 1235", err)
	}
	tx, err := proxied.Begin()
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec("LOAD DATA LOCAL INFILE 'Reader::lockstep-first' INTO TABLE t")
	if me := mysqlErr(err); me == nil || me.Number != 1235 {
		t.Fatalf("LOAD DATA LOCAL INFILE in a transaction: %v, want 1235", err)
	}
	_ = tx.Rollback()
	c.AssertIdentical(t)
}
