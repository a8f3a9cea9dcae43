package classify

import (
	"errors"
	"strings"
)

// tokKind is the kind of a lexical token of MariaDB SQL.
type tokKind uint8

const (
	tkEOF         tokKind = iota
	tkWord                // keyword or bare identifier
	tkQuotedIdent         // `identifier`
	tkString              // '...' or "..."
	tkNumber              // 12, 1.5, 0x41, 1e5
	tkVar                 // @name, @'name', @`name`
	tkSysVar              // @@name, @@session.name
	tkPunct               // any other single byte
)

// token is one lexical token; start and end are byte offsets into the scanned text.
type token struct {
	kind       tokKind
	start, end int
}

// scanner is a small MariaDB lexer. It skips whitespace and comments; the
// contents of executable comments (/*! ... */ and /*M! ... */) are scanned as
// code, as MariaDB does.
type scanner struct {
	s      string
	pos    int
	inBang bool
	err    error
	// noBackslash: the session's sql_mode has NO_BACKSLASH_ESCAPES, so a
	// backslash in a string is an ordinary character.
	noBackslash bool
}

var (
	errUnterminatedString  = errors.New("unterminated quoted string")
	errUnterminatedIdent   = errors.New("unterminated quoted identifier")
	errUnterminatedComment = errors.New("unterminated comment")
)

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// skip advances over whitespace and comments. It returns false on an
// unterminated comment (sc.err is set).
func (sc *scanner) skip() bool {
	s := sc.s
	for sc.pos < len(s) {
		c := s[sc.pos]
		switch {
		case isSpace(c):
			sc.pos++
		case c == '#':
			sc.skipLine()
		case c == '-' && sc.pos+1 < len(s) && s[sc.pos+1] == '-' &&
			(sc.pos+2 == len(s) || s[sc.pos+2] <= ' '):
			sc.skipLine()
		case c == '*' && sc.inBang && sc.pos+1 < len(s) && s[sc.pos+1] == '/':
			sc.inBang = false
			sc.pos += 2
		case c == '/' && sc.pos+1 < len(s) && s[sc.pos+1] == '*':
			p := sc.pos + 2
			bang := false
			if p < len(s) && s[p] == '!' {
				bang, p = true, p+1
			} else if p+1 < len(s) && (s[p] == 'M' || s[p] == 'm') && s[p+1] == '!' {
				bang, p = true, p+2
			}
			if bang && !sc.inBang {
				for n := 0; n < 6 && p < len(s) && s[p] >= '0' && s[p] <= '9'; n++ {
					p++
				}
				sc.inBang = true
				sc.pos = p
				continue
			}
			end := strings.Index(s[sc.pos+2:], "*/")
			if end < 0 {
				sc.err = errUnterminatedComment
				sc.pos = len(s)
				return false
			}
			sc.pos += 2 + end + 2
		default:
			return true
		}
	}
	return true
}

func (sc *scanner) skipLine() {
	if i := strings.IndexByte(sc.s[sc.pos:], '\n'); i >= 0 {
		sc.pos += i + 1
	} else {
		sc.pos = len(sc.s)
	}
}

// quoted scans a quoted string or identifier starting at sc.pos (the quote).
func (sc *scanner) quoted(q byte) bool {
	s := sc.s
	p := sc.pos + 1
	for p < len(s) {
		c := s[p]
		switch {
		case c == '\\' && q != '`' && !sc.noBackslash:
			p += 2
		case c == q:
			if p+1 < len(s) && s[p+1] == q {
				p += 2
				continue
			}
			sc.pos = p + 1
			return true
		default:
			p++
		}
	}
	sc.pos = len(s)
	if q == '`' {
		sc.err = errUnterminatedIdent
	} else {
		sc.err = errUnterminatedString
	}
	return false
}

// next returns the next token; at the end or on an error it returns tkEOF
// (check sc.err).
func (sc *scanner) next() token {
	if !sc.skip() || sc.pos >= len(sc.s) {
		return token{kind: tkEOF, start: len(sc.s), end: len(sc.s)}
	}
	s := sc.s
	start := sc.pos
	c := s[start]
	switch {
	case c == '\'' || c == '"':
		if !sc.quoted(c) {
			return token{kind: tkEOF, start: len(s), end: len(s)}
		}
		return token{kind: tkString, start: start, end: sc.pos}
	case c == '`':
		if !sc.quoted(c) {
			return token{kind: tkEOF, start: len(s), end: len(s)}
		}
		return token{kind: tkQuotedIdent, start: start, end: sc.pos}
	case c >= '0' && c <= '9' || (c == '.' && start+1 < len(s) && s[start+1] >= '0' && s[start+1] <= '9'):
		p := start + 1
		for p < len(s) && (isWordByte(s[p]) || s[p] == '.') {
			p++
		}
		sc.pos = p
		return token{kind: tkNumber, start: start, end: p}
	case isWordByte(c):
		p := start + 1
		for p < len(s) && isWordByte(s[p]) {
			p++
		}
		sc.pos = p
		return token{kind: tkWord, start: start, end: p}
	case c == '@':
		if start+1 < len(s) && s[start+1] == '@' {
			p := start + 2
			for p < len(s) && (isWordByte(s[p]) || s[p] == '.') {
				p++
			}
			sc.pos = p
			return token{kind: tkSysVar, start: start, end: p}
		}
		sc.pos = start + 1
		if sc.pos < len(s) && (s[sc.pos] == '\'' || s[sc.pos] == '"' || s[sc.pos] == '`') {
			if !sc.quoted(s[sc.pos]) {
				return token{kind: tkEOF, start: len(s), end: len(s)}
			}
		} else {
			for sc.pos < len(s) && (isWordByte(s[sc.pos]) || s[sc.pos] == '.') {
				sc.pos++
			}
		}
		return token{kind: tkVar, start: start, end: sc.pos}
	}
	sc.pos = start + 1
	return token{kind: tkPunct, start: start, end: sc.pos}
}

// text returns the token's text.
func (t token) text(s string) string { return s[t.start:t.end] }

// is reports whether t is the bare word w (case-insensitive).
func (t token) is(s, w string) bool {
	return t.kind == tkWord && t.end-t.start == len(w) && strings.EqualFold(s[t.start:t.end], w)
}

// isPunct reports whether t is the single byte c.
func (t token) isPunct(s string, c byte) bool {
	return t.kind == tkPunct && s[t.start] == c
}

// tokenize returns up to max tokens of s (all of them if max <= 0);
// noBackslash as in scanner.
func tokenize(s string, max int, noBackslash bool) ([]token, error) {
	sc := scanner{s: s, noBackslash: noBackslash}
	var out []token
	if max > 0 {
		out = make([]token, 0, max)
	}
	for max <= 0 || len(out) < max {
		t := sc.next()
		if t.kind == tkEOF {
			break
		}
		out = append(out, t)
	}
	return out, sc.err
}

// callEnd returns the end offset of the function call whose name starts at
// pos in s: the end of the name, or of the balanced parenthesised argument
// list that follows it. ok is false when no call name is found at pos.
func callEnd(s string, pos int, noBackslash bool) (nameEnd, end int, ok bool) {
	sc := scanner{s: s, pos: pos, noBackslash: noBackslash}
	name := sc.next()
	if name.kind != tkWord || name.start != pos {
		return 0, 0, false
	}
	save := sc
	t := sc.next()
	if !t.isPunct(s, '(') {
		return name.end, name.end, true
	}
	depth := 1
	for depth > 0 {
		t = sc.next()
		switch {
		case t.kind == tkEOF:
			return 0, 0, false
		case t.isPunct(s, '('):
			depth++
		case t.isPunct(s, ')'):
			depth--
		}
	}
	_ = save
	return name.end, t.end, true
}

// Shape returns the text of statement s with its single-quoted string
// literals and its numbers replaced by ?, tokens separated by one space:
// statements of one shape reference the same objects, so they need the same
// privileges. Identifiers keep their case (table names may be case
// sensitive) and double-quoted strings are kept whole (under ANSI_QUOTES
// they are identifiers). ok is false when s does not scan. noBackslash:
// the session's sql_mode has NO_BACKSLASH_ESCAPES.
func Shape(s string, noBackslash bool) (shape string, ok bool) {
	sc := scanner{s: s, noBackslash: noBackslash}
	var b strings.Builder
	b.Grow(len(s))
	for {
		t := sc.next()
		if t.kind == tkEOF {
			break
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		switch {
		case t.kind == tkNumber, t.kind == tkString && s[t.start] == '\'':
			b.WriteByte('?')
		default:
			b.WriteString(s[t.start:t.end])
		}
	}
	return b.String(), sc.err == nil
}
