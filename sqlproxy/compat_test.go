package sqlproxy_test

import (
	"testing"
)

// Client compatibility cases found by running go-sql-driver's own
// integration tests through a node (e2e TestDriverSuite); each is answered
// here as MariaDB answers it.

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
