package sqlproxy

import "strings"

// defaultClassifier is a TEMPORARY keyword classifier used until package
// classify lands; it is replaced by an adapter over classify.
type defaultClassifier struct{}

func (defaultClassifier) split(q string) ([]string, error) { return splitSimple(q), nil }

func (defaultClassifier) classify(sql string, p pins) stmt {
	w := leadingWords(sql, 3)
	st := stmt{class: classRead, sql: sql}
	if len(w) == 0 {
		return st
	}
	st.kind = w[0]
	switch w[0] {
	case "INSERT", "REPLACE", "UPDATE", "DELETE":
		st.class = classWrite
		if w[0] == "INSERT" || w[0] == "REPLACE" {
			ws := strings.Fields(strings.TrimSpace(sql))
			for i, x := range ws {
				if strings.EqualFold(x, "INTO") && i+1 < len(ws) {
					st.insertTable = strings.Trim(strings.SplitN(ws[i+1], "(", 2)[0], "`")
					break
				}
			}
		}
		for _, part := range strings.Split(sql, "@")[1:] {
			j := 0
			for j < len(part) && isWordByte(part[j]) {
				j++
			}
			if j > 0 {
				st.userVars = append(st.userVars, part[:j])
			}
		}
	case "CREATE", "DROP", "ALTER", "TRUNCATE", "RENAME", "GRANT", "REVOKE":
		st.class = classDDL
		st.kind = strings.Join(w[:min(2, len(w))], " ")
	case "BEGIN", "START", "SAVEPOINT", "XA", "LOCK":
		st.class, st.tx = classTx, txRefuse
	case "COMMIT", "ROLLBACK", "UNLOCK":
		st.class, st.tx = classTx, txNoop
	case "USE":
		st.class = classSession
	case "SET":
		if len(w) > 1 && w[1] == "AUTOCOMMIT" {
			st.class = classTx
			if strings.Contains(strings.ReplaceAll(sql, " ", ""), "=0") {
				st.tx = txRefuse
			} else {
				st.tx = txNoop
			}
		} else {
			st.class = classSession
		}
	case "LOAD":
		st.class = classRefused
		st.err = errTxNotSupported("LOAD DATA")
	}
	return st
}

// splitSimple splits on semicolons outside quotes and comments.
func splitSimple(q string) []string {
	var out []string
	start := 0
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '\'', '"', '`':
			for i++; i < len(q) && q[i] != c; i++ {
				if q[i] == '\\' && c != '`' {
					i++
				}
			}
		case ';':
			if s := strings.TrimSpace(q[start:i]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(q[start:]); s != "" {
		out = append(out, s)
	}
	return out
}
