package classify

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
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
