package sqlproxy

import (
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// GRANT and REVOKE are executed by every node's applier as a privileged
// account, so the origin must make sure the client could have run them
// itself: MariaDB requires the grantor to hold each privilege it grants or
// revokes WITH GRANT OPTION at that level (or above). checkGrant derives
// the privileges and the level from the statement and checks them in
// information_schema; ALL PRIVILEGES needs an ALL ... WITH GRANT OPTION
// grant (SHOW GRANTS) at that level or globally; role grants need CREATE
// USER. Anything it cannot read is refused (1227).

type grantSpec struct {
	privs   []string // upper case, e.g. "SELECT", "CREATE ROUTINE", "ALL"
	db, tbl string   // level: "" db = global; "" tbl = schema
	role    bool     // GRANT role TO ... / REVOKE role FROM ...
}

// parseGrant reads the GRANT/REVOKE statement of tokens t.
func parseGrant(t []tok, defaultDB string) (grantSpec, bool) {
	var g grantSpec
	if len(t) == 0 || (t[0].up() != "GRANT" && t[0].up() != "REVOKE") {
		return g, false
	}
	i := 1
	var cur []string
	depth := 0
	for ; i < len(t); i++ {
		u := t[i].up()
		switch {
		case u == "(":
			depth++
			continue
		case u == ")":
			depth--
			continue
		case depth > 0:
			continue
		case u == ",":
			if len(cur) > 0 {
				g.privs = append(g.privs, strings.Join(cur, " "))
			}
			cur = nil
			continue
		case u == "ON" || u == "TO" || u == "FROM":
		default:
			if t[i].kind != 'w' {
				return g, false
			}
			cur = append(cur, u)
			continue
		}
		break
	}
	if len(cur) > 0 {
		g.privs = append(g.privs, strings.Join(cur, " "))
	}
	if i >= len(t) || t[i].up() != "ON" {
		g.role = true // GRANT role TO user
		return g, len(g.privs) > 0
	}
	i++
	if i < len(t) && (t[i].up() == "TABLE" || t[i].up() == "PROCEDURE" || t[i].up() == "FUNCTION" || t[i].up() == "PACKAGE") {
		if t[i].up() != "TABLE" {
			g.privs = append(g.privs[:0:0], "ALTER ROUTINE") // routine-level: be strict
		}
		i++
	}
	ident := func() (string, bool) {
		if i >= len(t) {
			return "", false
		}
		switch {
		case t[i].kind == 'p' && t[i].text == "*":
			i++
			return "*", true
		case t[i].kind == 'w' || t[i].kind == 'i':
			i++
			return t[i-1].text, true
		}
		return "", false
	}
	a, ok := ident()
	if !ok {
		return g, false
	}
	b := ""
	if i < len(t) && t[i].kind == 'p' && t[i].text == "." {
		i++
		if b, ok = ident(); !ok {
			return g, false
		}
	} else {
		a, b = defaultDB, a // "*" or "tbl" relative to the default database
		if a == "" {
			return g, false
		}
	}
	switch {
	case a == "*" && b == "*":
	case a == "*":
		return g, false
	case b == "*":
		g.db = a
	default:
		g.db, g.tbl = a, b
	}
	return g, len(g.privs) > 0
}

// checkGrant checks the GRANT/REVOKE of tokens t as described above.
func (pc privCheck) checkGrant(t []tok) (*mysql.MyError, error) {
	g, ok := parseGrant(t, pc.db)
	if !ok || g.role {
		return pc.hasGlobal("CREATE USER")
	}
	if strings.ContainsAny(g.db+g.tbl, "\\\x00") {
		return errGrantPriv, nil
	}
	grantee := quoteSimple(pc.user)
	who := "GRANTEE IN (" + grantee + ", CONCAT('''', CURRENT_ROLE(), ''''))"
	for _, p := range g.privs {
		if p == "ALL" || p == "ALL PRIVILEGES" {
			ok, err := pc.hasAllWithGrant(g.db)
			if err != nil || !ok {
				return errGrantPriv, err
			}
			continue
		}
		cond := "IS_GRANTABLE = 'YES'"
		if p != "GRANT OPTION" && p != "USAGE" {
			cond += " AND PRIVILEGE_TYPE = " + quoteSimple(p)
		}
		ok, me, err := pc.privExists(who+" AND "+cond, g.db, g.tbl)
		if me != nil || err != nil {
			return me, err
		}
		if !ok {
			return errGrantPriv, nil
		}
	}
	return nil, nil
}

// hasAllWithGrant reports an ALL PRIVILEGES ... WITH GRANT OPTION grant
// globally or on db.
func (pc privCheck) hasAllWithGrant(db string) (bool, error) {
	r, err := pc.be.query("SHOW GRANTS")
	if err != nil {
		if _, ok := stmtError(err); ok {
			return false, nil
		}
		return false, err
	}
	for _, row := range r.vals {
		if len(row) == 0 || row[0] == nil || !strings.Contains(*row[0], "WITH GRANT OPTION") {
			continue
		}
		line := *row[0]
		if strings.HasPrefix(line, "GRANT ALL PRIVILEGES ON *.* TO ") {
			return true, nil
		}
		if db != "" && strings.HasPrefix(line, "GRANT ALL PRIVILEGES ON `"+strings.ReplaceAll(db, "`", "``")+"`.* TO ") {
			return true, nil
		}
	}
	return false, nil
}

// hasGlobal checks one global privilege.
func (pc privCheck) hasGlobal(priv string) (*mysql.MyError, error) {
	q := "SELECT EXISTS(SELECT 1 FROM information_schema.USER_PRIVILEGES WHERE GRANTEE IN (" + quoteSimple(pc.user) +
		", CONCAT('''', CURRENT_ROLE(), '''')) AND PRIVILEGE_TYPE = " + quoteSimple(priv) + ")"
	r, err := pc.be.query(q)
	if err != nil {
		if me, ok := stmtError(err); ok {
			return me, nil
		}
		return nil, err
	}
	if len(r.vals) == 1 && r.vals[0][0] != nil && *r.vals[0][0] == "1" {
		return nil, nil
	}
	return errSpecificAccessDenied(priv), nil
}
