package classify

import (
	"strings"
	"testing"
)

// viaParser classifies sql the slow way (TiDB parser and walker), skipping
// the lexical fast path; ok is false when the parser cannot parse it.
func viaParser(t *testing.T, sql string, p Pins) (Statement, bool) {
	t.Helper()
	lead, err := Tokenize(sql, 16, false)
	if err != nil || len(lead) == 0 {
		return Statement{}, false
	}
	stmts, release, err := parse(parseView(sql), false)
	defer release()
	if err != nil || len(stmts) != 1 {
		return Statement{}, false
	}
	return classifyNode(sql, stmts[0], lead, p), true
}

// TestSelectFastPath: a SELECT outside a transaction is classified by a
// token scan without the parser, unless it holds a word that can make it
// more than a local read (a file written, a sequence advanced) or a ';'.
// Whatever the scan lets through, the parser calls a Read too.
func TestSelectFastPath(t *testing.T) {
	cases := []struct {
		sql  string
		fast bool // classified by the scan, without the parser
	}{
		{"SELECT c FROM sbtest1 WHERE id=5012", true},
		{"select c from sbtest1 where id = ?", true},
		{"SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 1 AND 100 ORDER BY c", true},
		{"SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN ? AND ?", true},
		{"SELECT * FROM t FOR UPDATE", true},
		{"SELECT * FROM t LOCK IN SHARE MODE", true},
		{"SELECT 1 INTO @x", true},
		{"SELECT UUID(), SYSDATE(), RAND(), CONNECTION_ID()", true},
		{"SELECT 'INTO OUTFILE', `nextval` FROM t", true}, // quoted: not words
		{"SELECT a FROM t /* NEXTVAL(s) */", true},        // a plain comment
		{"SELECT next_id, setvalue FROM t", true},         // longer words
		{"SELECT LASTVAL(s)", true},
		{"SELECT a FROM t UNION SELECT b FROM u", true},
		{"SELECT * FROM t INTO OUTFILE '/tmp/x'", false},
		{"SELECT * INTO DUMPFILE '/tmp/x' FROM t", false},
		{"SELECT 1 /*!INTO OUTFILE '/tmp/x' */", false}, // executable comments are code
		{"SELECT 1 /*M!100000 INTO OUTFILE '/tmp/x' */", false},
		{"SELECT NEXTVAL(s)", false},
		{"select nextval(s)", false},
		{"SELECT SETVAL(s, 10)", false},
		{"SELECT NEXT VALUE FOR s", false},
		{"SELECT 1; SELECT 2", false},
		{"SELECT 'unterminated", false},
	}
	for _, c := range cases {
		lead, err := Tokenize(c.sql, 16, false)
		if err != nil {
			if c.fast {
				t.Errorf("%s: tokenize: %v", c.sql, err)
			}
			continue
		}
		st, fast := classifyLexical(c.sql, lead, testPins())
		if fast != c.fast {
			t.Errorf("%s: fast path %v, want %v", c.sql, fast, c.fast)
			continue
		}
		if !fast {
			continue
		}
		if st.Class != Read || st.Kind != "SELECT" || st.SQL != c.sql {
			t.Errorf("%s: fast path gave %v %q %q", c.sql, st.Class, st.Kind, st.SQL)
		}
		if slow, ok := viaParser(t, c.sql, testPins()); ok && slow.Class != Read {
			t.Errorf("%s: the parser says %v (%v), the fast path Read", c.sql, slow.Class, slow.Err)
		}
		// Inside a transaction the scan is skipped: the statement is
		// parsed, checked and recorded for the commit-time replay.
		p := testPins()
		p.InTx = true
		if _, fast := classifyLexical(c.sql, lead, p); fast {
			t.Errorf("%s: fast path taken inside a transaction", c.sql)
		}
	}
}

// TestSelectFastPathAgreesWithCorpus: every corpus SELECT the scan lets
// through is a Read for the parser as well.
func TestSelectFastPathAgreesWithCorpus(t *testing.T) {
	n := 0
	for _, c := range loadCorpus(t) {
		lead, err := Tokenize(c.sql, 16, false)
		if err != nil || len(lead) == 0 || !strings.EqualFold(lead[0].Text(c.sql), "SELECT") {
			continue
		}
		st, fast := classifyLexical(c.sql, lead, testPins())
		if !fast {
			continue
		}
		n++
		if slow, ok := viaParser(t, c.sql, testPins()); ok && slow.Class != st.Class {
			t.Errorf("corpus.txt:%d: %s\n\tfast path %v, parser %v (%v)", c.line, c.sql, st.Class, slow.Class, slow.Err)
		}
	}
	if n < 10 {
		t.Errorf("only %d corpus SELECTs took the fast path", n)
	}
}
