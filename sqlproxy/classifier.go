package sqlproxy

import (
	"fmt"

	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// classify classifies one statement of the session (package classify does
// the work; the count is a test hook, CountClassify).
func (s *session) classify(sql string, p classify.Pins) classify.Statement {
	if n := s.srv.classified; n != nil {
		n.Add(1)
	}
	st := classify.Classify(sql, p)
	if st.SQL == "" {
		st.SQL = sql
	}
	return st
}

// split splits the text of a COM_QUERY into statements. A splitter bug
// refuses the query instead of ending the session.
func (s *session) split(q string, noBackslash bool) (parts []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			parts, err = nil, fmt.Errorf("Lockstep could not split the query (internal error: %v)", r)
		}
	}()
	return classify.Split(q, noBackslash)
}

// isAccountStmt reports account-management statements, which PREPARE may not
// privilege-check.
func isAccountStmt(sql string, noBackslash bool) (bool, bool) {
	w := leadingWords(sql, 2, noBackslash)
	if len(w) == 0 {
		return false, false
	}
	switch w[0] {
	case "GRANT", "REVOKE":
		return true, true
	case "CREATE", "DROP", "RENAME", "ALTER":
		if len(w) > 1 && (w[1] == "USER" || w[1] == "ROLE") {
			return true, false
		}
		if len(w) > 1 && w[0] == "CREATE" && w[1] == "OR" {
			ws := leadingWords(sql, 4, noBackslash)
			if len(ws) == 4 && (ws[3] == "USER" || ws[3] == "ROLE") {
				return true, false
			}
		}
	case "SET":
		if len(w) > 1 && (w[1] == "PASSWORD" || w[1] == "DEFAULT") {
			return true, false
		}
	}
	return false, false
}

// leadingWords returns up to n upper-cased leading keywords (opening
// parentheses skipped), as classify's lexer reads them: comments skipped,
// executable comments scanned as code.
func leadingWords(sql string, n int, noBackslash bool) []string {
	var out []string
	sc := classify.NewScanner(sql, 0, noBackslash)
	for len(out) < n {
		t := sc.Next()
		switch {
		case t.IsPunct(sql, '('):
			continue
		case t.Kind == classify.TokWord:
			out = append(out, t.Upper(sql))
			continue
		}
		break
	}
	return out
}
