package sqlproxy

import (
	"fmt"
	"strings"

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

// tok is a token of classify's lexer with its value: words and numbers as
// written, quoted identifiers and strings unquoted, a user variable or
// account host (@x, @'x') without its '@'. The privilege checks read
// statements as toks.
type tok struct {
	kind byte // 'w' word, 'i' quoted identifier, 's' string, 'v' @variable, 'p' punctuation
	text string
}

func (t tok) up() string {
	switch t.kind {
	case 'w':
		return strings.ToUpper(t.text)
	case 'p':
		return t.text
	}
	return ""
}

// toks returns the values of the tokens ts of sql (classify.Statement.Tokens
// for its SQL); noBackslash: the session's sql_mode has NO_BACKSLASH_ESCAPES.
func toks(sql string, ts []classify.Token, noBackslash bool) []tok {
	out := make([]tok, len(ts))
	for i, t := range ts {
		raw := t.Text(sql)
		switch t.Kind {
		case classify.TokQuotedIdent:
			out[i] = tok{'i', classify.Unquote(raw, noBackslash)}
		case classify.TokString:
			out[i] = tok{'s', classify.Unquote(raw, noBackslash)}
		case classify.TokVar:
			out[i] = tok{'v', classify.Unquote(raw[1:], noBackslash)}
		case classify.TokPunct:
			out[i] = tok{'p', raw}
		default: // words, numbers, @@system variables
			out[i] = tok{'w', raw}
		}
	}
	return out
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
