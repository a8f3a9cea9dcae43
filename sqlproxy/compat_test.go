package sqlproxy_test

import (
	"testing"
)

// Client compatibility cases found by running go-sql-driver's own
// integration tests through a node (e2e TestDriverSuite); each is answered
// here as MariaDB answers it.

// TestCommentOnlyQuery: a query of nothing but a comment is not an error
// (MariaDB answers it with an empty OK); an empty one is 1065.
func TestCommentOnlyQuery(t *testing.T) {
	srv, name := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	for _, q := range []string{"--", "-- nothing", "/* nothing */", "# nothing"} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		if rows.Next() {
			t.Fatalf("%q returned a row", q)
		}
		rows.Close()
	}
	_, err := db.Exec(" ")
	wantCode(t, err, 1065)
}

// TestNoBackslashEscapesInterpolated: with sql_mode NO_BACKSLASH_ESCAPES
// the driver's interpolateParams escapes only quotes; a value holding a
// backslash, quotes and control bytes is written and read back unchanged,
// through the text protocol and through prepared statements.
func TestNoBackslashEscapesInterpolated(t *testing.T) {
	srv, name := newProxy(t)
	v := "foo \x00\n\r\x1a\"'\\"
	for i, params := range []string{"sql_mode='NO_BACKSLASH_ESCAPES'&interpolateParams=true", "sql_mode='NO_BACKSLASH_ESCAPES'"} {
		db := open(t, srv.DSN("app", "apppw", name, params))
		if i == 0 {
			mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(255))")
		}
		mustExec(t, db, "INSERT INTO t VALUES (?, ?)", i, v)
		var out string
		if err := db.QueryRow("SELECT v FROM t WHERE id = ? AND v = ?", i, v).Scan(&out); err != nil {
			t.Fatalf("%s: %v", params, err)
		}
		if out != v {
			t.Fatalf("%s: read back %q, want %q", params, out, v)
		}
	}
}
