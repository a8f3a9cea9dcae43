package classify

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/internal/mysqld"
)

// TestCorpusParsesOnMariaDB sends every statement of the corpus that
// Lockstep lets through (after rewriting) to a real MariaDB and checks that
// MariaDB parses it: any outcome but a syntax error (1064) is fine, as most
// statements name tables that do not exist. This catches splices that break
// the syntax (DEFINER placement, SET PASSWORD FOR, NOW(n), literals).
func TestCorpusParsesOnMariaDB(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real MariaDB")
	}
	if _, _, err := mysqld.Binaries(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := mysqld.Start(ctx, mysqld.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	db, err := sql.Open("mysql", srv.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"CREATE DATABASE c", "CREATE USER 'app'@'10.0.0.%'"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, c := range loadCorpus(t) {
		st := Classify(c.sql, testPins())
		if st.Class == Refused {
			continue
		}
		n++
		// A fresh connection per statement: LOCK TABLES, XA and the like
		// must not leak into the next case.
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "USE c"); err != nil {
			t.Fatal(err)
		}
		_, err = conn.ExecContext(ctx, st.SQL)
		var me *gomysql.MySQLError
		if errors.As(err, &me) && me.Number == 1064 {
			t.Errorf("corpus.txt:%d: MariaDB cannot parse %q: %v", c.line, st.SQL, err)
		}
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		conn.Close()
	}
	if n < 100 {
		t.Errorf("only %d statements checked", n)
	}
}

// TestRewriteIsDeterministicOnMariaDB runs one rewritten write on two
// connections of a real MariaDB (different connection ids, different
// moments), each pinned the way the applier pins (SET timestamp, RAND
// seeds, shipped user variables), and checks both rows hold the same values.
func TestRewriteIsDeterministicOnMariaDB(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real MariaDB")
	}
	if _, _, err := mysqld.Binaries(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := mysqld.Start(ctx, mysqld.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	boot, err := sql.Open("mysql", srv.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	_, err = boot.ExecContext(ctx, "CREATE DATABASE d")
	boot.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", srv.RootDSN()+"d")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE TABLE d.r (node INT PRIMARY KEY, u CHAR(36), us BIGINT UNSIGNED, sd DATETIME(6), n DATETIME(6), c BIGINT, w VARCHAR(200), x DOUBLE, v VARCHAR(20))",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	const orig = "INSERT INTO r VALUES (@node, UUID(), UUID_SHORT(), SYSDATE(6), NOW(6), CONNECTION_ID(), CURRENT_USER(), RAND(), @v)"
	st := Classify(orig, testPins())
	if st.Class != Write || !st.UsesRand || strings.Join(st.UserVars, ",") != "node,v" {
		t.Fatalf("unexpected classification: %+v", st)
	}
	// Nodes 1 and 2 run the rewritten text; 3 and 4 the original, as a
	// control that the test can tell values apart.
	for node := 1; node <= 4; node++ {
		text := st.SQL
		if node > 2 {
			text = orig
		}
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			// What the applier does on each node, from the entry's context.
			"SET timestamp = 1790000000.123456, rand_seed1 = 12345, rand_seed2 = 67890",
			"SET @node = " + strconv.Itoa(node) + ", @v = 'shipped'",
			text,
		} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				t.Fatalf("node %d: %s: %v", node, q, err)
			}
		}
		conn.Close()
	}
	var rows [4]string
	for i := range rows {
		if err := db.QueryRowContext(ctx, "SELECT CONCAT_WS('|', u, us, sd, n, c, w, x, v) FROM r WHERE node = ?", i+1).Scan(&rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	if rows[0] != rows[1] {
		t.Fatalf("rows differ:\n%s\n%s", rows[0], rows[1])
	}
	if !strings.HasPrefix(rows[0], "00000000-0000-4000-8000-000000000001|99001|") {
		t.Fatalf("row %q does not hold the pinned values", rows[0])
	}
	if rows[2] == rows[3] {
		t.Fatalf("control: the original statement gave identical rows on two connections: %s", rows[2])
	}
	t.Logf("both nodes: %s", rows[0])
}
