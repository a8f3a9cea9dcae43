package classify

import (
	"strings"
	"testing"
)

// toks renders the tokens of s as "kind:text" words for comparison.
func toks(s string, noBackslash bool) (string, error) {
	ts, err := Tokenize(s, 0, noBackslash)
	var out []string
	for _, t := range ts {
		out = append(out, string("EwiSnvVp"[t.Kind])+":"+t.Text(s))
	}
	return strings.Join(out, " "), err
}

// TestLexer covers the cases on which the proxy's former scanners
// (classify's, ddlpriv's tokenize, leadingWords and the named-lock scanner)
// disagreed: every consumer now sees these tokens.
func TestLexer(t *testing.T) {
	for _, c := range []struct {
		sql, want   string
		noBackslash bool
	}{
		// Executable comments are code, with or without a version number;
		// the closing */ is not a token.
		{sql: "/*!40000 DROP TABLE t */", want: "w:DROP w:TABLE w:t"},
		{sql: "/*!DROP*/ TABLE t", want: "w:DROP w:TABLE w:t"},
		{sql: "/*M!100100 DROP TABLE t */", want: "w:DROP w:TABLE w:t"},
		{sql: "/*m! DROP */ TABLE t", want: "w:DROP w:TABLE w:t"},
		{sql: "SELECT /*M!GET_LOCK*/('a', 1)", want: "w:SELECT w:GET_LOCK p:( S:'a' p:, n:1 p:)"},
		{sql: "CREATE /*!50013 DEFINER=`u`@`h` */ VIEW v", want: "w:CREATE w:DEFINER p:= i:`u` v:@`h` w:VIEW w:v"},
		// Plain comments are skipped wherever they are.
		{sql: "DROP /* TABLE */ VIEW v -- x\n# y\n", want: "w:DROP w:VIEW w:v"},
		{sql: "SELECT 1--1", want: "w:SELECT n:1 p:- p:- n:1"}, // "--" needs a blank after it
		{sql: "SELECT 1 --\tx", want: "w:SELECT n:1"},
		// Quotes: doubled quotes and backslash escapes.
		{sql: "SELECT 'it''s', \"a\\\"b\", `x``y`", want: "w:SELECT S:'it''s' p:, S:\"a\\\"b\" p:, i:`x``y`"},
		{sql: `SELECT 'a\'b'`, want: `w:SELECT S:'a\'b'`},
		// NO_BACKSLASH_ESCAPES: a backslash is an ordinary character, so
		// the string ends at the next quote.
		{sql: `SELECT 'a\', GET_LOCK('b', 1)`, want: `w:SELECT S:'a\' p:, w:GET_LOCK p:( S:'b' p:, n:1 p:)`, noBackslash: true},
		// Accounts and variables.
		{sql: "'u'@'h' a@localhost @@session.x", want: "S:'u' v:@'h' w:a v:@localhost V:@@session.x"},
		// Words hold $, digits and non-ASCII bytes.
		{sql: "SELECT $a, tbl_1, été", want: "w:SELECT w:$a p:, w:tbl_1 p:, w:été"},
	} {
		got, err := toks(c.sql, c.noBackslash)
		if err != nil || got != c.want {
			t.Errorf("%q (noBackslash=%v):\n got %s %v\nwant %s", c.sql, c.noBackslash, got, err, c.want)
		}
	}
	for _, c := range []struct {
		sql         string
		noBackslash bool
	}{
		{`SELECT 'a\'`, false}, // the quote is escaped: unterminated
		{"SELECT `a", false},
		{"SELECT 1 /* x", false},
	} {
		if _, err := toks(c.sql, c.noBackslash); err == nil {
			t.Errorf("%q: no error", c.sql)
		}
	}
}

func TestScannerResume(t *testing.T) {
	s := "SELECT f(a, 'b)') FROM t"
	sc := NewScanner(s, strings.Index(s, "f"), false)
	var got []string
	for tk := sc.Next(); tk.Kind != TokEOF; tk = sc.Next() {
		got = append(got, tk.Text(s))
	}
	if strings.Join(got, " ") != "f ( a , 'b)' ) FROM t" || sc.Err() != nil {
		t.Fatalf("%q %v", got, sc.Err())
	}
}

func TestUnquote(t *testing.T) {
	for _, c := range []struct {
		in, want    string
		noBackslash bool
	}{
		{in: "word", want: "word"},
		{in: "`a``b`", want: "a`b"},
		{in: "'it''s'", want: "it's"},
		{in: `"say ""hi"""`, want: `say "hi"`},
		{in: `'a\nb\tc\0\Z\\\'\"\x'`, want: "a\nb\tc\x00\x1a\\'\"x"},
		{in: `'100\%\_'`, want: `100\%\_`},
		{in: `'a\nb\'`, want: `a\nb\`, noBackslash: true},
		{in: `'a\'`, want: `a\`, noBackslash: true},
	} {
		if got := Unquote(c.in, c.noBackslash); got != c.want {
			t.Errorf("Unquote(%q, %v) = %q, want %q", c.in, c.noBackslash, got, c.want)
		}
	}
}
