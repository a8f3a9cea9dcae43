package classify

import (
	"errors"
	"strings"
)

// This file is the project's one SQL lexer: classification, splitting,
// shapes, and the proxy's DDL privilege checks, named-lock calls and
// literal rewriting all scan with it, so they agree on quotes, comments,
// executable comments and NO_BACKSLASH_ESCAPES.

// TokenKind is the kind of a lexical token of MariaDB SQL.
type TokenKind uint8

// Token kinds.
const (
	TokEOF         TokenKind = iota
	TokWord                  // keyword or bare identifier
	TokQuotedIdent           // `identifier`
	TokString                // '...' or "..."
	TokNumber                // 12, 1.5, 0x41, 1e5
	TokVar                   // @name, @'name', @`name`
	TokSysVar                // @@name, @@session.name
	TokPunct                 // any other single byte
)

// Token is one lexical token; Start and End are byte offsets into the
// scanned text.
type Token struct {
	Kind       TokenKind
	Start, End int
}

// Scanner is a small MariaDB lexer. It skips whitespace and comments; the
// contents of executable comments (/*! ... */, /*!NNNNN ... */ and /*M! ...
// */, /*M!NNNNNN ... */) are scanned as code, as MariaDB does (every version
// number is taken as satisfied). The zero value scans nothing; use
// NewScanner. A Scanner is a small value: copying it saves a position to
// come back to.
type Scanner struct {
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

// NewScanner returns a Scanner over s starting at byte offset pos;
// noBackslash: the session's sql_mode has NO_BACKSLASH_ESCAPES.
func NewScanner(s string, pos int, noBackslash bool) Scanner {
	return Scanner{s: s, pos: pos, noBackslash: noBackslash}
}

// Err returns the error that ended the scan (an unterminated quote or
// comment), or nil.
func (sc *Scanner) Err() error { return sc.err }

// Pos returns the offset after the last token returned.
func (sc *Scanner) Pos() int { return sc.pos }

// IsWordByte reports whether c can be part of a bare word (identifier or
// keyword).
func IsWordByte(c byte) bool { return isWordByte(c) }

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// skip advances over whitespace and comments. It returns false on an
// unterminated comment (sc.err is set).
func (sc *Scanner) skip() bool {
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

func (sc *Scanner) skipLine() {
	if i := strings.IndexByte(sc.s[sc.pos:], '\n'); i >= 0 {
		sc.pos += i + 1
	} else {
		sc.pos = len(sc.s)
	}
}

// quoted scans a quoted string or identifier starting at sc.pos (the quote).
func (sc *Scanner) quoted(q byte) bool {
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

// Next returns the next token; at the end or on an error it returns TokEOF
// (check Err).
func (sc *Scanner) Next() Token {
	if !sc.skip() || sc.pos >= len(sc.s) {
		return Token{Kind: TokEOF, Start: len(sc.s), End: len(sc.s)}
	}
	s := sc.s
	start := sc.pos
	c := s[start]
	switch {
	case c == '\'' || c == '"':
		if !sc.quoted(c) {
			return Token{Kind: TokEOF, Start: len(s), End: len(s)}
		}
		return Token{Kind: TokString, Start: start, End: sc.pos}
	case c == '`':
		if !sc.quoted(c) {
			return Token{Kind: TokEOF, Start: len(s), End: len(s)}
		}
		return Token{Kind: TokQuotedIdent, Start: start, End: sc.pos}
	case c >= '0' && c <= '9' || (c == '.' && start+1 < len(s) && s[start+1] >= '0' && s[start+1] <= '9'):
		p := start + 1
		for p < len(s) && (isWordByte(s[p]) || s[p] == '.') {
			p++
		}
		sc.pos = p
		return Token{Kind: TokNumber, Start: start, End: p}
	case isWordByte(c):
		p := start + 1
		for p < len(s) && isWordByte(s[p]) {
			p++
		}
		sc.pos = p
		return Token{Kind: TokWord, Start: start, End: p}
	case c == '@':
		if start+1 < len(s) && s[start+1] == '@' {
			p := start + 2
			for p < len(s) && (isWordByte(s[p]) || s[p] == '.') {
				p++
			}
			sc.pos = p
			return Token{Kind: TokSysVar, Start: start, End: p}
		}
		sc.pos = start + 1
		if sc.pos < len(s) && (s[sc.pos] == '\'' || s[sc.pos] == '"' || s[sc.pos] == '`') {
			if !sc.quoted(s[sc.pos]) {
				return Token{Kind: TokEOF, Start: len(s), End: len(s)}
			}
		} else {
			for sc.pos < len(s) && (isWordByte(s[sc.pos]) || s[sc.pos] == '.') {
				sc.pos++
			}
		}
		return Token{Kind: TokVar, Start: start, End: sc.pos}
	}
	sc.pos = start + 1
	return Token{Kind: TokPunct, Start: start, End: sc.pos}
}

// Text returns the token's text.
func (t Token) Text(s string) string { return s[t.Start:t.End] }

// Is reports whether t is the bare word w (case-insensitive).
func (t Token) Is(s, w string) bool {
	return t.Kind == TokWord && t.End-t.Start == len(w) && strings.EqualFold(s[t.Start:t.End], w)
}

// IsPunct reports whether t is the single byte c.
func (t Token) IsPunct(s string, c byte) bool {
	return t.Kind == TokPunct && s[t.Start] == c
}

// Upper returns the upper-cased text of a bare word token ("" for any other
// kind).
func (t Token) Upper(s string) string {
	if t.Kind != TokWord {
		return ""
	}
	return strings.ToUpper(s[t.Start:t.End])
}

// Tokenize returns up to max tokens of s (all of them if max <= 0);
// noBackslash: the session's sql_mode has NO_BACKSLASH_ESCAPES.
func Tokenize(s string, max int, noBackslash bool) ([]Token, error) {
	sc := Scanner{s: s, noBackslash: noBackslash}
	var out []Token
	if max > 0 {
		out = make([]Token, 0, max)
	}
	for max <= 0 || len(out) < max {
		t := sc.Next()
		if t.Kind == TokEOF {
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
	sc := Scanner{s: s, pos: pos, noBackslash: noBackslash}
	name := sc.Next()
	if name.Kind != TokWord || name.Start != pos {
		return 0, 0, false
	}
	save := sc
	t := sc.Next()
	if !t.IsPunct(s, '(') {
		return name.End, name.End, true
	}
	depth := 1
	for depth > 0 {
		t = sc.Next()
		switch {
		case t.Kind == TokEOF:
			return 0, 0, false
		case t.IsPunct(s, '('):
			depth++
		case t.IsPunct(s, ')'):
			depth--
		}
	}
	_ = save
	return name.End, t.End, true
}

// Shape returns the text of statement s with its single-quoted string
// literals and its numbers replaced by ?, tokens separated by one space:
// statements of one shape reference the same objects, so they need the same
// privileges. Identifiers keep their case (table names may be case
// sensitive) and double-quoted strings are kept whole (under ANSI_QUOTES
// they are identifiers). ok is false when s does not scan. noBackslash:
// the session's sql_mode has NO_BACKSLASH_ESCAPES.
func Shape(s string, noBackslash bool) (shape string, ok bool) {
	sc := Scanner{s: s, noBackslash: noBackslash}
	var b strings.Builder
	b.Grow(len(s))
	for {
		t := sc.Next()
		if t.Kind == TokEOF {
			break
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		switch {
		case t.Kind == TokNumber, t.Kind == TokString && s[t.Start] == '\'':
			b.WriteByte('?')
		default:
			b.WriteString(s[t.Start:t.End])
		}
	}
	return b.String(), sc.err == nil
}

// Unquote returns the value of the text of a string token ('...' or "...":
// escapes decoded, unless noBackslash, and doubled quotes undone), a quoted
// identifier (`...`: doubled backquotes undone) or any other token (as is).
// \% and \_ keep their backslash, as in MariaDB.
func Unquote(t string, noBackslash bool) string {
	if len(t) < 2 {
		return t
	}
	q := t[0]
	if q != '\'' && q != '"' && q != '`' {
		return t
	}
	in := t[1:]
	if in[len(in)-1] == q {
		in = in[:len(in)-1]
	}
	if q == '`' {
		return strings.ReplaceAll(in, "``", "`")
	}
	if strings.IndexByte(in, q) < 0 && (noBackslash || strings.IndexByte(in, '\\') < 0) {
		return in
	}
	var b strings.Builder
	b.Grow(len(in))
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c == '\\' && !noBackslash && i+1 < len(in) {
			i++
			switch n := in[i]; n {
			case '0':
				b.WriteByte(0)
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			case 'Z':
				b.WriteByte(26)
			case '%', '_':
				b.WriteByte('\\')
				b.WriteByte(n)
			default:
				b.WriteByte(n)
			}
			continue
		}
		if c == q && i+1 < len(in) && in[i+1] == q {
			i++
		}
		b.WriteByte(c)
	}
	return b.String()
}
