package e2e_test

import (
	"database/sql"
	"fmt"
	"testing"

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
