package sqlproxy

import (
	"fmt"
	"time"

	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// now is the wall clock statement times are pinned with (Config.Clock).
func (srv *Server) now() time.Time {
	if srv.cfg.Clock != nil {
		return srv.cfg.Clock()
	}
	return time.Now()
}

// classify classifies one statement of a session (package classify does
// the work; the count is a test hook, CountClassify).

func (srv *Server) classify(sql string, p classify.Pins) classify.Statement {
	if n := srv.classified; n != nil {
		n.Add(1)
	}
	st := classify.Classify(sql, p)
	if st.SQL == "" {
		st.SQL = sql
	}
	return st
}

// splitQuery splits the text of a COM_QUERY into statements. A splitter
// bug refuses the query instead of ending the session.
func splitQuery(q string, noBackslash bool) (parts []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			parts, err = nil, fmt.Errorf("Lockstep could not split the query (internal error: %v)", r)
		}
	}()
	return classify.Split(q, noBackslash)
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
