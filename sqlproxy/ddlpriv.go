package sqlproxy

import (
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
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

// checkDDLPrivileges checks the needs of the DDL statement of tokens t
// (ddlneeds.go) against information_schema. It returns the MariaDB-style
// refusal, or nil when every need is held.
func (s *session) checkDDLPrivileges(t []tok) (*mysql.MyError, error) {
	needs, prepared, ok := ddlNeeds(t, s.ctxDB)
	if prepared && len(needs) == 0 {
		return nil, nil
	}
	if !ok {
		// Unknown shape: it needs the privilege of its verb globally.
		verb := "ALTER"
		if len(t) > 0 && (t[0].up() == "CREATE" || t[0].up() == "DROP") {
			verb = t[0].up()
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
		return errTableAccessDenied(n.priv, user, tableHost, n.db, n.table)
	case n.db != "":
		return errDBAccessDenied(user, host, n.db)
	}
	return errSpecificAccessDenied(n.priv)
}

// definerOf returns the account of an explicit DEFINER clause in the head
// (64 tokens) of the CREATE/ALTER statement of tokens t.
func definerOf(t []tok) (user, host string, found bool) {
	t = t[:min(len(t), 64)]
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
func (s *session) checkDefiner(t []tok) (*mysql.MyError, error) {
	du, dh, found := definerOf(t)
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
	return errDefinerPriv, nil
}
