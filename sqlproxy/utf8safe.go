package sqlproxy

import (
	"encoding/hex"
	"strings"
	"unicode/utf8"

	"github.com/lockstepdb/lockstep/sqlproxy/classify"
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
	last := 0
	sc := classify.NewScanner(sql, 0, noBackslash)
	for t := sc.Next(); t.Kind != classify.TokEOF; t = sc.Next() {
		lit := t.Text(sql)
		if t.Kind != classify.TokString || utf8.ValidString(lit) {
			continue
		}
		b.WriteString(sql[last:t.Start])
		if !hasIntroducer(b.String()) {
			if charset == "" {
				charset = "binary"
			}
			b.WriteString("_" + charset + " ")
		} else {
			b.WriteString(" ")
		}
		b.WriteString("X'" + hex.EncodeToString([]byte(classify.Unquote(lit, noBackslash))) + "'")
		last = t.End
	}
	b.WriteString(sql[last:])
	out := b.String()
	return out, utf8.ValidString(out)
}

// hasIntroducer reports whether the text ends with a charset introducer
// such as _binary or _latin1 (optionally followed by blanks).
func hasIntroducer(s string) bool {
	s = strings.TrimRight(s, " \t\r\n")
	j := len(s)
	for j > 0 && classify.IsWordByte(s[j-1]) {
		j--
	}
	w := s[j:]
	return len(w) > 1 && w[0] == '_' && (j == 0 || !classify.IsWordByte(s[j-1]))
}
