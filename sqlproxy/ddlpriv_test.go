package sqlproxy

import (
	"fmt"
	"testing"

	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// lex reads sql as the classifier hands DDL to the privilege checks.
func lex(sql string) []tok {
	ts, _ := classify.Tokenize(sql, 0, false)
	return toks(sql, ts, false)
}

func TestDDLNeeds(t *testing.T) {
	cases := []struct {
		sql      string
		want     string
		prepared bool
		ok       bool
	}{
		{"DROP TABLE t", "[{DROP d t}]", false, true},
		{"drop table if exists a.t, `b`.`x y`", "[{DROP a t} {DROP b x y}]", false, true},
		{"TRUNCATE t", "[{DROP d t}]", false, true},
		{"ALTER TABLE db.t ADD c INT", "[{ALTER db t}]", false, true},
		{"ALTER ONLINE IGNORE TABLE t ENGINE=InnoDB", "[{ALTER d t}]", false, true},
		{"ALTER TABLE t ADD c INT, RENAME TO o.t2", "[{ALTER d t} {DROP d t} {CREATE o t2} {INSERT o t2}]", false, true},
		{"ALTER TABLE t RENAME COLUMN a TO b", "[{ALTER d t}]", false, true},
		{"RENAME TABLE a TO b, x.c TO y.d", "[{ALTER d a} {DROP d a} {CREATE d b} {INSERT d b} {ALTER x c} {DROP x c} {CREATE y d} {INSERT y d}]", false, true},
		{"CREATE DATABASE IF NOT EXISTS z", "[{CREATE z }]", false, true},
		{"DROP SCHEMA z", "[{DROP z }]", false, true},
		{"ALTER DATABASE CHARACTER SET utf8mb4", "[{ALTER d }]", false, true},
		{"CREATE UNIQUE INDEX i ON t (c)", "[{INDEX d t}]", false, true},
		{"DROP INDEX i ON x.t", "[{INDEX x t}]", false, true},
		{"CREATE DEFINER=`u`@`h` PROCEDURE p() SELECT 1", "[{CREATE ROUTINE d }]", false, true},
		{"CREATE DEFINER='u'@'%' FUNCTION x.f() RETURNS INT RETURN 1", "[{CREATE ROUTINE x }]", false, true},
		{"DROP PROCEDURE IF EXISTS x.p", "[{ALTER ROUTINE x }]", false, true},
		{"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @a = 1", "[{TRIGGER d t}]", false, true},
		{"DROP TRIGGER x.tr", "[{TRIGGER x }]", false, true},
		{"CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t", "[{EVENT d }]", false, true},
		{"CREATE TABLE t (id INT)", "[]", true, true},
		{"CREATE OR REPLACE TABLE t (id INT)", "[{DROP d t}]", true, true},
		{"CREATE ALGORITHM=MERGE VIEW v AS SELECT 1", "[]", true, true},
		{"ALTER VIEW v AS SELECT 2", "[{DROP d v}]", true, true},
		{"OPTIMIZE TABLE t", "[{SELECT d t} {INSERT d t}]", false, true},
		{"CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'x')", "[]", false, false},
		// Executable comments are code, as for the classifier.
		{"/*!40000 DROP TABLE t */", "[{DROP d t}]", false, true},
		{"/*M!100100 DROP TABLE IF EXISTS x.t */", "[{DROP x t}]", false, true},
		{"DROP /* a comment */ TABLE `t``1`", "[{DROP d t`1}]", false, true},
		{"ALTER DEFINER='u'@'h' VIEW v AS SELECT 1", "[{DROP d v}]", true, true},
	}
	for _, c := range cases {
		needs, prepared, ok := ddlNeeds(lex(c.sql), "d")
		got := fmt.Sprint(needs)
		if needs == nil {
			got = "[]"
		}
		if got != c.want || prepared != c.prepared || ok != c.ok {
			t.Errorf("%s:\n got %s prepared=%v ok=%v\nwant %s prepared=%v ok=%v", c.sql, got, prepared, ok, c.want, c.prepared, c.ok)
		}
	}
}

func TestInterpolate(t *testing.T) {
	got, err := interpolate("INSERT INTO t VALUES (?, '?', `?`, \"?\", ?) -- ?\n/* ? */ #?", []string{"1", "NULL"}, false)
	if err != nil || got != "INSERT INTO t VALUES (1, '?', `?`, \"?\", NULL) -- ?\n/* ? */ #?" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := interpolate("SELECT ?", nil, false); err == nil {
		t.Fatal("missing parameter not detected")
	}
	got, _ = interpolate(`SELECT 'a\'?', ?`, []string{"2"}, false)
	if got != `SELECT 'a\'?', 2` {
		t.Fatalf("%q", got)
	}
	// NO_BACKSLASH_ESCAPES: the backslash ends nothing; the string ends at
	// the next quote, and the ? after it is a placeholder.
	got, _ = interpolate(`SELECT 'a\', ?`, []string{"3"}, true)
	if got != `SELECT 'a\', 3` {
		t.Fatalf("NO_BACKSLASH_ESCAPES: %q", got)
	}
}

func TestQuoteLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"abc":      "'abc'",
		"it's":     "'it''s'",
		`a\b`:      "_utf8mb4 X'615c62'",
		"\x00":     "_utf8mb4 X'00'",
		"\xff\x01": "_utf8mb4 X'ff01'",
	} {
		if got := quoteLiteral(in, "utf8mb4"); got != want {
			t.Errorf("quoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
	if got := stringLiteral([]byte{0xff, 0}, 0xfe, "utf8mb4"); got != "_binary X'ff00'" {
		t.Errorf("binary: %s", got)
	}
}

func TestUTF8Safe(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"INSERT INTO t VALUES ('ok')", "INSERT INTO t VALUES ('ok')"},
		{"INSERT INTO t VALUES (_binary'\xff\\0\\'x', 'a')", "INSERT INTO t VALUES (_binary X'ff002778', 'a')"},
		{"INSERT INTO t VALUES ('\xe9t\xe9')", "INSERT INTO t VALUES (_latin1 X'e974e9')"},
		{"INSERT INTO `t` VALUES (\"\xff\"\"\")", "INSERT INTO `t` VALUES (_latin1 X'ff22')"},
	} {
		got, ok := utf8Safe(c.in, "latin1", false)
		if !ok || got != c.want {
			t.Errorf("utf8Safe(%q) = %q %v, want %q", c.in, got, ok, c.want)
		}
	}
	if _, ok := utf8Safe("INSERT INTO `\xff` VALUES (1)", "latin1", false); ok {
		t.Error("invalid identifier accepted")
	}
	if got, _ := utf8Safe("SELECT '\xff\\'", "binary", true); got != "SELECT _binary X'ff5c'" {
		t.Errorf("no-backslash mode: %q", got)
	}
}

func TestParseGrant(t *testing.T) {
	for _, c := range []struct {
		sql, want string
		ok        bool
	}{
		{"GRANT SELECT, INSERT (a, b), CREATE ROUTINE ON db.* TO u@h", "{[SELECT INSERT CREATE ROUTINE] db  false}", true},
		{"GRANT ALL PRIVILEGES ON *.* TO u WITH GRANT OPTION", "{[ALL PRIVILEGES]   false}", true},
		{"GRANT SELECT ON t TO u", "{[SELECT] d t false}", true},
		{"REVOKE UPDATE ON `x`.`y` FROM u", "{[UPDATE] x y false}", true},
		{"GRANT EXECUTE ON PROCEDURE db.p TO u", "{[ALTER ROUTINE] db p false}", true},
		{"GRANT r1 TO u", "{[R1]   true}", true},
	} {
		g, ok := parseGrant(lex(c.sql), "d")
		if got := fmt.Sprint(g); got != c.want || ok != c.ok {
			t.Errorf("%s: got %s %v, want %s %v", c.sql, got, ok, c.want, c.ok)
		}
	}
}

func TestDefinerOf(t *testing.T) {
	for in, want := range map[string]string{
		"CREATE DEFINER=`a`@`b` VIEW v AS SELECT 1":             "a@b true",
		"CREATE DEFINER = 'a'@'%' PROCEDURE p() SELECT 1":       "a@% true",
		"CREATE DEFINER=a@localhost TRIGGER t BEFORE INSERT":    "a@localhost true",
		"CREATE DEFINER=CURRENT_USER VIEW v AS SELECT 1":        "@ false",
		"CREATE VIEW v AS SELECT 1":                             "@ false",
		"CREATE /*!50013 DEFINER=`x`@`y` */ VIEW v AS SELECT 1": "x@y true",
	} {
		u, h, ok := definerOf(lex(in))
		if got := fmt.Sprintf("%s@%s %v", u, h, ok); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
