package classify

import (
	"fmt"
	"strings"
)

// Split splits the text of one COM_QUERY, which may hold several statements
// separated by ';', into statements. It is aware of quoted strings, quoted
// identifiers, comments (executable comments /*! */ and /*M! */ are scanned
// as code, as the server does) and of the BEGIN ... END bodies of CREATE
// PROCEDURE/FUNCTION/TRIGGER/EVENT and BEGIN NOT ATOMIC blocks, whose ';'
// do not end the statement. Each statement keeps its original text, trimmed
// of surrounding white space and without its ';'. Statements that are empty
// or hold only comments are dropped. An unterminated quote or comment is an
// error.
// noBackslash: the session's sql_mode has NO_BACKSLASH_ESCAPES.
func Split(query string, noBackslash bool) ([]string, error) {
	sc := Scanner{s: query, noBackslash: noBackslash}
	var out []string
	segStart := 0
	nWords := 0 // words seen in the current statement
	first := "" // first word, upper case
	compound := false
	depth := 0
	emit := func(end int) {
		seg := strings.TrimSpace(query[segStart:end])
		if seg != "" {
			if toks, _ := Tokenize(seg, 1, noBackslash); len(toks) > 0 {
				out = append(out, seg)
			}
		}
	}
	for {
		t := sc.Next()
		if t.Kind == TokEOF {
			break
		}
		if t.IsPunct(query, ';') && depth == 0 {
			emit(t.Start)
			segStart = t.End
			nWords, first, compound, depth = 0, "", false, 0
			continue
		}
		if t.Kind != TokWord {
			continue
		}
		nWords++
		switch {
		case nWords == 1:
			first = strings.ToUpper(t.Text(query))
		case !compound && nWords == 2 && first == "BEGIN" && t.Is(query, "NOT"):
			compound = true
			depth = 1 // the BEGIN already seen
		case !compound && first == "CREATE" && nWords <= 12 &&
			(t.Is(query, "PROCEDURE") || t.Is(query, "FUNCTION") || t.Is(query, "TRIGGER") || t.Is(query, "EVENT")):
			compound = true
		case compound && (t.Is(query, "BEGIN") || t.Is(query, "CASE")):
			depth++
		case compound && t.Is(query, "END") && depth > 0:
			peek := sc
			n := peek.Next()
			if n.Is(query, "IF") || n.Is(query, "LOOP") || n.Is(query, "WHILE") || n.Is(query, "REPEAT") || n.Is(query, "FOR") {
				continue
			}
			if n.Is(query, "CASE") {
				sc = peek // END CASE closes the CASE counted above
			}
			depth--
		}
	}
	if sc.err != nil {
		return nil, fmt.Errorf("split query: %w", sc.err)
	}
	emit(len(query))
	return out, nil
}
