package sqlproxy

import (
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// PREPARE checks privileges for DML and a few DDL statements (CREATE TABLE,
// CREATE/ALTER VIEW, CREATE SEQUENCE) but not for most DDL: MariaDB checks
// DROP, ALTER, TRUNCATE, RENAME, CREATE/DROP DATABASE, INDEX, routines,
// triggers and events only when it executes them — and the applier executes
// them as a privileged account. So the origin checks DDL explicitly: it
// derives the privilege and objects a statement needs and asks
// information_schema whether the client's account (or its current role)
// holds it globally, on the schema (wildcard grants included) or on the
// table. A DDL shape it does not recognise needs the privilege globally.

// privNeed is one privilege a DDL statement needs on db[.table].
type privNeed struct {
	priv  string // as information_schema spells it: "DROP", "CREATE ROUTINE", ...
	db    string
	table string // "" for a schema-level need
}

// tok is a token of classify's lexer with its value: words and numbers as
// written, quoted identifiers and strings unquoted, a user variable or
// account host (@x, @'x') without its '@'.
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

// tokenize returns up to max tokens of sql (comments skipped, executable
// comments scanned as code), as the classifier lexes it; noBackslash: the
// session's sql_mode has NO_BACKSLASH_ESCAPES. An unterminated quote or
// comment ends the list.
func tokenize(sql string, max int, noBackslash bool) []tok {
	ts, _ := classify.Tokenize(sql, max, noBackslash)
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

// ddlNeeds returns what a DDL statement needs. ok=false means the shape is
// not recognised; prepared=true means PREPARE checks it (CREATE TABLE,
// CREATE/ALTER VIEW, CREATE SEQUENCE), extra needs may still be returned.
func ddlNeeds(sql, defaultDB string, noBackslash bool) (needs []privNeed, prepared, ok bool) {
	t := tokenize(sql, 4096, noBackslash)
	i := 0
	peek := func(k int) string {
		if i+k < len(t) {
			return t[i+k].up()
		}
		return ""
	}
	skip := func(words ...string) bool {
		for k, w := range words {
			if peek(k) != w {
				return false
			}
		}
		i += len(words)
		return true
	}
	name := func() (db, tbl string, good bool) {
		if i >= len(t) || (t[i].kind != 'w' && t[i].kind != 'i') {
			return "", "", false
		}
		tbl = t[i].text
		i++
		if i+1 < len(t) && t[i].kind == 'p' && t[i].text == "." && (t[i+1].kind == 'w' || t[i+1].kind == 'i') {
			db, tbl = tbl, t[i+1].text
			i += 2
		} else {
			db = defaultDB
		}
		return db, tbl, true
	}
	names := func(priv ...string) bool { // name[, name ...]
		for {
			db, tbl, good := name()
			if !good {
				return false
			}
			for _, p := range priv {
				needs = append(needs, privNeed{p, db, tbl})
			}
			if i < len(t) && t[i].kind == 'p' && t[i].text == "," {
				i++
				continue
			}
			return true
		}
	}
	ifExists := func() { skip("IF", "EXISTS"); skip("IF", "NOT", "EXISTS") }
	schemaName := func(priv string) bool {
		ifExists()
		if i >= len(t) {
			if defaultDB == "" {
				return false
			}
			needs = append(needs, privNeed{priv, defaultDB, ""})
			return true
		}
		if t[i].kind != 'w' && t[i].kind != 'i' {
			return false
		}
		db := t[i].text
		if t[i].kind == 'w' && (peek(0) == "CHARACTER" || peek(0) == "DEFAULT" || peek(0) == "COLLATE" || peek(0) == "CHARSET" || peek(0) == "COMMENT") {
			db = defaultDB
		}
		if db == "" {
			return false
		}
		needs = append(needs, privNeed{priv, db, ""})
		return true
	}
	routine := func(priv string) bool {
		ifExists()
		db, _, good := name()
		if !good || db == "" {
			return false
		}
		needs = append(needs, privNeed{priv, db, ""})
		return true
	}

	switch peek(0) {
	case "DROP":
		i++
		skip("TEMPORARY")
		switch peek(0) {
		case "TABLE", "TABLES", "VIEW", "SEQUENCE":
			i++
			ifExists()
			return needs, false, names("DROP")
		case "DATABASE", "SCHEMA":
			i++
			return needs, false, schemaName("DROP")
		case "INDEX":
			i++
			ifExists()
			if _, _, good := name(); !good || !skip("ON") {
				return nil, false, false
			}
			return needs, false, names("INDEX")
		case "PROCEDURE", "FUNCTION", "PACKAGE":
			i++
			skip("BODY")
			return needs, false, routine("ALTER ROUTINE")
		case "TRIGGER":
			i++
			return needs, false, routine("TRIGGER")
		case "EVENT":
			i++
			return needs, false, routine("EVENT")
		}
	case "TRUNCATE":
		i++
		skip("TABLE")
		return needs, false, names("DROP")
	case "RENAME":
		i++
		if !skip("TABLE") && !skip("TABLES") {
			return nil, false, false
		}
		for {
			ifExists()
			if !names("ALTER", "DROP") {
				return nil, false, false
			}
			if !skip("TO") {
				return nil, false, false
			}
			// names() above consumed a comma list; the target is one name.
			db, tbl, good := name()
			if !good {
				return nil, false, false
			}
			needs = append(needs, privNeed{"CREATE", db, tbl}, privNeed{"INSERT", db, tbl})
			if i < len(t) && t[i].kind == 'p' && t[i].text == "," {
				i++
				continue
			}
			return needs, false, true
		}
	case "ANALYZE", "OPTIMIZE", "REPAIR", "CHECK":
		i++
		skip("NO_WRITE_TO_BINLOG")
		skip("LOCAL")
		if !skip("TABLE") && !skip("TABLES") {
			return nil, false, false
		}
		return needs, false, names("SELECT", "INSERT")
	case "ALTER", "CREATE":
		create := peek(0) == "CREATE"
		i++
		replace := skip("OR", "REPLACE")
		for {
			switch {
			case skip("DEFINER"):
				skip("=")
				// user: ident|string [@host] | CURRENT_USER [()]
				if i < len(t) {
					i++
				}
				if i < len(t) && t[i].kind == 'v' {
					i++
				}
				if skip("(") {
					skip(")")
				}
				continue
			case peek(0) == "ALGORITHM" || peek(0) == "LOCK":
				i++
				skip("=")
				i++
				continue
			case skip("SQL", "SECURITY"):
				i++
				continue
			case skip("ONLINE"), skip("OFFLINE"), skip("IGNORE"), skip("TEMPORARY"), skip("UNIQUE"),
				skip("FULLTEXT"), skip("SPATIAL"), skip("AGGREGATE"), skip("NONBLOCKING"):
				continue
			}
			break
		}
		switch peek(0) {
		case "TABLE":
			i++
			if create {
				if replace {
					ifExists()
					return needs, true, names("DROP")
				}
				return nil, true, true
			}
			ifExists()
			if !names("ALTER") {
				return nil, false, false
			}
			// ALTER TABLE ... RENAME [TO|AS] x also needs what RENAME TABLE needs.
			src := needs[len(needs)-1]
			for i < len(t) {
				if !skip("RENAME") {
					i++
					continue
				}
				if peek(0) == "COLUMN" || peek(0) == "INDEX" || peek(0) == "KEY" || peek(0) == "CONSTRAINT" {
					continue
				}
				if !skip("TO") {
					skip("AS")
				}
				db, tbl, good := name()
				if !good {
					return nil, false, false
				}
				needs = append(needs, privNeed{"DROP", src.db, src.table}, privNeed{"CREATE", db, tbl}, privNeed{"INSERT", db, tbl})
			}
			return needs, false, true
		case "VIEW", "SEQUENCE":
			obj := peek(0)
			i++
			ifExists()
			switch {
			case create && replace:
				return needs, true, names("DROP")
			case create:
				return nil, true, true
			case obj == "VIEW": // PREPARE checks CREATE VIEW; ALTER VIEW also needs DROP
				return needs, true, names("DROP")
			}
			return needs, false, names("ALTER")
		case "DATABASE", "SCHEMA":
			i++
			if create {
				return needs, false, schemaName("CREATE")
			}
			return needs, false, schemaName("ALTER")
		case "INDEX":
			i++
			ifExists()
			if _, _, good := name(); !good || !skip("ON") {
				return nil, false, false
			}
			return needs, false, names("INDEX")
		case "PROCEDURE", "FUNCTION", "PACKAGE":
			i++
			skip("BODY")
			if create {
				p := "CREATE ROUTINE"
				ok := routine(p)
				if replace && ok {
					needs = append(needs, privNeed{"ALTER ROUTINE", needs[0].db, ""})
				}
				return needs, false, ok
			}
			return needs, false, routine("ALTER ROUTINE")
		case "TRIGGER":
			i++
			ifExists()
			if _, _, good := name(); !good {
				return nil, false, false
			}
			for i < len(t) && peek(0) != "ON" {
				i++
			}
			if !skip("ON") {
				return nil, false, false
			}
			return needs, false, names("TRIGGER")
		case "EVENT":
			i++
			return needs, false, routine("EVENT")
		}
	}
	return nil, false, false
}

// checkDDLPrivileges checks needs against information_schema. It returns
// the MariaDB-style refusal, or nil when every need is held.
func (s *session) checkDDLPrivileges(sql string) (*mysql.MyError, error) {
	needs, prepared, ok := ddlNeeds(sql, s.ctxDB, s.noBackslash())
	if prepared && len(needs) == 0 {
		return nil, nil
	}
	if !ok {
		// Unknown shape: it needs the privilege of its verb globally.
		verb := "ALTER"
		if w := leadingWords(sql, 1, s.noBackslash()); len(w) == 1 && (w[0] == "CREATE" || w[0] == "DROP") {
			verb = w[0]
		}
		needs = []privNeed{{priv: verb}}
	}
	u, h := splitAccount(s.currentUser)
	// MariaDB names the connecting host in table-level refusals (1142) and
	// the account's host in schema-level ones (1044).
	th := h
	if s.clientHost != "" {
		th = s.clientHost
	}
	g := quoteSimple(s.currentUser)
	role := "CONCAT('''', CURRENT_ROLE(), '''')"
	for _, n := range needs {
		if strings.ContainsAny(n.db+n.table+n.priv, "\\\x00") {
			return tableDenied(n, u, h, th), nil
		}
		p := quoteSimple(n.priv)
		q := "SELECT EXISTS(SELECT 1 FROM information_schema.USER_PRIVILEGES WHERE GRANTEE IN (" + g + ", " + role + ") AND PRIVILEGE_TYPE IN (" + p + "))"
		if n.db != "" {
			q += " OR EXISTS(SELECT 1 FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE IN (" + g + ", " + role + ") AND PRIVILEGE_TYPE = " + p +
				" AND " + quoteSimple(n.db) + " LIKE TABLE_SCHEMA)"
		}
		if n.table != "" {
			q += " OR EXISTS(SELECT 1 FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE IN (" + g + ", " + role + ") AND PRIVILEGE_TYPE = " + p +
				" AND TABLE_SCHEMA = " + quoteSimple(n.db) + " AND TABLE_NAME = " + quoteSimple(n.table) + ")"
		}
		r, err := s.query(q)
		if err != nil {
			if me, ok := stmtError(err); ok {
				return me, nil
			}
			return nil, err
		}
		if len(r.vals) == 1 && r.vals[0][0] != nil && *r.vals[0][0] == "1" {
			continue
		}
		return tableDenied(n, u, h, th), nil
	}
	return nil, nil
}

func splitAccount(a string) (user, host string) {
	// a is 'user'@'host'
	i := strings.LastIndex(a, "@'")
	if i < 0 {
		return strings.Trim(a, "'"), ""
	}
	return strings.ReplaceAll(strings.Trim(a[:i], "'"), "''", "'"), strings.ReplaceAll(strings.Trim(a[i+1:], "'"), "''", "'")
}

// tableDenied spells the refusal as MariaDB would.
func tableDenied(n privNeed, user, host, tableHost string) *mysql.MyError {
	switch {
	case n.table != "":
		return &mysql.MyError{Code: 1142, State: "42000", Message: n.priv + " command denied to user '" + user + "'@'" + tableHost +
			"' for table `" + n.db + "`.`" + n.table + "`"}
	case n.db != "":
		return &mysql.MyError{Code: 1044, State: "42000", Message: "Access denied for user '" + user + "'@'" + host + "' to database '" + n.db + "'"}
	}
	return &mysql.MyError{Code: 1227, State: "42000", Message: "Access denied; you need (at least one of) the " + n.priv + " privilege(s) for this operation"}
}

// definerOf returns the account of an explicit DEFINER clause in the head
// of a CREATE/ALTER statement.
func definerOf(sql string, noBackslash bool) (user, host string, found bool) {
	t := tokenize(sql, 64, noBackslash)
	for i := 0; i+2 < len(t); i++ {
		if t[i].up() != "DEFINER" || t[i+1].up() != "=" {
			continue
		}
		j := i + 2
		if t[j].up() == "CURRENT_USER" || t[j].up() == "CURRENT_ROLE" {
			return "", "", false // classify replaces CURRENT_USER with the client's account
		}
		user = t[j].text
		if j+1 < len(t) && t[j+1].kind == 'v' {
			host = t[j+1].text
		} else {
			host = "%"
		}
		return user, host, true
	}
	return "", "", false
}

// checkDefiner: naming another account as DEFINER needs SET USER (or
// SUPER), as in MariaDB; the applier would not check it.
func (s *session) checkDefiner(sql string) (*mysql.MyError, error) {
	du, dh, found := definerOf(sql, s.noBackslash())
	if !found {
		return nil, nil
	}
	cu, ch := splitAccount(s.currentUser)
	if du == cu && dh == ch {
		return nil, nil
	}
	for _, p := range []string{"SET USER", "SUPER"} {
		me, err := s.hasGlobal(p)
		if err != nil || me == nil {
			return nil, err
		}
	}
	return &mysql.MyError{Code: mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR, State: "42000",
		Message: "Access denied; you need (at least one of) the SUPER, SET USER privilege(s) for this operation"}, nil
}
