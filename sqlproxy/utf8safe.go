package sqlproxy

import (
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// The log encoding (command.Encode, JSON) replaces bytes that are not valid
// UTF-8 with U+FFFD, so a statement carrying raw binary bytes in a string
// literal (go-sql-driver's interpolateParams sends _binary'...' that way;
// latin1 clients send any text that way) would be silently corrupted on
// every node. utf8Safe rewrites each string literal holding such bytes into
// a hex literal with a character set introducer, which means the same
// bytes in the same character set and is pure ASCII.

// utf8Safe returns sql with its non-UTF-8 string literals hex-encoded.
// charset is character_set_connection (introducer for literals without
// one); noBackslash reports NO_BACKSLASH_ESCAPES. ok=false when invalid bytes
// remain outside string literals (identifiers, comments).
func utf8Safe(sql, charset string, noBackslash bool) (string, bool) {
	if utf8.ValidString(sql) {
		return sql, true
	}
	var b strings.Builder
	i := 0
	for i < len(sql) {
		c := sql[i]
		switch {
		case c == '\'' || c == '"':
			body, end := unquote(sql, i, noBackslash)
			lit := sql[i:end]
			if !utf8.ValidString(lit) {
				if !hasIntroducer(b.String()) {
					if charset == "" {
						charset = "binary"
					}
					b.WriteString("_" + charset + " ")
				} else {
					b.WriteString(" ")
				}
				lit = "X'" + hex.EncodeToString([]byte(body)) + "'"
			}
			b.WriteString(lit)
			i = end
			continue
		case c == '`':
			j := strings.IndexByte(sql[i+1:], '`')
			if j < 0 {
				j = len(sql) - i - 2
			}
			b.WriteString(sql[i : i+j+2])
			i += j + 2
			continue
		}
		b.WriteByte(c)
		i++
	}
	out := b.String()
	return out, utf8.ValidString(out)
}

// hasIntroducer reports whether the text ends with a charset introducer
// such as _binary or _latin1 (optionally followed by blanks).
func hasIntroducer(s string) bool {
	s = strings.TrimRight(s, " \t\r\n")
	j := len(s)
	for j > 0 && isWordByte(s[j-1]) {
		j--
	}
	w := s[j:]
	return len(w) > 1 && w[0] == '_' && (j == 0 || !isWordByte(s[j-1]))
}

// unquote reads the string literal starting at sql[i] and returns its
// value and the index after it.
func unquote(sql string, i int, noBackslash bool) (string, int) {
	q := sql[i]
	var b strings.Builder
	j := i + 1
	for j < len(sql) {
		c := sql[j]
		if c == '\\' && !noBackslash && j+1 < len(sql) {
			n := sql[j+1]
			switch n {
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
			j += 2
			continue
		}
		if c == q {
			if j+1 < len(sql) && sql[j+1] == q {
				b.WriteByte(q)
				j += 2
				continue
			}
			return b.String(), j + 1
		}
		b.WriteByte(c)
		j++
	}
	return b.String(), len(sql)
}
