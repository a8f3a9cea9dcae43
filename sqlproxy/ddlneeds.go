package sqlproxy

// ddlNeeds derives, from a DDL statement's tokens, the privileges and
// objects it needs (see privileges.go for why the origin checks them). One
// function per leading verb (ddlVerbs) and, for CREATE/ALTER, per object
// (ddlObjects) scans the rest of the statement with ddlScan.

// privNeed is one privilege a DDL statement needs on db[.table].
type privNeed struct {
	priv  string // as information_schema spells it: "DROP", "CREATE ROUTINE", ...
	db    string
	table string // "" for a schema-level need
}

// ddlNeeds returns what a DDL statement needs. ok=false means the shape is
// not recognised; prepared=true means PREPARE checks it (CREATE TABLE,
// CREATE/ALTER VIEW, CREATE SEQUENCE), extra needs may still be returned.
func ddlNeeds(t []tok, defaultDB string) (needs []privNeed, prepared, ok bool) {
	p := &ddlScan{t: t, defaultDB: defaultDB}
	verb := ddlVerbs[p.peek(0)]
	if verb == nil {
		return nil, false, false
	}
	p.i++
	prepared, ok = verb(p)
	return p.needs, prepared, ok
}

// A ddlFunc scans a statement after its verb (or, in ddlObjects, after its
// object keyword) and reports prepared and ok as ddlNeeds does.
type ddlFunc func(p *ddlScan) (prepared, ok bool)

var ddlVerbs = map[string]ddlFunc{
	"DROP":     ddlDrop,
	"TRUNCATE": ddlTruncate,
	"RENAME":   ddlRename,
	"ANALYZE":  ddlMaintenance,
	"OPTIMIZE": ddlMaintenance,
	"REPAIR":   ddlMaintenance,
	"CHECK":    ddlMaintenance,
	"CREATE":   ddlCreateAlter,
	"ALTER":    ddlCreateAlter,
}

// ddlObjects: CREATE/ALTER per object keyword (p.create, p.replace set).
var ddlObjects = map[string]ddlFunc{
	"TABLE":     ddlTable,
	"VIEW":      ddlViewSequence,
	"SEQUENCE":  ddlViewSequence,
	"DATABASE":  ddlDatabase,
	"SCHEMA":    ddlDatabase,
	"INDEX":     ddlIndex,
	"PROCEDURE": ddlRoutine,
	"FUNCTION":  ddlRoutine,
	"PACKAGE":   ddlRoutine,
	"TRIGGER":   ddlTrigger,
	"EVENT":     func(p *ddlScan) (bool, bool) { return false, p.routine("EVENT") },
}

// fail gives up on the shape: ddlNeeds returns no needs and ok=false.
func (p *ddlScan) fail() (bool, bool) {
	p.needs = nil
	return false, false
}

// DROP [TEMPORARY] TABLE|VIEW|SEQUENCE|DATABASE|INDEX|PROCEDURE|FUNCTION|PACKAGE|TRIGGER|EVENT ...
func ddlDrop(p *ddlScan) (bool, bool) {
	p.skip("TEMPORARY")
	switch p.peek(0) {
	case "TABLE", "TABLES", "VIEW", "SEQUENCE":
		p.i++
		p.ifExists()
		return false, p.names("DROP")
	case "DATABASE", "SCHEMA":
		p.i++
		return false, p.schemaName("DROP")
	case "INDEX":
		p.i++
		return ddlIndexOn(p)
	case "PROCEDURE", "FUNCTION", "PACKAGE":
		p.i++
		p.skip("BODY")
		return false, p.routine("ALTER ROUTINE")
	case "TRIGGER":
		p.i++
		return false, p.routine("TRIGGER")
	case "EVENT":
		p.i++
		return false, p.routine("EVENT")
	}
	return p.fail()
}

// TRUNCATE [TABLE] t
func ddlTruncate(p *ddlScan) (bool, bool) {
	p.skip("TABLE")
	return false, p.names("DROP")
}

// RENAME TABLE[S] a TO b[, c TO d ...]
func ddlRename(p *ddlScan) (bool, bool) {
	if !p.skip("TABLE") && !p.skip("TABLES") {
		return p.fail()
	}
	for {
		p.ifExists()
		if !p.names("ALTER", "DROP") || !p.skip("TO") {
			return p.fail()
		}
		// names() above consumed a comma list; the target is one name.
		db, tbl, good := p.name()
		if !good {
			return p.fail()
		}
		p.needs = append(p.needs, privNeed{"CREATE", db, tbl}, privNeed{"INSERT", db, tbl})
		if !p.comma() {
			return false, true
		}
	}
}

// ANALYZE|OPTIMIZE|REPAIR|CHECK [NO_WRITE_TO_BINLOG|LOCAL] TABLE[S] t[, ...]
func ddlMaintenance(p *ddlScan) (bool, bool) {
	p.skip("NO_WRITE_TO_BINLOG")
	p.skip("LOCAL")
	if !p.skip("TABLE") && !p.skip("TABLES") {
		return p.fail()
	}
	return false, p.names("SELECT", "INSERT")
}

// CREATE|ALTER [OR REPLACE] [DEFINER=..] [ALGORITHM=..] [SQL SECURITY ..]
// [modifiers] object ...
func ddlCreateAlter(p *ddlScan) (bool, bool) {
	p.create = p.t[p.i-1].up() == "CREATE"
	p.replace = p.skip("OR", "REPLACE")
	p.skipClauses()
	obj := ddlObjects[p.peek(0)]
	if obj == nil {
		return p.fail()
	}
	p.i++
	return obj(p)
}

// skipClauses skips what may stand between CREATE/ALTER and the object.
func (p *ddlScan) skipClauses() {
	for {
		switch {
		case p.skip("DEFINER"):
			p.skip("=")
			// user: ident|string [@host] | CURRENT_USER [()]
			if p.i < len(p.t) {
				p.i++
			}
			if p.i < len(p.t) && p.t[p.i].kind == 'v' {
				p.i++
			}
			if p.skip("(") {
				p.skip(")")
			}
		case p.peek(0) == "ALGORITHM" || p.peek(0) == "LOCK":
			p.i++
			p.skip("=")
			p.i++
		case p.skip("SQL", "SECURITY"):
			p.i++
		case p.skip("ONLINE"), p.skip("OFFLINE"), p.skip("IGNORE"), p.skip("TEMPORARY"), p.skip("UNIQUE"),
			p.skip("FULLTEXT"), p.skip("SPATIAL"), p.skip("AGGREGATE"), p.skip("NONBLOCKING"):
		default:
			return
		}
	}
}

// CREATE [OR REPLACE] TABLE (PREPARE checks it) | ALTER TABLE t ... [RENAME [TO|AS] x]
func ddlTable(p *ddlScan) (bool, bool) {
	if p.create {
		if p.replace {
			p.ifExists()
			return true, p.names("DROP")
		}
		return true, true
	}
	p.ifExists()
	if !p.names("ALTER") {
		return p.fail()
	}
	// ALTER TABLE ... RENAME [TO|AS] x also needs what RENAME TABLE needs.
	src := p.needs[len(p.needs)-1]
	for p.i < len(p.t) {
		if !p.skip("RENAME") {
			p.i++
			continue
		}
		if w := p.peek(0); w == "COLUMN" || w == "INDEX" || w == "KEY" || w == "CONSTRAINT" {
			continue
		}
		if !p.skip("TO") {
			p.skip("AS")
		}
		db, tbl, good := p.name()
		if !good {
			return p.fail()
		}
		p.needs = append(p.needs, privNeed{"DROP", src.db, src.table}, privNeed{"CREATE", db, tbl}, privNeed{"INSERT", db, tbl})
	}
	return false, true
}

// CREATE [OR REPLACE] VIEW|SEQUENCE, ALTER VIEW|SEQUENCE
func ddlViewSequence(p *ddlScan) (bool, bool) {
	obj := p.t[p.i-1].up()
	p.ifExists()
	switch {
	case p.create && p.replace:
		return true, p.names("DROP")
	case p.create:
		return true, true
	case obj == "VIEW": // PREPARE checks CREATE VIEW; ALTER VIEW also needs DROP
		return true, p.names("DROP")
	}
	return false, p.names("ALTER")
}

// CREATE|ALTER DATABASE|SCHEMA [name]
func ddlDatabase(p *ddlScan) (bool, bool) {
	if p.create {
		return false, p.schemaName("CREATE")
	}
	return false, p.schemaName("ALTER")
}

// CREATE INDEX i ON t ...
func ddlIndex(p *ddlScan) (bool, bool) { return ddlIndexOn(p) }

// [IF [NOT] EXISTS] i ON t: what CREATE and DROP INDEX need.
func ddlIndexOn(p *ddlScan) (bool, bool) {
	p.ifExists()
	if _, _, good := p.name(); !good || !p.skip("ON") {
		return p.fail()
	}
	return false, p.names("INDEX")
}

// CREATE [OR REPLACE] PROCEDURE|FUNCTION|PACKAGE [BODY], ALTER ...
func ddlRoutine(p *ddlScan) (bool, bool) {
	p.skip("BODY")
	if !p.create {
		return false, p.routine("ALTER ROUTINE")
	}
	ok := p.routine("CREATE ROUTINE")
	if p.replace && ok {
		p.needs = append(p.needs, privNeed{"ALTER ROUTINE", p.needs[0].db, ""})
	}
	return false, ok
}

// CREATE TRIGGER tr ... ON t ...
func ddlTrigger(p *ddlScan) (bool, bool) {
	p.ifExists()
	if _, _, good := p.name(); !good {
		return p.fail()
	}
	for p.i < len(p.t) && p.peek(0) != "ON" {
		p.i++
	}
	if !p.skip("ON") {
		return p.fail()
	}
	return false, p.names("TRIGGER")
}

// ddlScan walks the tokens of one DDL statement and collects its needs.
type ddlScan struct {
	t               []tok
	i               int
	defaultDB       string
	needs           []privNeed
	create, replace bool // CREATE (not ALTER); OR REPLACE
}

// peek returns the k-th token from the current one, upper case ("" past the end).
func (p *ddlScan) peek(k int) string {
	if p.i+k < len(p.t) {
		return p.t[p.i+k].up()
	}
	return ""
}

// skip consumes words when the next tokens are exactly them.
func (p *ddlScan) skip(words ...string) bool {
	for k, w := range words {
		if p.peek(k) != w {
			return false
		}
	}
	p.i += len(words)
	return true
}

// comma consumes a ','.
func (p *ddlScan) comma() bool {
	if p.i < len(p.t) && p.t[p.i].kind == 'p' && p.t[p.i].text == "," {
		p.i++
		return true
	}
	return false
}

func (p *ddlScan) ifExists() { p.skip("IF", "EXISTS"); p.skip("IF", "NOT", "EXISTS") }

// name consumes [db.]name; db is the default database when unqualified.
func (p *ddlScan) name() (db, tbl string, good bool) {
	t := p.t
	if p.i >= len(t) || (t[p.i].kind != 'w' && t[p.i].kind != 'i') {
		return "", "", false
	}
	tbl = t[p.i].text
	p.i++
	if p.i+1 < len(t) && t[p.i].kind == 'p' && t[p.i].text == "." && (t[p.i+1].kind == 'w' || t[p.i+1].kind == 'i') {
		db, tbl = tbl, t[p.i+1].text
		p.i += 2
	} else {
		db = p.defaultDB
	}
	return db, tbl, true
}

// names consumes name[, name ...], each needing every priv.
func (p *ddlScan) names(priv ...string) bool {
	for {
		db, tbl, good := p.name()
		if !good {
			return false
		}
		for _, pr := range priv {
			p.needs = append(p.needs, privNeed{pr, db, tbl})
		}
		if !p.comma() {
			return true
		}
	}
}

// schemaName consumes [IF [NOT] EXISTS] [name], which needs priv on the
// schema (the default database when the name is left out).
func (p *ddlScan) schemaName(priv string) bool {
	p.ifExists()
	if p.i >= len(p.t) {
		if p.defaultDB == "" {
			return false
		}
		p.needs = append(p.needs, privNeed{priv, p.defaultDB, ""})
		return true
	}
	t := p.t[p.i]
	if t.kind != 'w' && t.kind != 'i' {
		return false
	}
	db := t.text
	if w := p.peek(0); t.kind == 'w' && (w == "CHARACTER" || w == "DEFAULT" || w == "COLLATE" || w == "CHARSET" || w == "COMMENT") {
		db = p.defaultDB
	}
	if db == "" {
		return false
	}
	p.needs = append(p.needs, privNeed{priv, db, ""})
	return true
}

// routine consumes [IF [NOT] EXISTS] [db.]name, which needs priv on its schema.
func (p *ddlScan) routine(priv string) bool {
	p.ifExists()
	db, _, good := p.name()
	if !good || db == "" {
		return false
	}
	p.needs = append(p.needs, privNeed{priv, db, ""})
	return true
}
