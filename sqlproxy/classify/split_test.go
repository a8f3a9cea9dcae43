package classify

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		name  string
		query string
		want  []string
	}{
		{"one", "SELECT 1", []string{"SELECT 1"}},
		{"trailing semicolon", "SELECT 1;", []string{"SELECT 1"}},
		{"two", "SELECT 1; SELECT 2", []string{"SELECT 1", "SELECT 2"}},
		{"empty ones dropped", " ;; SELECT 1 ;\n; ", []string{"SELECT 1"}},
		{"empty query", "", nil},
		{"only comments", "/* a */ -- b\n# c", nil},
		{"trailing comment dropped", "SELECT 1; -- done", []string{"SELECT 1"}},
		{"leading comment kept", "/* app */ SELECT 1; /* x */ SELECT 2", []string{"/* app */ SELECT 1", "/* x */ SELECT 2"}},
		{"single quotes", "SELECT 'a;b'; SELECT 2", []string{"SELECT 'a;b'", "SELECT 2"}},
		{"doubled quote", "SELECT 'it''s;'; SELECT 2", []string{"SELECT 'it''s;'", "SELECT 2"}},
		{"backslash escape", `SELECT 'a\';b'; SELECT 2`, []string{`SELECT 'a\';b'`, "SELECT 2"}},
		{"double quotes", `SELECT "a;\"b"; SELECT 2`, []string{`SELECT "a;\"b"`, "SELECT 2"}},
		{"backticks", "SELECT `a;b``c` FROM t; SELECT 2", []string{"SELECT `a;b``c` FROM t", "SELECT 2"}},
		{"block comment", "SELECT /* ; */ 1; SELECT 2", []string{"SELECT /* ; */ 1", "SELECT 2"}},
		{"dash comment", "SELECT 1 -- ;\n; SELECT 2", []string{"SELECT 1 -- ;", "SELECT 2"}},
		{"dash without space is minus", "SELECT 1--1; SELECT 2", []string{"SELECT 1--1", "SELECT 2"}},
		{"hash comment", "SELECT 1 # ;\n; SELECT 2", []string{"SELECT 1 # ;", "SELECT 2"}},
		{"versioned comment", "SELECT 1 /*!50000 + 1 */; SELECT 2", []string{"SELECT 1 /*!50000 + 1 */", "SELECT 2"}},
		{"mariadb comment", "SELECT 1 /*M!100500 + 1 */; SELECT 2", []string{"SELECT 1 /*M!100500 + 1 */", "SELECT 2"}},
		{"user var quoted", "SET @`a;b` = 1; SELECT 2", []string{"SET @`a;b` = 1", "SELECT 2"}},
		{"procedure body", "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END; CALL p()",
			[]string{"CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END", "CALL p()"}},
		{"nested blocks", "CREATE PROCEDURE p() BEGIN IF 1 THEN BEGIN SELECT 1; END; END IF; CASE x WHEN 1 THEN SELECT 1; END CASE; WHILE 0 DO SELECT 2; END WHILE; l: LOOP LEAVE l; END LOOP; SET @a = CASE WHEN 1 THEN 2 ELSE 3 END; END; SELECT 9",
			[]string{"CREATE PROCEDURE p() BEGIN IF 1 THEN BEGIN SELECT 1; END; END IF; CASE x WHEN 1 THEN SELECT 1; END CASE; WHILE 0 DO SELECT 2; END WHILE; l: LOOP LEAVE l; END LOOP; SET @a = CASE WHEN 1 THEN 2 ELSE 3 END; END", "SELECT 9"}},
		{"trigger body", "CREATE DEFINER=`a`@`%` TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; END;INSERT INTO t VALUES (1)",
			[]string{"CREATE DEFINER=`a`@`%` TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; END", "INSERT INTO t VALUES (1)"}},
		{"function without block", "CREATE FUNCTION f() RETURNS INT RETURN 1; SELECT f()", []string{"CREATE FUNCTION f() RETURNS INT RETURN 1", "SELECT f()"}},
		{"begin not atomic", "BEGIN NOT ATOMIC SELECT 1; SELECT 2; END; SELECT 3", []string{"BEGIN NOT ATOMIC SELECT 1; SELECT 2; END", "SELECT 3"}},
		{"transaction begin", "BEGIN; INSERT INTO t VALUES (1); COMMIT", []string{"BEGIN", "INSERT INTO t VALUES (1)", "COMMIT"}},
		{"case expression outside program", "SELECT CASE WHEN 1 THEN 2 END; SELECT 3", []string{"SELECT CASE WHEN 1 THEN 2 END", "SELECT 3"}},
		{"newlines kept inside", "INSERT INTO t\nVALUES (1);\n\nUPDATE t\n SET a = 2", []string{"INSERT INTO t\nVALUES (1)", "UPDATE t\n SET a = 2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Split(c.query, false)
			if err != nil {
				t.Fatalf("Split(%q): %v", c.query, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Split(%q)\n got %q\nwant %q", c.query, got, c.want)
			}
		})
	}
}

func TestSplitErrors(t *testing.T) {
	for _, q := range []string{
		"SELECT 'abc",
		`SELECT "abc`,
		"SELECT `abc",
		"SELECT 1 /* never closed",
		`SELECT 'a\'`,
	} {
		if got, err := Split(q, false); err == nil {
			t.Errorf("Split(%q) = %q, want an error", q, got)
		}
	}
}

// TestNoBackslashEscapes: under NO_BACKSLASH_ESCAPES a backslash in a
// string is an ordinary character (go-sql-driver's interpolateParams then
// escapes only quotes, by doubling them).
func TestNoBackslashEscapes(t *testing.T) {
	q := `INSERT INTO t VALUES ('foo "''\'); SELECT 'x\'`
	got, err := Split(q, true)
	if want := []string{`INSERT INTO t VALUES ('foo "''\')`, `SELECT 'x\'`}; err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Split(%q, NO_BACKSLASH_ESCAPES) = %q, %v; want %q", q, got, err, want)
	}
	if got, err := Split(q, false); err == nil {
		t.Fatalf("Split(%q) with backslash escapes = %q, want an unterminated string", q, got)
	}
	st := Classify(`INSERT INTO t VALUES ('a\', SYSDATE())`, Pins{Now: time.Unix(1700000000, 0), NoBackslashEscapes: true})
	if st.Class != Write || !strings.Contains(st.SQL, `'a\'`) || strings.Contains(st.SQL, "SYSDATE") {
		t.Fatalf("Classify under NO_BACKSLASH_ESCAPES = %v %q (%v), want a Write with SYSDATE() rewritten and the string kept", st.Class, st.SQL, st.Err)
	}
	a, okA := Shape(`INSERT INTO t VALUES ('a\', 1)`, true)
	b, okB := Shape(`INSERT INTO t VALUES ('bb\', 2)`, true)
	if !okA || !okB || a != b {
		t.Fatalf("Shape under NO_BACKSLASH_ESCAPES: %q (%v) and %q (%v), want one shape", a, okA, b, okB)
	}
}

// TestSleepInValues: SLEEP(constant) in an INSERT/REPLACE ... VALUES row
// runs once per call, so it is accepted: the origin waits (Sleep) and the
// nodes see 0, SLEEP()'s result. Anywhere it could run once per row read,
// or with an argument that is not a constant, it is refused.
func TestSleepInValues(t *testing.T) {
	for _, c := range []struct {
		q     string
		sql   string
		sleep time.Duration
	}{
		{"INSERT INTO t VALUES (SLEEP(1))", "INSERT INTO t VALUES (0)", time.Second},
		{"INSERT INTO t VALUES (SLEEP(0.5)), (sleep( 1 ))", "INSERT INTO t VALUES (0), (0)", 1500 * time.Millisecond},
		{"REPLACE INTO t SET v = SLEEP(0.25)", "REPLACE INTO t SET v = 0", 250 * time.Millisecond},
	} {
		st := Classify(c.q, Pins{})
		if st.Class != Write || st.SQL != c.sql || st.Sleep != c.sleep {
			t.Errorf("Classify(%q) = %v %q sleep %v (%v), want Write %q sleep %v", c.q, st.Class, st.SQL, st.Sleep, st.Err, c.sql, c.sleep)
		}
	}
	for _, q := range []string{
		"INSERT INTO t SELECT SLEEP(1)",
		"UPDATE t SET v = SLEEP(1)",
		"INSERT INTO t VALUES ((SELECT SLEEP(1) FROM u))",
		"INSERT INTO t VALUES (SLEEP(v))",
		"INSERT INTO t VALUES (SLEEP(7200))",
		"INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE v = SLEEP(1)",
	} {
		if st := Classify(q, Pins{}); st.Class != Refused {
			t.Errorf("Classify(%q) = %v %q, want Refused", q, st.Class, st.SQL)
		}
	}
}
